// The settings table (src/settings.ts) and reading it: reading settings changes no global; applying
// them (at the Worker's and the Topic object's start) sets the log level.
import { describe, expect, it } from "vitest";
import { applySettings, hubSettings, readConfig } from "../../src/config";
import { logs, setLogLevel } from "../../src/log";
import { SETTINGS, setting, type SettingName } from "../../src/settings";

describe("settings", () => {
  it("reading settings (hubSettings) leaves the log level alone; applySettings sets it", () => {
    setLogLevel("info");
    try {
      hubSettings({ LOG_LEVEL: "silent" });
      expect(logs("info")).toBe(true);
      applySettings({ LOG_LEVEL: "silent" });
      expect(logs("info")).toBe(false);
      expect(logs("error")).toBe(false);
    } finally {
      setLogLevel("silent"); // what the test configuration runs with (vitest.config.ts)
    }
  });

  it("every setting parses when unset, and readConfig of an empty environment uses the table's defaults", () => {
    for (const name of Object.keys(SETTINGS) as SettingName[]) expect(() => setting({}, name), name).not.toThrow();
    const c = readConfig({});
    expect([c.maxBodyBytes, c.leaseMaxSeconds, c.auth.jwksCacheSeconds, c.auth.hubEnv, c.auth.mode])
      .toEqual([setting({}, "MAX_BODY_BYTES"), setting({}, "HUB_LEASE_MAX_SECONDS"), setting({}, "JWKS_CACHE_SECONDS"), "production", "smart"]);
  });

  it("a setting that does not parse names itself and its value", () => {
    expect(() => setting({ EVENT_LOG_LIMIT: "ten" }, "EVENT_LOG_LIMIT")).toThrow('setting EVENT_LOG_LIMIT="ten" must be a positive integer');
    expect(() => setting({ INTROSPECT: "never" }, "INTROSPECT")).toThrow('setting INTROSPECT="never" must be one of opaque, always');
  });
});

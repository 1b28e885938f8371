// The limits that keep every accepted state readable (issue 20, finding 1): the JSON depth scan and
// the settings guard on the largest current context.
import { describe, expect, it } from "vitest";
import { MAX_READ_BYTES, readConfig } from "../../src/config";
import type { Env } from "../../src/env";
import { MAX_JSON_DEPTH, nestsDeeperThan, parseJson } from "../../src/http/body";

describe("nestsDeeperThan: a scan without recursion", () => {
  it("counts arrays and objects, not brackets inside strings or after escaped quotes", () => {
    expect(nestsDeeperThan(`{"a":[1,{"b":[]}]}`, 4)).toBe(false);
    expect(nestsDeeperThan(`{"a":[1,{"b":[]}]}`, 3)).toBe(true);
    expect(nestsDeeperThan(`{"a":"[[[[{{{{"}`, 1)).toBe(false);
    expect(nestsDeeperThan(`{"a":"\\"[[[[","b":"\\\\"}`, 1)).toBe(false);
    expect(nestsDeeperThan(`{"a":"\\\\",  "b":[[]]}`, 2)).toBe(true);
  });

  it("answers for 1,000,000 levels without throwing; unterminated strings are left to JSON.parse", () => {
    expect(nestsDeeperThan("[".repeat(1_000_000), MAX_JSON_DEPTH)).toBe(true);
    expect(nestsDeeperThan(`{"a":"[[[[`, 1)).toBe(false);
  });

  it("parseJson refuses deeper than MAX_JSON_DEPTH with 400 too-long naming the limit; exactly the limit parses", () => {
    const at = `${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}`;
    expect(parseJson(at).ok).toBe(true);
    expect(parseJson(`[${at}]`)).toEqual({
      ok: false, status: 400, code: "too-long",
      detail: `request body nests arrays or objects deeper than this hub's limit of ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH)`,
    });
  });
});

describe("settings: the current context must stay readable", () => {
  it("defaults: 4 MiB per anchor, 8 MiB per topic", () => {
    const c = readConfig({} as Env);
    expect([c.maxContentBytesPerAnchor, c.maxContentBytesPerTopic]).toEqual([4_194_304, 8_388_608]);
  });

  it("MAX_BODY_BYTES + MAX_CONTENT_BYTES_PER_ANCHOR above 12 MiB is a deployment error", () => {
    expect(() => readConfig({ MAX_CONTENT_BYTES_PER_ANCHOR: String(MAX_READ_BYTES) } as Env))
      .toThrow(/MAX_BODY_BYTES \+ MAX_CONTENT_BYTES_PER_ANCHOR must not exceed 12582912/);
    expect(() => readConfig({ MAX_CONTENT_BYTES_PER_ANCHOR: String(MAX_READ_BYTES - 1_048_576) } as Env)).not.toThrow();
    expect(() => readConfig({ MAX_CONTENT_BYTES_PER_TOPIC: "0" } as Env)).toThrow(/MAX_CONTENT_BYTES_PER_TOPIC/);
  });
});

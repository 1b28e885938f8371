// The HTTP edge (issue 20 §6, issue 21): what the Worker logs for unexpected errors and client
// hang-ups, control characters and blanks in topics, wrong methods (405 + Allow) and each endpoint's
// one error format.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/worker";
import { HUB, ORIGIN, expectOutcome, hubFetch, mintToken, patientOpen } from "../helpers/hub";

/** Everything the Worker writes to the console while `fn` runs, one parsed JSON line per call. */
async function captureLogs(fn: () => Promise<unknown>): Promise<{ stream: "log" | "warn" | "error"; line: Record<string, unknown> }[]> {
  const lines: { stream: "log" | "warn" | "error"; line: Record<string, unknown> }[] = [];
  const spies = (["log", "warn", "error"] as const).map((stream) =>
    vi.spyOn(console, stream).mockImplementation((text: unknown) => {
      try {
        lines.push({ stream, line: JSON.parse(String(text)) as Record<string, unknown> });
      } catch {
        // not one of the hub's lines
      }
    }));
  try {
    await fn();
  } finally {
    for (const s of spies) s.mockRestore();
  }
  return lines;
}

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;

/** Calls the Worker's fetch handler itself with these settings (a real env with some values changed). */
async function fetchWith(settings: Record<string, unknown>, request: Request): Promise<Response> {
  return worker.fetch(request, { ...env, ...settings } as typeof env, ctx);
}

afterEach(async () => {
  // Leave the hub's cached settings (and log level) as the other tests expect them.
  await fetchWith({}, new Request(`${ORIGIN}/health`));
});

describe("logging: errors are level error, a client hang-up is not a server error", () => {
  it("an unexpected exception (a setting that does not parse) is logged at level error, visible under LOG_LEVEL=warn", async () => {
    let res: Response | undefined;
    const lines = await captureLogs(async () => {
      res = await fetchWith({ LOG_LEVEL: "warn", HUB_LEASE_MAX_SECONDS: "forever" }, new Request(`${HUB}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }));
    });
    await expectOutcome(res!, 500, "internal error");
    const errors = lines.filter((l) => l.line.msg === "error");
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) {
      expect(e.line.level).toBe("error");
      expect(e.stream).toBe("error");
    }
    expect(String(errors[0]!.line.error)).toMatch(/HUB_LEASE_MAX_SECONDS/);
  });

  it("an unexpected exception with valid settings (a deployment without its TOPIC binding) is logged at level error under LOG_LEVEL=warn", async () => {
    const token = await mintToken();
    let res: Response | undefined;
    const lines = await captureLogs(async () => {
      res = await fetchWith({ LOG_LEVEL: "warn", TOPIC: undefined }, new Request(HUB, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify(patientOpen("t-no-binding")),
      }));
    });
    await expectOutcome(res!, 500, "internal error");
    expect(lines.filter((l) => l.line.msg === "error")).toMatchObject([{ stream: "error", line: { level: "error" } }]);
  });

  for (const [name, headers] of [["with a Content-Length", { "Content-Length": "100000" }], ["streamed", {}]] as const) {
    it(`a body that breaks off mid-way (${name}) is answered 400 and logged as a 400 at info, never a 500 or an error`, async () => {
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (!sent) {
            sent = true;
            controller.enqueue(new TextEncoder().encode('{"timestamp":"2026-01-01T00:00:00Z","id":"x","event":{'));
          } else controller.error(new Error("client hung up"));
        },
      });
      const token = await mintToken();
      let res: Response | undefined;
      const lines = await captureLogs(async () => {
        res = await fetchWith({ LOG_LEVEL: "info" }, new Request(HUB, {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}`, ...headers },
          body,
          duplex: "half",
        } as RequestInit));
      });
      await expectOutcome(res!, 400, /body ended before it was complete/);
      expect(lines.filter((l) => l.line.level === "error" || l.line.msg === "error")).toEqual([]);
      expect(lines.filter((l) => l.line.msg === "request")).toMatchObject([{ stream: "log", line: { level: "info", status: 400 } }]);
    });
  }
});

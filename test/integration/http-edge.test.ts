// The HTTP edge (issue 20 fhircast.hl7.org/STU3/2-3-Events.html, issue 21): what the Worker logs for unexpected errors and client
// hang-ups, control characters and blanks in topics, wrong methods (405 + Allow) and each endpoint's
// one error format.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/worker";
import {
  HUB, ORIGIN, expectOutcome, expectText, form, hubFetch, mintToken, patientOpen, publish, subscribeForm, subscriber, uniqueTopic,
} from "../helpers/hub";

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

describe("topics: control and bidi-override characters refused everywhere, surrounding blanks trimmed everywhere", () => {
  const BAD: [string, string][] = [
    ["NUL", "\u0000"], ["CR LF", "\r\n"], ["TAB", "\t"], ["DEL", "\u007f"], ["C1 NEL", "\u0085"],
    ["RLO (U+202E)", "\u202e"], ["LRE (U+202A)", "\u202a"], ["LRI (U+2066)", "\u2066"], ["PDI (U+2069)", "\u2069"],
  ];
  const CONTROL = /control or bidirectional-override/;

  for (const [name, ch] of BAD) {
    it(`a topic containing ${name} is refused with 400 by subscribe, publish (body and path), GET and the token issuer`, async () => {
      const topic = `${uniqueTopic("ctl")}${ch}x`;
      await expectText(await hubFetch("/api/hub", subscribeForm(topic, "Patient-open")), 400, "hub.topic", CONTROL);
      await expectOutcome(await publish(patientOpen(topic, "p1")), 400, "event.hub.topic", CONTROL);
      await expectOutcome(await publish(patientOpen(topic, "p1"), `/api/hub/${encodeURIComponent(topic)}`), 400, "topic in the URL", CONTROL);
      await expectOutcome(await hubFetch(`/api/hub/${encodeURIComponent(topic)}`), 400, "topic in the URL", CONTROL);
      const token = await hubFetch("/auth/token", form({ grant_type: "client_credentials", client_id: "c", scope: "fhircast/*.*", "hub.topic": topic }));
      expect(token.status).toBe(400);
      expect(await token.json()).toMatchObject({ error: "invalid_request", error_description: expect.stringMatching(CONTROL) });
    });
  }

  it("a control character in a JSON subscribe's hub.topic is refused too", async () => {
    const body = JSON.stringify({ "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": `${uniqueTopic("ctl")}\u0000`, "hub.events": "Patient-open" });
    await expectText(await hubFetch("/api/hub", { method: "POST", headers: { "Content-Type": "application/json" }, body }), 400, CONTROL);
  });

  it("surrounding blanks name the same topic in subscribe, publish (body and path), GET and the token issuer", async () => {
    const topic = uniqueTopic("blank");
    const padded = `  ${topic}\n`;
    const { client } = await subscriber(padded, "Patient-open");
    expect(await client.frame(0)).toMatchObject({ "hub.topic": topic });
    // Published with blanks around event.hub.topic: reaches the subscriber of the bare topic, under the bare topic.
    expect((await publish(patientOpen(padded, "p1"))).status).toBe(202);
    expect(await client.frame(1)).toMatchObject({ event: { "hub.topic": topic, "hub.event": "Patient-open" } });
    // The STU1/STU2 path form, blanks on both sides of the comparison.
    expect((await publish(patientOpen(` ${topic}`, "p2"), `/api/hub/${encodeURIComponent(`${topic} `)}`)).status).toBe(202);
    expect(await client.frame(2)).toMatchObject({ event: { "hub.topic": topic } });
    const got = await hubFetch(`/api/hub/${encodeURIComponent(` ${topic} `)}`);
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ context: expect.arrayContaining([expect.objectContaining({ key: "patient", resource: expect.objectContaining({ id: "p2" }) })]) });
    const token = await hubFetch("/auth/token", form({ grant_type: "client_credentials", client_id: "c", scope: "fhircast/*.*", "hub.topic": padded }));
    expect(await token.json()).toMatchObject({ "hub.topic": topic });
    client.close();
  });
});

describe("wrong methods and unknown paths: 405 with Allow, 404, 415, each in its endpoint's one error format", () => {
  const topic = "t-methods";
  const API: [path: string, allow: string][] = [
    ["/api/hub", "POST"],
    [`/api/hub/${topic}`, "GET, POST"],
    ["/api/hub/.well-known/fhircast-configuration", "GET"],
    ["/.well-known/fhircast-configuration", "GET"],
    [`/api/inspect/${topic}`, "GET"],
    [`/api/inspect/${topic}/live`, "GET"],
  ];
  const OTHER: [path: string, allow: string][] = [["/", "GET"], ["/health", "GET"], ["/metrics", "GET"], ["/auth/jwks", "GET"], [`/ws/${"0".repeat(64)}/${"0".repeat(32)}`, "GET"]];

  for (const method of ["PUT", "DELETE", "PATCH"]) {
    for (const [path, allow] of API) {
      it(`${method} ${path}: 405, Allow: ${allow}, OPTIONS, OperationOutcome`, async () => {
        const res = await hubFetch(path, { method, headers: { "Content-Type": "application/json" }, body: method === "DELETE" ? undefined : "{}" });
        expect(res.headers.get("Allow")).toBe(`${allow}, OPTIONS`);
        await expectOutcome(res, 405, method, allow);
      });
    }
    for (const [path, allow] of OTHER) {
      it(`${method} ${path}: 405, Allow: ${allow}, OPTIONS, plain text`, async () => {
        const res = await hubFetch(path, { method });
        expect(res.headers.get("Allow")).toBe(`${allow}, OPTIONS`);
        await expectText(res, 405, method, allow);
      });
    }
  }

  it("GET /auth/token: 405, Allow: POST, OPTIONS, an OAuth error", async () => {
    const res = await hubFetch("/auth/token", { method: "GET", headers: { Authorization: "" } });
    expect(res.status).toBe(405);
    expect(res.headers.get("Allow")).toBe("POST, OPTIONS");
    expect(await res.json()).toMatchObject({ error: "invalid_request", error_description: expect.stringContaining("POST") });
  });

  it("POST /health (a GET path) is 405 too; the allowed methods still work", async () => {
    expect((await hubFetch("/health", { method: "POST" })).status).toBe(405);
    expect((await hubFetch("/health")).status).toBe(200);
    expect((await hubFetch("/api/hub/.well-known/fhircast-configuration")).status).toBe(200);
  });

  it("an unknown path is 404: OperationOutcome under /api/, plain text elsewhere", async () => {
    await expectOutcome(await hubFetch("/api/nope"), 404, "/api/nope");
    await expectOutcome(await hubFetch("/api/hub/a/b", { method: "POST" }), 404);
    await expectText(await hubFetch("/nope"), 404, "/nope");
  });

  it("POST {hub.url} with neither a form nor JSON: 415 OperationOutcome naming both types", async () => {
    await expectOutcome(await hubFetch("/api/hub", { method: "POST", headers: { "Content-Type": "text/plain" }, body: "x" }), 415, "application/x-www-form-urlencoded", "application/json");
  });

  it("POST /auth/token with the issuer off: 404 as an OAuth error", async () => {
    const res = await fetchWith({ AUTH_MODE: "open" }, new Request(`${ORIGIN}/auth/token`, form({ grant_type: "client_credentials", client_id: "c", scope: "fhircast/*.*" })));
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "invalid_request", error_description: expect.stringMatching(/issuer is off/) });
  });
});

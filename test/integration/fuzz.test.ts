// Property-based robustness (issue 5; docs/guarantees.md#bad-input "no malformed input may produce a 5xx, hang, or a
// partial state change"): fast-check throws random forms, JSON envelopes, content types, tokens, paths
// and WebSocket frames at every entry point. Properties: never a 5xx; every request answers within its
// bound; a rejected request leaves the topic exactly as it was (current context, subscription count,
// and an existing subscriber receives nothing).
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Client, connect, contentUpdate, currentContext, hubFetch, mintToken, observation, ORIGIN, patientOpen, publish, putEntry, reportOpen,
  subscribe, subscriber, topicStub, uniqueTopic,
} from "../helpers/hub";

const REQUEST_MS = 5000;
const RUNS = 60;
const TEST_MS = 60_000;

// ---- bounded requests ------------------------------------------------------------------------------

async function bounded<T>(what: string, p: Promise<T>, ms = REQUEST_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: ${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type Answer = { status: number; body: string; headers: Headers };

/** One request through the Worker, body read completely, all within REQUEST_MS. */
function call(url: string, init: RequestInit): Promise<Answer> {
  return bounded(`${init.method ?? "GET"} ${url.slice(0, 80)}`, (async () => {
    const res = await hubFetch(url, init);
    return { status: res.status, body: await res.text(), headers: res.headers };
  })());
}

function expectNo5xx(a: Answer, input: unknown) {
  if (a.status >= 500) throw new Error(`5xx (${a.status}: ${a.body.slice(0, 300)}) for ${JSON.stringify(input)?.slice(0, 500)}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until no frame has arrived for 100 ms (at most 3 s), after an accepted request. */
async function settle(client: Client) {
  const deadline = Date.now() + 3000;
  for (;;) {
    const n = client.frames.length;
    await sleep(100);
    if (client.frames.length === n || Date.now() > deadline) return;
  }
}

// ---- the topic under attack ---------------------------------------------------------------------------

function subscriptionCount(topic: string): Promise<number> {
  return runInDurableObject(topicStub(topic), (_i, state) => state.storage.sql.exec<{ n: number }>("select count(*) n from subscriptions").one().n);
}

/**
 * A topic with an observer (the default test client) subscribed to the context events, an open
 * DiagnosticReport with content, and a fuzzing client of its own (another client_id, every scope).
 */
async function fixture(label: string) {
  const topic = uniqueTopic(label);
  const { endpoint, client: observer } = await subscriber(topic, "Patient-open,Patient-close,Encounter-open,DiagnosticReport-open,DiagnosticReport-update,DiagnosticReport-close");
  expect((await publish(reportOpen(topic, "r1", "p1"))).status).toBe(202);
  const versionId = (await currentContext(topic))["context.versionId"] as string;
  expect((await publish(contentUpdate(topic, "DiagnosticReport/r1", versionId, [putEntry(observation("o1"))]))).status).toBe(202);
  await observer.waitFrames(3);
  const token = await mintToken({ client_id: `fuzzer-${label}` });
  const snapshot = async () => ({ context: await currentContext(topic), subscriptions: await subscriptionCount(topic), frames: observer.frames.length });
  let accepted = 0;
  let rejected = 0;
  return {
    topic,
    observerEndpoint: endpoint,
    observer,
    token,
    auth: (init: RequestInit): RequestInit => ({ ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${token}` } }),
    snapshot,
    /**
     * Sends one request and checks the properties: no 5xx, bounded; if refused, nothing changed. An
     * accepted request may change state: wait for its frames before the next run.
     */
    async attempt(url: string, init: RequestInit, input: unknown, readOnly = false): Promise<Answer> {
      const before = await snapshot();
      const a = await call(url, init);
      expectNo5xx(a, input);
      if (!readOnly && a.status >= 200 && a.status < 300) {
        accepted++;
        await settle(observer);
      } else {
        rejected++;
        expect({ input, after: await snapshot() }).toStrictEqual({ input, after: before });
      }
      return a;
    },
    /** The end of a property: nothing late arrived, the observer is still subscribed and served. */
    async finish(expectRejections = true) {
      const frames = observer.frames.length;
      await observer.quiet(frames, 300);
      expect(observer.closed).toBeUndefined();
      const ev = patientOpen(topic, "p-final");
      expect((await publish(ev)).status).toBe(202);
      expect(((await observer.frame(frames)) as { id: string }).id).toBe(ev.id);
      if (expectRejections) expect(rejected).toBeGreaterThan(0);
      return { accepted, rejected };
    },
  };
}

// ---- arbitraries ----------------------------------------------------------------------------------

const ascii = (max: number) => fc.stringMatching(new RegExp(`^[\\x20-\\x7e]{0,${max}}$`));
const anyString = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 }), ascii(40));
const huge = fc.constantFrom("x".repeat(70_000), "\u{1F600}".repeat(20_000), "%".repeat(10_000));

const HUB_KEYS = [
  "hub.mode", "hub.topic", "hub.events", "hub.channel.type", "hub.channel.endpoint", "hub.lease_seconds", "hub.lease",
  "subscriber.name", "endpoint", "hub.callback", "hub.secret", "HUB.MODE", "hub.mode ", "hub.topic[]", "",
];

/** Values near the valid ones (for `topic` and the observer's endpoint) and far from them. */
function formValue(topic: string, endpoint: string) {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom("websocket", "WebSocket", "webhook", "subscribe", "unsubscribe", "denied", topic, `${topic} `, "Patient-open",
      "Patient-open,Patient-close", "patient-OPEN", "*", "Patient-*", ",,,", "SyncError", "3600", "0", "-1", "1e3", "99999999999", "0x10",
      endpoint, endpoint.replace(/.$/, "0"), endpoint.replace("/ws/", "/ws//"), endpoint.toUpperCase(), `${endpoint}\n`, "ws://evil/ws/x/y", "") },
    { weight: 2, arbitrary: anyString },
    { weight: 1, arbitrary: huge },
  );
}

/**
 * Either fully random pairs, or a valid request with a few edits: a pair added, removed, duplicated or
 * given another value (so that many runs get past the first checks).
 */
function perturbedPairs(valid: [string, string][], key: fc.Arbitrary<string>, value: fc.Arbitrary<string>) {
  const edit = fc.tuple(fc.constantFrom("add", "remove", "duplicate", "revalue", "none"), fc.nat(), key, value);
  return fc.oneof(
    fc.array(fc.tuple(key, value), { maxLength: 8 }),
    fc.array(edit, { maxLength: 3 }).map((edits) => {
      const pairs = valid.map(([k, v]) => [k, v] as [string, string]);
      for (const [op, n, k, v] of edits) {
        const i = n % Math.max(pairs.length, 1);
        if (op === "add") pairs.splice(i, 0, [k, v]);
        else if (op === "remove") pairs.splice(i, 1);
        else if (op === "duplicate" && pairs[i]) pairs.push([pairs[i]![0], pairs[i]![1]]);
        else if (op === "revalue" && pairs[i]) pairs[i]![1] = v;
      }
      return pairs;
    }),
  );
}

function formPairs(topic: string, endpoint: string) {
  const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...HUB_KEYS) }, { weight: 1, arbitrary: anyString });
  return fc.oneof(
    perturbedPairs([["hub.channel.type", "websocket"], ["hub.mode", "subscribe"], ["hub.topic", topic], ["hub.events", "Patient-open"]], key, formValue(topic, endpoint)),
    perturbedPairs([["hub.channel.type", "websocket"], ["hub.mode", "unsubscribe"], ["hub.topic", topic], ["hub.channel.endpoint", endpoint]], key, formValue(topic, endpoint)),
    perturbedPairs([["hub.channel.type", "websocket"], ["hub.mode", "subscribe"], ["hub.topic", topic], ["hub.events", "Patient-open,Patient-close"], ["hub.channel.endpoint", endpoint]], key, formValue(topic, endpoint)),
  );
}

const CONTENT_TYPES = [
  "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "APPLICATION/X-WWW-FORM-URLENCODED",
  "application/json", "application/fhir+json", "application/json; charset=utf-8", "application/json;", "Application/Json",
  "text/plain", "multipart/form-data; boundary=x", "application/xml", "*/*", "",
];
const contentType = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...CONTENT_TYPES) }, { weight: 1, arbitrary: ascii(40) });
/** Mostly the right content type for the body, sometimes any. */
const formType = fc.oneof({ weight: 3, arbitrary: fc.constant("application/x-www-form-urlencoded") }, { weight: 1, arbitrary: contentType });
const jsonType = fc.oneof({ weight: 3, arbitrary: fc.constantFrom("application/json", "application/fhir+json") }, { weight: 1, arbitrary: contentType });

/** A random context entry, around the keys the catalog knows. */
const contextEntry = fc.record(
  {
    key: fc.oneof(fc.constantFrom("patient", "encounter", "report", "study", "updates", "select", "content", "extension", "Patient", ""), anyString),
    resource: fc.oneof(
      fc.record({ resourceType: fc.constantFrom("Patient", "DiagnosticReport", "Bundle", "Encounter", "Observation", "", "X"), id: fc.oneof(anyString, fc.jsonValue({ maxDepth: 1 })) }, { requiredKeys: [] }),
      fc.jsonValue({ maxDepth: 2 }),
    ),
    reference: fc.oneof(fc.record({ reference: fc.oneof(fc.constantFrom("DiagnosticReport/r1", "Patient/p1", "DiagnosticReport/", "r1"), anyString) }), fc.jsonValue({ maxDepth: 1 })),
    data: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: ["key"] },
);

/** A mutation of a JSON document: walk `path` (indexes into the keys met), then set, delete or push. */
const mutation = fc.record({
  path: fc.array(fc.nat(), { maxLength: 6 }),
  op: fc.constantFrom("set", "set", "delete", "push"),
  value: fc.oneof(
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: huge },
    { weight: 1, arbitrary: fc.constantFrom(null, [], {}, 0, -1, 1.5, true, "", "Patient-open", "DiagnosticReport-update", "patient-OPEN") },
    { weight: 2, arbitrary: contextEntry },
  ),
});
type Mutation = { path: number[]; op: string; value: unknown };

function mutate(doc: unknown, m: Mutation): unknown {
  const root = structuredClone(doc);
  let parent: Record<string, unknown> | unknown[] | undefined;
  let key: string | number | undefined;
  let here: unknown = root;
  for (const n of m.path) {
    if (typeof here !== "object" || here === null) break;
    const keys = Array.isArray(here) ? here.map((_, i) => i) : Object.keys(here);
    if (keys.length === 0) break;
    parent = here as Record<string, unknown>;
    key = keys[n % keys.length]!;
    here = (here as Record<string | number, unknown>)[key];
  }
  if (m.op === "push" && Array.isArray(here)) here.push(m.value);
  else if (parent === undefined || key === undefined) return m.op === "delete" ? {} : m.value;
  else if (m.op === "delete") Array.isArray(parent) ? parent.splice(key as number, 1) : delete (parent as Record<string, unknown>)[key as string];
  else (parent as Record<string | number, unknown>)[key] = m.value;
  return root;
}

/** Text-level damage to a JSON body: truncation, a duplicated member, stray bytes. */
const textDamage = fc.oneof(
  { weight: 12, arbitrary: fc.constant((s: string) => s) },
  fc.nat().map((n) => (s: string) => s.slice(0, n % (s.length + 1))),
  fc.constant((s: string) => s.replace('"id":', '"id":{},"id":')),
  fc.constant((s: string) => s.replace('"hub.topic":', '"hub.topic":"other","hub.topic":')),
  fc.constant((s: string) => s.replace('"context":', '"context":null,"context":')),
  fc.constant((s: string) => `\uFEFF${s}`),
  fc.constant((s: string) => `${s}garbage`),
  anyString.map((junk) => (s: string) => `${s.slice(0, s.length >> 1)}${junk}${s.slice(s.length >> 1)}`),
);

// ---- properties -----------------------------------------------------------------------------------

describe("fuzz: every entry point, never a 5xx or a hang; a refused request changes nothing", () => {
  it("random forms at POST /api/hub (subscribe / unsubscribe)", async () => {
    const f = await fixture("fz-form");
    await fc.assert(
      fc.asyncProperty(formPairs(f.topic, f.observerEndpoint), formType, async (pairs, type) => {
        const body = new URLSearchParams(pairs).toString();
        await f.attempt("/api/hub", f.auth({ method: "POST", headers: { "Content-Type": type }, body }), { pairs, type });
      }),
      { numRuns: RUNS * 2 },
    );
    await f.finish();
    // The observer's subscription was never touched by another client (ownership holds under fuzz).
    expect(await subscriptionCount(f.topic)).toBeGreaterThanOrEqual(1);
  }, TEST_MS);

  it("random JSON objects of hub.* parameters at POST /api/hub (the JSON subscription leniency)", async () => {
    const f = await fixture("fz-jsonform");
    const value = fc.oneof(formValue(f.topic, f.observerEndpoint), fc.jsonValue({ maxDepth: 2 }));
    const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...HUB_KEYS) }, { weight: 1, arbitrary: anyString });
    const members = fc.oneof(
      perturbedPairs([["hub.channel.type", "websocket"], ["hub.mode", "subscribe"], ["hub.topic", f.topic], ["hub.events", ["Patient-open", "Patient-close"]]] as never, key, value as never),
      perturbedPairs([["hub.channel.type", "websocket"], ["hub.mode", "unsubscribe"], ["hub.topic", f.topic], ["endpoint", f.observerEndpoint]], key, value as never),
    ) as fc.Arbitrary<[string, unknown][]>;
    await fc.assert(
      fc.asyncProperty(members, async (pairs) => {
        // Written by hand so that repeated members stay repeated in the text.
        const body = `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? "null"}`).join(",")}}`;
        await f.attempt("/api/hub", f.auth({ method: "POST", headers: { "Content-Type": "application/json" }, body }), body.slice(0, 500));
      }),
      { numRuns: RUNS },
    );
    await f.finish();
  }, TEST_MS);

  it("random mutations of valid Patient-open / DiagnosticReport-update envelopes at POST /api/hub and /api/hub/{topic}", async () => {
    const f = await fixture("fz-publish");
    const versionId = (await currentContext(f.topic))["context.versionId"] as string;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("open", "update"), fc.array(mutation, { maxLength: 3 }), textDamage, jsonType, fc.boolean(),
        async (base, mutations, damage, type, viaPath) => {
          const valid = base === "open" ? patientOpen(f.topic, "p-fuzz") : contentUpdate(f.topic, "DiagnosticReport/r1", versionId, [putEntry(observation("o-fuzz"))]);
          let doc: unknown = valid;
          for (const m of mutations) doc = mutate(doc, m);
          const body = damage(JSON.stringify(doc) ?? "");
          const url = viaPath ? `/api/hub/${encodeURIComponent(f.topic)}` : "/api/hub";
          await f.attempt(url, f.auth({ method: "POST", headers: { "Content-Type": type }, body }), { url, type, body: body.slice(0, 400) });
        },
      ),
      { numRuns: RUNS * 2 },
    );
    await f.finish();
  }, TEST_MS);

  it("random Authorization headers, paths and bodies at GET and POST /api/hub/{topic}", async () => {
    const f = await fixture("fz-get");
    const bound = await mintToken({ client_id: "fuzzer-bound", "hub.topic": uniqueTopic("elsewhere") });
    const authorization = fc.oneof(
      { weight: 6, arbitrary: fc.constant(`Bearer ${f.token}`) },
      fc.constant(`Bearer ${bound}`),
      fc.constant(""),
      ascii(60),
      ascii(60).map((s) => `Bearer ${s}`),
      fc.nat().map((n) => `Bearer ${f.token.slice(0, n % f.token.length)}`),
      fc.tuple(fc.nat(), ascii(1)).map(([n, c]) => {
        const i = n % f.token.length;
        return `Bearer ${f.token.slice(0, i)}${c}${f.token.slice(i + 1)}`;
      }),
    );
    const segment = fc.oneof(
      { weight: 4, arbitrary: fc.constant(encodeURIComponent(f.topic)) },
      anyString.map(encodeURIComponent),
      ascii(30),
      fc.constantFrom("%", "%zz", "%E0%A4%A", "%C0%80", "%00", "..", "%2F", ".well-known", "a%2Fb", "%F0%9F%98%80"),
    );
    await fc.assert(
      fc.asyncProperty(authorization, segment, fc.oneof({ weight: 6, arbitrary: fc.constant("GET") }, { weight: 3, arbitrary: fc.constant("POST") }, fc.constantFrom("PUT", "DELETE", "PATCH", "HEAD")),
        fc.option(fc.oneof(anyString, fc.constant(null).map(() => JSON.stringify(patientOpen(f.topic, "p-get"))))),
        async (auth, seg, method, body) => {
        let url: string;
        try {
          url = new URL(`${ORIGIN}/api/hub/${seg}`).href;
        } catch {
          fc.pre(false);
          return;
        }
        const init: RequestInit = { method, headers: { Authorization: auth, "Content-Type": "application/json" } };
        if (body !== null && method !== "GET" && method !== "HEAD") init.body = body;
        // GET is read-only even when it succeeds; a POST may publish.
        const a = await f.attempt(url, init, { auth: auth.slice(0, 80), seg, method, body }, method !== "POST");
        if (method === "GET" && a.status === 200 && url === `${ORIGIN}/api/hub/${encodeURIComponent(f.topic)}`) {
          expect(JSON.parse(a.body)).toStrictEqual(await currentContext(f.topic));
        }
      }),
      { numRuns: RUNS * 2 },
    );
    await f.finish();
  }, TEST_MS);

  it("random token requests at POST /auth/token: 200 with a complete token response, or a 4xx OAuth error", async () => {
    const f = await fixture("fz-token");
    const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom("grant_type", "client_id", "scope", "hub.topic", "client_secret", "audience", "") }, { weight: 1, arbitrary: anyString });
    const value = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom("client_credentials", "authorization_code", "app", "fhircast/*.read", "fhircast/Patient-open.rw",
        "fhircast/Patient-open.read fhircast/Patient-open.write", "FHIRCAST/*.*", "fhircast/.read", "fhircast/*", "openid", f.topic, "") },
      { weight: 2, arbitrary: anyString },
      { weight: 1, arbitrary: huge },
    );
    await fc.assert(
      fc.asyncProperty(perturbedPairs([["grant_type", "client_credentials"], ["client_id", "fuzz-app"], ["scope", "fhircast/*.read"], ["hub.topic", f.topic]], key, value), formType, fc.boolean(), async (pairs, type, asJson) => {
        const body = asJson ? JSON.stringify(Object.fromEntries(pairs)) : new URLSearchParams(pairs).toString();
        const a = await f.attempt("/auth/token", { method: "POST", headers: { "Content-Type": type, Authorization: "" }, body }, { pairs, type, asJson }, true);
        const json = JSON.parse(a.body) as Record<string, unknown>;
        if (a.status === 200) {
          expect(Object.keys(json).sort()).toEqual(["access_token", "expires_in", "hub.topic", "hub.url", "scope", "token_type"]);
        } else {
          expect([400, 413]).toContain(a.status);
          expect(Object.keys(json).sort()).toEqual(["error", "error_description"]);
        }
      }),
      { numRuns: RUNS * 2 },
    );
    await f.finish();
  }, TEST_MS);

  it("random WebSocket frames from a subscriber (strings, binary, any JSON, acks with odd ids and statuses) and random ws endpoints", async () => {
    const f = await fixture("fz-ws");
    // The fuzzing subscriber, acknowledging what it is sent (so no ack timeout ends it).
    const fuzzer = await connect(await subscribe(f.topic, "Patient-open,DiagnosticReport-open"));
    await fuzzer.waitFrames(2); // confirmation + the replayed DiagnosticReport-open
    const knownIds = [...f.observer.frames, ...fuzzer.frames].map((fr) => (fr as { id?: string }).id).filter((id): id is string => typeof id === "string");
    const ack = fc.record(
      {
        id: fc.oneof(fc.constantFrom(...knownIds, "", " ", "none"), anyString, fc.jsonValue({ maxDepth: 1 })),
        status: fc.oneof(fc.constantFrom(200, "200", 202, 409, "409", 404, 500, "500", 0, -1, 1e308, "", "OK", null), fc.jsonValue({ maxDepth: 1 })),
        event: fc.jsonValue({ maxDepth: 2 }),
      },
      { requiredKeys: [] },
    ).map((o) => JSON.stringify(o));
    const frame = fc.oneof(
      { weight: 3, arbitrary: ack },
      { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
      { weight: 2, arbitrary: fc.oneof(anyString, fc.string({ maxLength: 2000 })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 4096 }) },
      { weight: 1, arbitrary: fc.constantFrom("ping", "pong", "", "{", "null", '{"hub.channel.endpoint":"x"}', '{"hub.mode":"unsubscribe"}', JSON.stringify(patientOpen(f.topic, "p-ws"))) },
    );
    const before = await f.snapshot();
    const fuzzerFrames = fuzzer.frames.length;
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 5 }), async (frames) => {
        for (const fr of frames) fuzzer.ws.send(fr);
        // The topic object answers in order: a request after the frames is served after them.
        expect({ frames: frames.map((x) => (typeof x === "string" ? x.slice(0, 200) : `<${x.byteLength} bytes>`)), after: await f.snapshot() })
          .toStrictEqual({ frames: frames.map((x) => (typeof x === "string" ? x.slice(0, 200) : `<${x.byteLength} bytes>`)), after: before });
        expect(fuzzer.closed).toBeUndefined();
      }),
      { numRuns: RUNS * 2 },
    );
    // Nothing but the runtime's "pong" to each "ping" (setWebSocketAutoResponse) came back.
    await sleep(300);
    const pongs = fuzzer.frames.length - fuzzerFrames;
    expect(fuzzer.frames.slice(fuzzerFrames)).toStrictEqual(Array(pongs).fill({ raw: "pong" }));

    // Random ws endpoints: a 101 carrying a denial then close 1008, or a 4xx; never a 5xx or a hang.
    const path = fc.oneof(
      fc.constant(f.observerEndpoint.replace(/^ws/, "http")),
      fc.constant(f.observerEndpoint.replace(/^ws/, "http").replace(/[0-9a-f]$/, "x")),
      fc.tuple(fc.stringMatching(/^[0-9a-f]{64}$/), fc.stringMatching(/^[0-9a-f]{32}$/)).map(([id, s]) => `${ORIGIN}/ws/${id}/${s}`),
      ascii(80).map((s) => `${ORIGIN}/ws/${encodeURIComponent(s)}`),
      ascii(80).map((s) => `${ORIGIN}/ws/${s.replace(/[#?]/g, "")}`),
    );
    let denied = 0;
    await fc.assert(
      fc.asyncProperty(path, fc.boolean(), async (url, upgrade) => {
        const res = await bounded(`upgrade ${url}`, hubFetch(url, { headers: upgrade ? { Upgrade: "websocket" } : {} }));
        expect(res.status).toBeLessThan(500);
        if (res.status !== 101) {
          // 426 without an upgrade; 404 where the URL normalized out of /ws/ (e.g. "/ws/../x").
          expect(upgrade ? [404] : [404, 426]).toContain(res.status);
          await res.text();
          return;
        }
        denied++;
        const ws = res.webSocket!;
        const frames: string[] = [];
        const closed = new Promise<number>((resolve) => ws.addEventListener("close", (e) => resolve(e.code)));
        ws.addEventListener("message", (e) => frames.push(e.data as string));
        ws.accept();
        expect(await bounded("denial close", closed)).toBe(1008);
        const denial = JSON.parse(frames[0]!) as Record<string, unknown>;
        expect(denial["hub.mode"]).toBe("denied");
        // The observer's endpoint is connected already: the denial names the topic to its holder only.
        if (url !== f.observerEndpoint.replace(/^ws/, "http")) expect(denial["hub.topic"]).toBe("");
      }),
      { numRuns: RUNS },
    );
    expect(denied).toBeGreaterThan(0);
    expect(await f.snapshot()).toStrictEqual(before);
    await f.finish(false);
    expect(fuzzer.closed).toBeUndefined();
    expect(((await fuzzer.frame(fuzzerFrames + pongs)) as { event: { "hub.event": string } }).event["hub.event"]).toBe("Patient-open");
    fuzzer.close();
  }, TEST_MS);
});

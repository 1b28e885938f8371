// Bad input at volume (issue 11): thousands of malformed requests (forms, JSON, wrong types, huge
// strings, unknown events, bad tokens, wrong content types, bad paths) and malformed frames on the
// subscribers' sockets, interleaved with valid publishes, never change the valid outcome: no 5xx, every
// bad request refused (4xx) without a trace, the subscribers get exactly the valid events in order, the
// event log holds exactly them, and GET returns the last valid open.
import { describe, expect, it } from "vitest";
import { generateKeyPair, SignJWT } from "jose";
import { DEV_AUDIENCE, DEV_ISSUER } from "../../src/auth/dev-issuer";
import {
  connect, currentContext, event, form, hubFetch, mintToken, patient, publishInit, subscribe, subscribeForm, topicSql, uniqueTopic,
} from "../helpers/hub";
import { rng } from "../helpers/rng";

const BAD_REQUESTS = 3000;
const VALID_EVERY = 30;
const BATCH_CONCURRENCY = 10;


type Bad = { kind: string; path: string; init: RequestInit };

describe("bad input at volume, interleaved with valid publishes", () => {
  it(`${BAD_REQUESTS} malformed requests and hundreds of malformed frames leave exactly the valid outcome`, async () => {
    const topic = uniqueTopic("volume");
    const otherTopic = uniqueTopic("volume-other");
    const random = rng(2026);
    const pick = <T,>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;
    const junk = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(random() * 95))).join("");

    // Tokens that must all be refused (401/403), and a good one.
    const foreignKey = (await generateKeyPair("ES256")).privateKey;
    const now = Math.floor(Date.now() / 1000);
    const foreign = await new SignJWT({ scope: "fhircast/*.*", client_id: "evil" })
      .setProtectedHeader({ alg: "ES256", kid: "evil" }).setIssuer(DEV_ISSUER).setAudience(DEV_AUDIENCE).setIssuedAt(now).setExpirationTime(now + 600).sign(foreignKey);
    const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    const badTokens = [
      "garbage",
      "a.b.c",
      `${b64({ alg: "none", typ: "JWT" })}.${b64({ scope: "fhircast/*.*", iss: DEV_ISSUER, aud: DEV_AUDIENCE, exp: now + 600 })}.`,
      foreign,
      await mintToken({}, { expiresIn: -60 }),
      await mintToken({}, { issuer: "https://evil.example" }),
      await mintToken({}, { audience: "someone-else" }),
      await mintToken({ "hub.topic": otherTopic }), // bound to another topic: 403
      await mintToken({ scope: "fhircast/Patient-open.read" }), // no write scope: 403
      "x".repeat(20_000),
    ];

    // Subscribers: S gets every valid event (and would get any SyncError); J sends junk frames on its
    // socket; H sends one frame over 16 KB (closed 1009 by the hub, which must not raise a SyncError).
    const events = "Patient-open,Patient-close,DiagnosticReport-open,SyncError";
    const s = await connect(await subscribe(topic, events));
    const j = await connect(await subscribe(topic, "Patient-open"));
    const h = await connect(await subscribe(topic, "Patient-open"));
    await Promise.all([s.waitFrames(1), j.waitFrames(1), h.waitFrames(1)]);

    const validEvent = (n: number) => (n % 3 === 2 ? event(topic, "Patient-close", [{ key: "patient", resource: patient(`v${n - 1}`) }]) : event(topic, "Patient-open", [{ key: "patient", resource: patient(`v${n}`) }]));
    const json = (body: unknown, extra: Record<string, string> = {}): RequestInit => ({ method: "POST", headers: { "Content-Type": "application/json", ...extra }, body: typeof body === "string" ? body : JSON.stringify(body) });
    const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

    const templates: (() => Bad)[] = [
      // JSON publishes with wrong shapes and types.
      () => ({ kind: "publish: id of the wrong type", path: "/api/hub", init: json({ ...validEvent(0), id: pick([42, null, {}, [], true]) }) }),
      () => ({ kind: "publish: timestamp of the wrong type", path: "/api/hub", init: json({ ...validEvent(0), timestamp: pick([1, {}, [], null]) }) }),
      () => ({ kind: "publish: no event", path: "/api/hub", init: json({ id: crypto.randomUUID(), timestamp: new Date().toISOString() }) }),
      () => ({ kind: "publish: context not an array", path: "/api/hub", init: json({ ...validEvent(0), event: { "hub.topic": topic, "hub.event": "Patient-open", context: pick([{}, "x", 1, null]) } }) }),
      () => ({ kind: "publish: unknown event", path: "/api/hub", init: json(event(topic, pick(["Patient-opne", "patient", "Foo-open", "X-update", "heartbeat", "", "Patient-open ", "*"]), [{ key: "patient", resource: patient("x") }])) }),
      () => ({ kind: "publish: huge event name", path: "/api/hub", init: json(event(topic, "Patient-open" + junk(300 + Math.floor(random() * 5000)), [])) }),
      () => ({ kind: "publish: huge topic", path: "/api/hub", init: json(event(topic + junk(600 + Math.floor(random() * 20_000)), "Patient-open", [{ key: "patient", resource: patient("x") }])) }),
      () => ({ kind: "publish: huge id", path: "/api/hub", init: json({ ...validEvent(0), id: junk(300 + Math.floor(random() * 50_000)) }) }),
      () => ({ kind: "publish: unknown context key", path: "/api/hub", init: json(event(topic, "Patient-open", [{ key: "patient", resource: patient("x") }, { key: pick(["bogus", "Patient", "PATIENT", ""]), resource: patient("y") }])) }),
      () => ({ kind: "publish: wrong resourceType", path: "/api/hub", init: json(event(topic, "Patient-open", [{ key: "patient", resource: { resourceType: pick(["Encounter", "patient", 7, null]), id: "x" } }])) }),
      () => ({ kind: "publish: missing required key", path: "/api/hub", init: json(event(topic, pick(["Patient-open", "Encounter-open", "DiagnosticReport-open"]), [])) }),
      () => ({ kind: "publish: context entry not an object", path: "/api/hub", init: json(event(topic, "Patient-open", [pick([1, "x", null, [], { resource: patient("x") }])])) }),
      () => ({ kind: "publish: update without version", path: "/api/hub", init: json(event(topic, "DiagnosticReport-update", [{ key: "report", reference: { reference: "DiagnosticReport/r1" } }, { key: "updates", resource: { resourceType: "Bundle", type: "transaction", entry: [] } }])) }),
      () => ({ kind: "publish: update of a report not open (409)", path: "/api/hub", init: json(event(topic, "DiagnosticReport-update", [{ key: "report", reference: { reference: "DiagnosticReport/nope" } }, { key: "updates", resource: { resourceType: "Bundle", type: "transaction", entry: [{ request: { method: "PUT" }, resource: { resourceType: "Observation", id: "o" } }] } }], { "context.versionId": crypto.randomUUID() })) }),
      () => ({ kind: "publish: bad update bundle", path: "/api/hub", init: json(event(topic, "DiagnosticReport-update", [{ key: "report", reference: { reference: "DiagnosticReport/r1" } }, { key: "updates", resource: { resourceType: "Bundle", type: "transaction", entry: pick([[{ request: { method: "POST" }, resource: { resourceType: "Observation", id: "o" } }], "x", [1], [{}]]) } }], { "context.versionId": "v" })) }),
      () => ({ kind: "publish: path topic differs", path: `/api/hub/${encodeURIComponent(otherTopic)}`, init: json(validEvent(0)) }),
      () => ({ kind: "publish: deep nesting", path: "/api/hub", init: json(`{"id":"x","timestamp":"t","event":${"[".repeat(2000)}${"]".repeat(2000)}}`) }),
      // Not JSON at all.
      () => ({ kind: "invalid JSON", path: "/api/hub", init: json(pick(["{", "}", "{'id': 1}", "[1,2,", "NaN", "undefined", "{\"id\":\"x\",}", "\u0000", junk(200)])) }),
      () => ({ kind: "invalid UTF-8", path: "/api/hub", init: { method: "POST", headers: { "Content-Type": "application/json" }, body: new Uint8Array([0x7b, 0xff, 0xfe, 0xc3, 0x28, 0x7d]) } }),
      () => ({ kind: "JSON: top-level array/scalar", path: "/api/hub", init: json(pick(["[]", "1", "\"x\"", "null", "true"])) }),
      // Wrong content types and methods.
      () => ({ kind: "wrong content type", path: "/api/hub", init: { method: "POST", headers: { "Content-Type": pick(["text/plain", "application/xml", "multipart/form-data; boundary=x", "application/jsonx"]) }, body: JSON.stringify(validEvent(0)) } }),
      () => ({ kind: "no content type", path: "/api/hub", init: { method: "POST", body: "hub.mode=subscribe" } }),
      () => ({ kind: "wrong method", path: "/api/hub", init: { method: pick(["PUT", "DELETE", "PATCH"]), headers: { "Content-Type": "application/json" }, body: JSON.stringify(validEvent(0)) } }),
      () => ({ kind: "bad path", path: pick(["/api/hub/%E0%A4%A", "/api/hubx", "/ws/zz/yy", "/api/inspect/%ZZ", "/" + junk(50).replace(/[?#%]/g, "")]), init: { method: pick(["GET", "POST"]) } }),
      () => ({ kind: "upgrade to a forged endpoint", path: pick(["/ws/abc/def", `/ws/${"0".repeat(64)}/${"1".repeat(32)}`, "/ws/"]), init: { headers: { Upgrade: "websocket" } } }),
      // Subscription forms.
      () => ({ kind: "subscribe: missing or bad parameters", path: "/api/hub", init: form(pick<Record<string, string>>([{ "hub.mode": "subscribe" }, { "hub.channel.type": "websocket", "hub.topic": topic, "hub.events": "Patient-open" }, { "hub.channel.type": "webhook", "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open" }, { "hub.channel.type": "websocket", "hub.mode": "sub", "hub.topic": topic, "hub.events": "Patient-open" }])) }),
      () => ({ kind: "subscribe: bad events", path: "/api/hub", init: subscribeForm(topic, pick(["*", "Patient-*", "Nope-open", ",,,", "", junk(100)])) }),
      () => ({ kind: "subscribe: bad lease", path: "/api/hub", init: subscribeForm(topic, "Patient-open", { "hub.lease_seconds": pick(["-1", "0", "abc", "1.5", "1e309"]) }) }),
      () => ({ kind: "subscribe: huge name", path: "/api/hub", init: subscribeForm(topic, "Patient-open", { "subscriber.name": junk(2000 + Math.floor(random() * 5000)) }) }),
      () => ({ kind: "subscribe: repeated parameter", path: "/api/hub", init: { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: `hub.channel.type=websocket&hub.mode=subscribe&hub.topic=${encodeURIComponent(topic)}&hub.events=Patient-open&hub.events=Patient-close` } }),
      () => ({ kind: "unsubscribe: unknown endpoint", path: "/api/hub", init: form({ "hub.channel.type": "websocket", "hub.mode": "unsubscribe", "hub.topic": topic, "hub.channel.endpoint": pick(["ws://hub.test/ws/abc/def", "", junk(80)]) }) }),
      () => ({ kind: "form: garbage body", path: "/api/hub", init: { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: pick(["%%%", "=&=&=", junk(500), "hub.mode"]) } }),
      // Bad tokens on a valid publish, subscribe and GET.
      () => ({ kind: "bad token: publish", path: "/api/hub", init: json(validEvent(0), bearer(pick(badTokens))) }),
      () => ({ kind: "bad token: subscribe", path: "/api/hub", init: { ...subscribeForm(topic, "Patient-open"), headers: { "Content-Type": "application/x-www-form-urlencoded", ...bearer(pick(badTokens.slice(0, 8))) } } }),
      () => ({ kind: "no token", path: "/api/hub", init: json(validEvent(0), { Authorization: "" }) }),
      () => ({ kind: "bad token: inspector", path: `/api/inspect/${encodeURIComponent(topic)}`, init: { headers: bearer(pick(badTokens)) } }),
    ];

    // Build the interleaved sequence: batches of bad requests, each followed by one valid publish.
    const bads: Bad[] = Array.from({ length: BAD_REQUESTS }, () => pick(templates)());
    // Over the body limit (1 MiB), a few times.
    for (let i = 0; i < 3; i++) bads.splice(Math.floor(random() * bads.length), 0, { kind: "body over MAX_BODY_BYTES", path: "/api/hub", init: json({ ...validEvent(0), pad: "x".repeat(1_100_000) }) });

    const statuses = new Map<string, Map<number, number>>();
    const serverErrors: string[] = [];
    const accepted: string[] = [];
    const valid: { id: string; ev: ReturnType<typeof validEvent> }[] = [];
    let junkFrames = 0;
    const junkFrame = () =>
      pick<string | ArrayBuffer>([
        "", "{", "null", "[]", "42", "\"x\"", "{\"id\":42}", "{\"id\":null,\"status\":200}", "{\"status\":500}",
        JSON.stringify({ id: crypto.randomUUID(), status: 500 }), JSON.stringify({ id: crypto.randomUUID(), status: "409" }),
        JSON.stringify({ "hub.channel.endpoint": "ws://x" }), JSON.stringify({ id: "x".repeat(10_000) }), junk(300),
        new Uint8Array([1, 2, 3]).buffer, "ping",
      ]);

    for (let start = 0, n = 0; start < bads.length; start += VALID_EVERY, n++) {
      const batch = bads.slice(start, start + VALID_EVERY);
      for (let k = 0; k < batch.length; k += BATCH_CONCURRENCY) {
        await Promise.all(
          batch.slice(k, k + BATCH_CONCURRENCY).map(async (b) => {
            const res = await hubFetch(b.path, b.init);
            if (res.webSocket) {
              res.webSocket.accept();
              res.webSocket.close();
            }
            await res.arrayBuffer();
            const per = statuses.get(b.kind) ?? new Map<number, number>();
            per.set(res.status, (per.get(res.status) ?? 0) + 1);
            statuses.set(b.kind, per);
            if (res.status >= 500) serverErrors.push(`${b.kind}: ${res.status}`);
            if (res.status >= 200 && res.status < 300) accepted.push(b.kind);
          }),
        );
      }
      for (let f = 0; f < 5; f++, junkFrames++) j.send(junkFrame());
      const ev = validEvent(n);
      const res = await hubFetch("/api/hub", publishInit(ev));
      expect(res.status, await res.text()).toBe(202);
      valid.push({ id: ev.id, ev });
    }
    h.send("x".repeat(20_000));
    expect((await h.waitClose()).code).toBe(1009);

    const byKind = [...statuses.entries()].map(([k, m]) => `${k}: ${[...m.entries()].map(([s, c]) => `${s}×${c}`).join(" ")}`);
    console.log(`[bad-input] ${bads.length} bad requests, ${valid.length} valid publishes, ${junkFrames} junk frames\n  ${byKind.join("\n  ")}`);
    expect(serverErrors).toEqual([]);
    // Upgrades to forged endpoints are answered 101 + denial + 1008; every other bad request is a 4xx.
    expect(accepted.filter((k) => k !== "upgrade to a forged endpoint")).toEqual([]);

    // The subscribers got exactly the valid events, in order (and no SyncError: the 1009 was the hub's doing).
    const validIds = valid.map((v) => v.id);
    await s.waitFrames(1 + valid.length, 10_000);
    await s.quiet(1 + valid.length, 300);
    expect(s.frames.slice(1).map((f: any) => f.id)).toEqual(validIds);
    await j.waitFrames(1 + valid.filter((v) => v.ev.event["hub.event"] === "Patient-open").length);
    const jEvents = j.frames.filter((f: any) => f.event).map((f: any) => f.id);
    expect(jEvents).toEqual(valid.filter((v) => v.ev.event["hub.event"] === "Patient-open").map((v) => v.id));
    expect(j.closed).toBeUndefined();
    // The event log holds exactly the valid events; the subscriptions are the three made above (H's ended).
    const log = await topicSql<{ id: string }>(topic, `SELECT id FROM events ORDER BY seq`);
    expect(log.map((r) => r.id)).toEqual(validIds);
    expect(await topicSql(topic, `SELECT count(*) AS n FROM subscriptions`)).toEqual([{ n: 2 }]);
    // GET: the last valid open, exactly as sent (the last valid event is an open or the close of the open before it).
    const last = valid[valid.length - 1]!.ev;
    const ctx = await currentContext(topic);
    if (last.event["hub.event"] === "Patient-open") {
      expect(ctx["context.type"]).toBe("Patient");
      expect((ctx.context as any[]).filter((c) => c.key !== "content")).toEqual(last.event.context);
    } else {
      expect(ctx).toEqual({ "context.type": "", context: [] });
    }
    // Nothing reached the other topic named in the bad requests.
    expect(await topicSql(otherTopic, `SELECT name FROM sqlite_master WHERE name = 'events'`)).toEqual([]);
    s.close();
    j.close();
  }, 120_000);
});

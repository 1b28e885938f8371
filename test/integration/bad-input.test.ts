// Bad input (issue 2; docs/guarantees.md#bad-input): malformed forms and JSON, wrong content types, unknown events,
// context that breaks the catalog, oversized bodies. Each gets a 4xx whose body names the problem
// (plain text for subscribe/unsubscribe, OperationOutcome for JSON APIs), never a 5xx; afterwards the
// current context is unchanged and no subscriber got a frame.
import { describe, expect, it } from "vitest";
import {
  currentContext, event, expectOutcome, expectText, hubFetch, patient, patientOpen, publish, publishInit, subscriber, topicSql,
  uniqueTopic,
} from "../helpers/hub";

const MAX_BODY_BYTES = 1048576;

/**
 * A topic with a subscriber to every context event and a current context (Patient p1). `check()`
 * asserts the current context is exactly as before and the subscriber got nothing more.
 */
async function fixture() {
  const topic = uniqueTopic("bad");
  const { client } = await subscriber(topic, "Patient-open,Patient-close,Encounter-open,DiagnosticReport-open,SyncError,Home-open");
  expect((await publish(patientOpen(topic, "p1"))).status).toBe(202);
  await client.waitFrames(2);
  const before = await currentContext(topic);
  const subs = await topicSql(topic, `SELECT id, events, lease_seconds FROM subscriptions ORDER BY id`);
  return {
    topic,
    async check() {
      await client.quiet(2);
      expect(await currentContext(topic)).toStrictEqual(before);
      expect(await topicSql(topic, `SELECT id, events, lease_seconds FROM subscriptions ORDER BY id`)).toEqual(subs);
    },
    close: () => client.close(),
  };
}

const json = (body: string, contentType = "application/json"): RequestInit => ({ method: "POST", headers: { "Content-Type": contentType }, body });

describe("bad publishes: 4xx OperationOutcome naming the problem; state and subscribers untouched", () => {
  type Case = { name: string; body: (topic: string) => unknown; status: number; needles: (string | RegExp)[] };
  const withContext = (topic: string, name: string, context: unknown[]) => event(topic, name, context);
  const cases: Case[] = [
    { name: "unknown event", body: (t) => withContext(t, "Patient-transmogrify", [{ key: "patient", resource: patient("p2") }]), status: 400, needles: ["Patient-transmogrify"] },
    { name: "wildcard event", body: (t) => withContext(t, "*", []), status: 400, needles: ['"*"'] },
    { name: "missing anchor id (Patient-open without resource.id)", body: (t) => withContext(t, "Patient-open", [{ key: "patient", resource: { resourceType: "Patient" } }]), status: 400, needles: ["patient", /"id"/] },
    { name: "empty anchor id", body: (t) => withContext(t, "Patient-open", [{ key: "patient", resource: { resourceType: "Patient", id: " " } }]), status: 400, needles: [/"id"/] },
    { name: "wrong resourceType for a key", body: (t) => withContext(t, "Patient-open", [{ key: "patient", resource: { resourceType: "Encounter", id: "e1" } }]), status: 400, needles: ["patient", "resourceType", "Patient", "Encounter"] },
    { name: "missing required key (Encounter-open without patient)", body: (t) => withContext(t, "Encounter-open", [{ key: "encounter", resource: { resourceType: "Encounter", id: "e1" } }]), status: 400, needles: ["Encounter-open", '"patient"'] },
    { name: "missing the only key (Patient-open with empty context)", body: (t) => withContext(t, "Patient-open", []), status: 400, needles: ['"patient"'] },
    { name: "unknown context key", body: (t) => withContext(t, "Patient-open", [{ key: "patient", resource: patient("p2") }, { key: "foo", resource: { resourceType: "Basic", id: "b" } }]), status: 400, needles: ['"foo"'] },
    { name: "a key given twice where 1..1", body: (t) => withContext(t, "Patient-open", [{ key: "patient", resource: patient("p2") }, { key: "patient", resource: patient("p3") }]), status: 400, needles: ['"patient"', /at most 1/] },
    { name: "a resource key without a resource", body: (t) => withContext(t, "Patient-open", [{ key: "patient", reference: { reference: "Patient/p2" } }]), status: 400, needles: ["patient", "resource"] },
    { name: "a reference key given as a resource (DiagnosticReport-select report)", body: (t) => withContext(t, "DiagnosticReport-select", [{ key: "report", resource: { resourceType: "DiagnosticReport", id: "r1" } }, { key: "select", reference: { reference: "Observation/o1" } }]), status: 400, needles: ["reference"] },
    { name: "a reference to the wrong resource type (DiagnosticReport-select report → Patient)", body: (t) => withContext(t, "DiagnosticReport-select", [{ key: "report", reference: { reference: "Patient/p1" } }]), status: 400, needles: ["DiagnosticReport"] },
    { name: "a context entry that is not an object", body: (t) => withContext(t, "Patient-open", ["patient"]), status: 400, needles: ["context[0]"] },
    { name: "missing id", body: (t) => { const e: Record<string, unknown> = patientOpen(t, "p2"); delete e.id; return e; }, status: 400, needles: ["id"] },
    { name: "missing timestamp", body: (t) => { const e: Record<string, unknown> = patientOpen(t, "p2"); delete e.timestamp; return e; }, status: 400, needles: ["timestamp"] },
    { name: "missing event", body: () => ({ id: "x", timestamp: new Date().toISOString() }), status: 400, needles: ["event"] },
    { name: "context not an array", body: (t) => ({ ...patientOpen(t, "p2"), event: { "hub.topic": t, "hub.event": "Patient-open", context: {} } }), status: 400, needles: ["context"] },
    { name: "missing hub.event", body: (t) => ({ ...patientOpen(t, "p2"), event: { "hub.topic": t, context: [] } }), status: 400, needles: ["hub.event"] },
    { name: "a JSON array body", body: () => [], status: 400, needles: [/body|expected object/i] },
  ];
  for (const c of cases) {
    it(`refuses ${c.name} with ${c.status}`, async () => {
      const f = await fixture();
      await expectOutcome(await publish(c.body(f.topic)), c.status, ...c.needles);
      await f.check();
      f.close();
    });
  }

  it("refuses malformed JSON with 400 naming JSON", async () => {
    const f = await fixture();
    await expectOutcome(await hubFetch("/api/hub", json(`{"timestamp": "2018-01-08T01:37:05.14Z", "id": "x", "event": {`)), 400, /JSON/);
    await expectOutcome(await hubFetch(`/api/hub/${encodeURIComponent(f.topic)}`, json("not json at all", "application/fhir+json")), 400, /JSON/);
    await f.check();
    f.close();
  });

  it("refuses a body that is not UTF-8 with 400", async () => {
    const f = await fixture();
    const res = await hubFetch("/api/hub", { method: "POST", headers: { "Content-Type": "application/json" }, body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) });
    await expectOutcome(res, 400, /UTF-8/);
    await f.check();
    f.close();
  });

  it("refuses a publish with a wrong content type: 415 OperationOutcome on {hub.url} and on {hub.url}/{topic}", async () => {
    const f = await fixture();
    const body = JSON.stringify(patientOpen(f.topic, "p2"));
    await expectOutcome(await hubFetch("/api/hub", json(body, "text/plain")), 415, "application/json");
    await expectOutcome(await hubFetch("/api/hub", json(body, "application/xml")), 415, "application/fhir+json");
    await expectOutcome(await hubFetch(`/api/hub/${encodeURIComponent(f.topic)}`, json(body, "text/plain")), 415, "application/json");
    await f.check();
    f.close();
  });

  it("a JSON publish sent as a form (curl -d) is refused with 415 saying publishing needs Content-Type: application/json", async () => {
    const f = await fixture();
    const res = await hubFetch("/api/hub", json(JSON.stringify(patientOpen(f.topic, "p2")), "application/x-www-form-urlencoded"));
    await expectText(res, 415, "Content-Type: application/json");
    const padded = await hubFetch("/api/hub", json(`\n  ${JSON.stringify(patientOpen(f.topic, "p2"))}`, "application/x-www-form-urlencoded"));
    await expectText(padded, 415, "Content-Type: application/json");
    await f.check();
    f.close();
  });

  it(`refuses a body larger than MAX_BODY_BYTES (${MAX_BODY_BYTES}) with 413 naming the limit`, async () => {
    const f = await fixture();
    const ev = patientOpen(f.topic, "p2");
    (ev.event.context[0] as { resource: Record<string, unknown> }).resource.text = { status: "generated", div: "x".repeat(MAX_BODY_BYTES) };
    await expectOutcome(await publish(ev), 413, String(MAX_BODY_BYTES));
    await expectOutcome(await hubFetch(`/api/hub/${encodeURIComponent(f.topic)}`, publishInit(ev)), 413, String(MAX_BODY_BYTES));
    await f.check();
    f.close();
  });

  it("refuses an oversized body streamed without Content-Length with 413", async () => {
    const f = await fixture();
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_BODY_BYTES + chunk.byteLength) controller.close();
        else {
          controller.enqueue(chunk);
          sent += chunk.byteLength;
        }
      },
    });
    const res = await hubFetch("/api/hub", { method: "POST", headers: { "Content-Type": "application/json" }, body: stream, duplex: "half" } as RequestInit);
    await expectOutcome(res, 413, String(MAX_BODY_BYTES));
    await f.check();
    f.close();
  });
});

describe("bad subscription requests: 4xx plain text naming the problem; state and subscribers untouched", () => {
  const formBody = (body: string): RequestInit => ({ method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body });

  it("refuses a malformed form (no parameters recognisable) with 400 naming a missing parameter", async () => {
    const f = await fixture();
    await expectText(await hubFetch("/api/hub", formBody("%%%&&&==garbage")), 400, "hub.channel.type");
    await expectText(await hubFetch("/api/hub", formBody("")), 400, "hub.channel.type");
    await f.check();
    f.close();
  });

  it("refuses a form with a repeated parameter with 400", async () => {
    const f = await fixture();
    const body = `hub.channel.type=websocket&hub.mode=subscribe&hub.topic=${encodeURIComponent(f.topic)}&hub.events=Patient-open&hub.mode=unsubscribe`;
    await expectText(await hubFetch("/api/hub", formBody(body)), 400, "hub.mode", /more than once/);
    await f.check();
    f.close();
  });

  it("refuses a subscribe to unknown events with 400 naming them", async () => {
    const f = await fixture();
    const body = `hub.channel.type=websocket&hub.mode=subscribe&hub.topic=${encodeURIComponent(f.topic)}&hub.events=Patient-open,Study-open`;
    await expectText(await hubFetch("/api/hub", formBody(body)), 400, "Study-open");
    await f.check();
    f.close();
  });

  it("refuses a form body that is not UTF-8 with 400", async () => {
    const f = await fixture();
    const res = await hubFetch("/api/hub", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new Uint8Array([0x68, 0x75, 0x62, 0xc3, 0x28]) });
    await expectText(res, 400, /UTF-8/);
    await f.check();
    f.close();
  });

  it(`refuses a form body larger than MAX_BODY_BYTES with 413 (plain text) naming the limit`, async () => {
    const f = await fixture();
    const body = `hub.channel.type=websocket&hub.mode=subscribe&hub.topic=${encodeURIComponent(f.topic)}&hub.events=Patient-open&subscriber.name=${"n".repeat(MAX_BODY_BYTES)}`;
    await expectText(await hubFetch("/api/hub", formBody(body)), 413, String(MAX_BODY_BYTES));
    await f.check();
    f.close();
  });

  it("refuses a JSON subscribe with a non-string parameter with 400 naming it", async () => {
    const f = await fixture();
    const body = JSON.stringify({ "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": f.topic, "hub.events": "Patient-open", "hub.lease_seconds": { n: 1 } });
    await expectText(await hubFetch("/api/hub", json(body)), 400, "hub.lease_seconds");
    await f.check();
    f.close();
  });
});

describe("malformed topic in the URL: 400, never a 5xx", () => {
  it("GET {hub.url}/{topic} with a malformed percent-escape answers 400 OperationOutcome naming the topic", async () => {
    await expectOutcome(await hubFetch("/api/hub/%E0%A4%A"), 400, /topic/);
    await expectOutcome(await hubFetch("/api/hub/bad%ZZtopic"), 400, /topic/);
  });

  it("POST {hub.url}/{topic} with a malformed percent-escape answers 400 and changes nothing", async () => {
    const f = await fixture();
    await expectOutcome(await hubFetch("/api/hub/%ZZ", publishInit(patientOpen(f.topic, "p2"))), 400, /topic/);
    await f.check();
    f.close();
  });
});

describe("other routes", () => {
  it("answers 404 for an unknown path and 405 (with Allow) for other methods on the hub URL, never 5xx", async () => {
    expect((await hubFetch("/nope")).status).toBe(404);
    const put = await hubFetch("/api/hub", { method: "PUT", headers: { "Content-Type": "application/json" }, body: "{}" });
    expect(put.headers.get("Allow")).toBe("POST, OPTIONS");
    await expectOutcome(put, 405, "PUT");
    await expectOutcome(await hubFetch("/api/hub", { method: "DELETE" }), 405, "DELETE");
  });
});

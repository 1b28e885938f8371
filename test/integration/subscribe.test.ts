// fhircast.hl7.org/STU3/2-4-Subscribing.html: the subscription request, its validation, the 202
// response and the confirmation frame. Every refusal is a 4xx with a plain-text body naming the problem.
import { describe, expect, it } from "vitest";
import {
  connect, expectOutcome, expectText, form, HUB, hubFetch, subscribe, subscribeForm, subscriber, topicSql, uniqueTopic,
} from "../helpers/hub";

const base = (topic: string) => ({ "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open" });

/** Subscribes and returns the confirmation frame received on connect. */
async function confirmation(topic: string, events: string, extra: Record<string, string> = {}) {
  const { client } = await subscriber(topic, events, extra);
  const frame = client.frames[0];
  client.close();
  return frame;
}

/** A refused subscribe must not have created a subscription in the topic's object. */
async function expectNoSubscriptions(topic: string) {
  const tables = await topicSql<{ name: string }>(topic, `SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'subscriptions'`);
  if (tables.length === 0) return; // the topic object was never even created
  expect(await topicSql(topic, `SELECT id FROM subscriptions`)).toEqual([]);
}

describe("subscribe: accepted requests (fhircast.hl7.org/STU3/2-4-Subscribing.html)", () => {
  it("SHALL answer 202 with application/json {hub.channel.endpoint} and nothing else", async () => {
    const topic = uniqueTopic("sub");
    const res = await hubFetch("/api/hub", subscribeForm(topic, "Patient-open,Patient-close", { "subscriber.name": "Acme Viewer" }));
    expect(res.status).toBe(202);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    const body = (await res.json()) as Record<string, string>;
    expect(Object.keys(body)).toEqual(["hub.channel.endpoint"]);
    expect(body["hub.channel.endpoint"]).toMatch(/^ws:\/\/hub\.test\//);
  });

  it("SHALL send the confirmation frame with exactly hub.mode, hub.topic, hub.events (comma string) and hub.lease_seconds (number)", async () => {
    const topic = uniqueTopic("sub");
    const frame = await confirmation(topic, "Patient-open,Patient-close");
    expect(frame).toStrictEqual({
      "hub.mode": "subscribe",
      "hub.topic": topic,
      "hub.events": "Patient-open,Patient-close",
      "hub.lease_seconds": 3600,
    });
  });

  it("SHALL treat hub.events as a set: values trimmed, duplicates (case-insensitive) collapsed, canonical spelling granted", async () => {
    const topic = uniqueTopic("sub");
    const frame = (await confirmation(topic, " patient-OPEN , Patient-open,PATIENT-CLOSE,, DiagnosticReport-Open ")) as Record<string, unknown>;
    expect(frame["hub.events"]).toBe("Patient-open,Patient-close,DiagnosticReport-open");
  });

  it("grants the hub's default lease (HUB_LEASE_DEFAULT_SECONDS = 3600) when none is requested", async () => {
    const frame = (await confirmation(uniqueTopic("sub"), "Patient-open")) as Record<string, unknown>;
    expect(frame["hub.lease_seconds"]).toBe(3600);
  });

  it("grants a requested lease below the maximum as asked", async () => {
    const frame = (await confirmation(uniqueTopic("sub"), "Patient-open", { "hub.lease_seconds": "7200" })) as Record<string, unknown>;
    expect(frame["hub.lease_seconds"]).toBe(7200);
  });

  it("caps a requested lease at the hub maximum (HUB_LEASE_MAX_SECONDS = 86400)", async () => {
    const frame = (await confirmation(uniqueTopic("sub"), "Patient-open", { "hub.lease_seconds": "999999" })) as Record<string, unknown>;
    expect(frame["hub.lease_seconds"]).toBe(86400);
  });

  it("accepts hub.lease (OHIF's alias of hub.lease_seconds)", async () => {
    const frame = (await confirmation(uniqueTopic("sub"), "Patient-open", { "hub.lease": "120" })) as Record<string, unknown>;
    expect(frame["hub.lease_seconds"]).toBe(120);
  });

  it("accepts hub.channel.type case-insensitively (WebSocket)", async () => {
    const topic = uniqueTopic("sub");
    const res = await hubFetch("/api/hub", form({ ...base(topic), "hub.channel.type": "WebSocket" }));
    expect(res.status).toBe(202);
  });

  it("accepts a subscriber.name up to 256 characters", async () => {
    const topic = uniqueTopic("sub");
    const res = await hubFetch("/api/hub", form({ ...base(topic), "subscriber.name": "n".repeat(256) }));
    expect(res.status).toBe(202);
  });

  it("accepts Content-Type with parameters (application/x-www-form-urlencoded; charset=UTF-8)", async () => {
    const topic = uniqueTopic("sub");
    const res = await hubFetch("/api/hub", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8" },
      body: new URLSearchParams(base(topic)).toString(),
    });
    expect(res.status).toBe(202);
  });

  it("accepts a JSON subscribe with hub.mode (leniency for Medplum/OHIF) and an events array", async () => {
    const topic = uniqueTopic("sub");
    const res = await hubFetch("/api/hub", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": topic, "hub.events": ["Patient-open", "patient-close"] }),
    });
    expect(res.status).toBe(202);
    const endpoint = ((await res.json()) as Record<string, string>)["hub.channel.endpoint"]!;
    const client = await connect(endpoint);
    expect(await client.frame(0)).toMatchObject({ "hub.events": "Patient-open,Patient-close" });
    client.close();
  });
});

describe("subscribe: refusals are 4xx with a plain-text body naming the problem, and create nothing (fhircast.hl7.org/STU3/2-4-Subscribing.html)", () => {
  const cases: { name: string; params: (topic: string) => Record<string, string>; status: number; needles: (string | RegExp)[] }[] = [
    { name: "missing hub.channel.type", params: (t) => { const p: Record<string, string> = base(t); delete p["hub.channel.type"]; return p; }, status: 400, needles: ["hub.channel.type"] },
    { name: "hub.channel.type=webhook (removed in STU3)", params: (t) => ({ ...base(t), "hub.channel.type": "webhook" }), status: 400, needles: ["hub.channel.type", "webhook"] },
    { name: "missing hub.mode", params: (t) => { const p: Record<string, string> = base(t); delete p["hub.mode"]; return p; }, status: 400, needles: ["hub.mode"] },
    { name: "hub.mode=publish", params: (t) => ({ ...base(t), "hub.mode": "publish" }), status: 400, needles: ["hub.mode", "publish"] },
    { name: "missing hub.topic", params: (t) => { const p: Record<string, string> = base(t); delete p["hub.topic"]; return p; }, status: 400, needles: ["hub.topic"] },
    { name: "empty hub.topic", params: (t) => ({ ...base(t), "hub.topic": "" }), status: 400, needles: ["hub.topic"] },
    { name: "hub.topic longer than 512 characters", params: (t) => ({ ...base(t), "hub.topic": t + "x".repeat(513) }), status: 400, needles: ["hub.topic", "512"] },
    { name: "missing hub.events", params: (t) => { const p: Record<string, string> = base(t); delete p["hub.events"]; return p; }, status: 400, needles: ["hub.events"] },
    { name: "empty hub.events", params: (t) => ({ ...base(t), "hub.events": " , " }), status: 400, needles: ["hub.events"] },
    { name: "wildcard hub.events=*", params: (t) => ({ ...base(t), "hub.events": "*" }), status: 400, needles: ["hub.events", "*"] },
    { name: "wildcard within a list (Patient-*)", params: (t) => ({ ...base(t), "hub.events": "Patient-open,Patient-*" }), status: 400, needles: ["Patient-*"] },
    { name: "unknown event", params: (t) => ({ ...base(t), "hub.events": "Patient-open,Patient-transmogrify" }), status: 400, needles: ["Patient-transmogrify"] },
    { name: "heartbeat (removed before STU3)", params: (t) => ({ ...base(t), "hub.events": "heartbeat" }), status: 400, needles: ["heartbeat"] },
    { name: "hub.lease_seconds not a number", params: (t) => ({ ...base(t), "hub.lease_seconds": "abc" }), status: 400, needles: ["hub.lease_seconds", "abc"] },
    { name: "hub.lease_seconds zero", params: (t) => ({ ...base(t), "hub.lease_seconds": "0" }), status: 400, needles: ["hub.lease_seconds"] },
    { name: "hub.lease_seconds negative", params: (t) => ({ ...base(t), "hub.lease_seconds": "-5" }), status: 400, needles: ["hub.lease_seconds"] },
    { name: "hub.lease_seconds fractional", params: (t) => ({ ...base(t), "hub.lease_seconds": "1.5" }), status: 400, needles: ["hub.lease_seconds"] },
    { name: "subscriber.name longer than 256 characters", params: (t) => ({ ...base(t), "subscriber.name": "n".repeat(257) }), status: 400, needles: ["subscriber.name", "256"] },
  ];
  for (const c of cases) {
    it(`refuses ${c.name} with ${c.status}`, async () => {
      const topic = uniqueTopic("subbad");
      await expectText(await hubFetch("/api/hub", form(c.params(topic))), c.status, ...c.needles);
      await expectNoSubscriptions(topic);
    });
  }

  it("refuses a repeated parameter (each parameter SHALL appear at most once, fhircast.hl7.org/STU3/2-4-Subscribing.html) with 400 naming it", async () => {
    const topic = uniqueTopic("subbad");
    const body = new URLSearchParams(base(topic));
    body.append("hub.events", "Patient-close");
    const res = await hubFetch("/api/hub", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: body.toString() });
    await expectText(res, 400, "hub.events", /more than once/);
    await expectNoSubscriptions(topic);
  });

  it("refuses a repeated hub.topic with 400 (cannot pick one topic)", async () => {
    const topic = uniqueTopic("subbad");
    const body = `${new URLSearchParams(base(topic)).toString()}&hub.topic=${uniqueTopic("other")}`;
    const res = await hubFetch("/api/hub", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body });
    await expectText(res, 400, "hub.topic", /more than once/);
    await expectNoSubscriptions(topic);
  });

  for (const type of ["text/plain", "multipart/form-data; boundary=x", "application/xml"]) {
    it(`refuses Content-Type ${type} with 415 (OperationOutcome: not a form, so not the subscription API's text) naming the accepted types`, async () => {
      const topic = uniqueTopic("subbad");
      const res = await hubFetch("/api/hub", { method: "POST", headers: { "Content-Type": type }, body: new URLSearchParams(base(topic)).toString() });
      await expectOutcome(res, 415, "application/x-www-form-urlencoded");
      await expectNoSubscriptions(topic);
    });
  }

  it("refuses a body with no Content-Type with 415", async () => {
    const topic = uniqueTopic("subbad");
    // A Blob with no type keeps the Request from inventing text/plain.
    const res = await hubFetch("/api/hub", { method: "POST", body: new Blob([new URLSearchParams(base(topic)).toString()]) });
    await expectOutcome(res, 415, "Content-Type");
    await expectNoSubscriptions(topic);
  });

  it("a refused subscribe does not disturb an existing subscriber of the topic", async () => {
    const topic = uniqueTopic("subbad");
    const { client } = await subscriber(topic, "Patient-open");
    await expectText(await hubFetch("/api/hub", form({ ...base(topic), "hub.events": "*" })), 400);
    await client.quiet(1);
    expect(await topicSql(topic, `SELECT count(*) AS n FROM subscriptions`)).toEqual([{ n: 1 }]);
    client.close();
  });
});

describe("subscribe: hub.url", () => {
  it("POST to the hub.url resolves against the request origin (the endpoint uses that origin)", async () => {
    const topic = uniqueTopic("sub");
    const res = await hubFetch(HUB, subscribeForm(topic, "Patient-open"));
    expect(res.status).toBe(202);
    expect(((await res.json()) as Record<string, string>)["hub.channel.endpoint"]).toMatch(/^ws:\/\/hub\.test\/ws\//);
    expect(await subscribe(topic, "Patient-open")).toMatch(/^ws:\/\/hub\.test\/ws\//);
  });
});

// fhircast.hl7.org/STU3/2-4-Subscribing.html (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html): the WebSocket endpoint. ≥128 bits of CSPRNG
// output, unique, never reused, routed to the topic's object without revealing the topic; one
// connection at a time; expires when nobody connects within ENDPOINT_CONNECT_SECONDS; an unknown or
// expired endpoint gets a denial frame and close 1008.
import { describe, expect, it } from "vitest";
import {
  connect, fireDeadlines, hubFetch, patientOpen, publish, subscribe, subscribeForm, subscriber, topicStub, uniqueTopic,
} from "../helpers/hub";

const ENDPOINT = /^ws:\/\/hub\.test\/ws\/([0-9a-f]{64})\/([0-9a-f]+)$/;

function parts(endpoint: string): { doId: string; secret: string } {
  const m = ENDPOINT.exec(endpoint);
  if (!m) throw new Error(`endpoint ${endpoint} does not have the expected form`);
  return { doId: m[1]!, secret: m[2]! };
}

/** Connects to `url` and expects a denial frame followed by close 1008. Returns the denial frame. */
async function expectDeniedConnect(url: string, reason: RegExp) {
  const client = await connect(url);
  const frame = await client.frame(0);
  expect(frame).toEqual({ "hub.mode": "denied", "hub.topic": expect.any(String), "hub.events": expect.any(String), "hub.reason": expect.stringMatching(reason) });
  expect((await client.waitClose()).code).toBe(1008);
  expect(client.frames).toHaveLength(1);
  return frame as Record<string, string>;
}

describe("endpoint URL (fhircast.hl7.org/STU3/2-4-Subscribing.html SHALL be cryptographically random, unique and unguessable)", () => {
  it("is a ws:// URL on the request's origin with a secret of at least 128 bits", async () => {
    const endpoint = await subscribe(uniqueTopic("ep"), "Patient-open");
    const { secret } = parts(endpoint);
    expect(secret.length * 4).toBeGreaterThanOrEqual(128);
  });

  it("is wss:// when the hub is reached over https", async () => {
    const res = await hubFetch("https://hub.test/api/hub", subscribeForm(uniqueTopic("ep"), "Patient-open"));
    expect(res.status).toBe(202);
    expect(((await res.json()) as Record<string, string>)["hub.channel.endpoint"]).toMatch(/^wss:\/\/hub\.test\/ws\/[0-9a-f]{64}\/[0-9a-f]{32,}$/);
  });

  it("is distinct for every subscribe, even with identical requests, and its secret is never repeated", async () => {
    const topic = uniqueTopic("ep");
    const endpoints = await Promise.all(Array.from({ length: 20 }, () => subscribe(topic, "Patient-open")));
    expect(new Set(endpoints).size).toBe(20);
    expect(new Set(endpoints.map((e) => parts(e).secret)).size).toBe(20);
  });

  it("does not contain the topic (nor its URL encoding)", async () => {
    const topic = uniqueTopic("Topic With Spaces/and-slash");
    const endpoint = await subscribe(topic, "Patient-open");
    expect(endpoint).not.toContain(topic);
    expect(endpoint).not.toContain(encodeURIComponent(topic));
    expect(endpoint.toLowerCase()).not.toContain(topic.toLowerCase().slice(0, 10));
    expect(parts(endpoint).doId).toBe(topicStub(topic).id.toString());
  });

  it("answers 426 to a plain GET without a WebSocket upgrade", async () => {
    const endpoint = await subscribe(uniqueTopic("ep"), "Patient-open");
    const res = await hubFetch(endpoint.replace(/^ws/, "http"));
    expect(res.status).toBe(426);
    expect(res.headers.get("Upgrade")).toBe("websocket");
  });
});

describe("unknown or forged endpoints: denial frame, then close 1008 (fhircast.hl7.org/STU3/2-4-Subscribing.html, fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html)", () => {
  it("denies a forged secret on a real topic's object", async () => {
    const topic = uniqueTopic("ep");
    const { doId } = parts(await subscribe(topic, "Patient-open"));
    const forged = `http://hub.test/ws/${doId}/${"0".repeat(32)}`;
    const frame = await expectDeniedConnect(forged, /unknown|expired/);
    expect(frame["hub.events"]).toBe("");
  });

  it("a denial for an unknown endpoint does not reveal the topic (the endpoint is routed without revealing the topic)", async () => {
    const topic = uniqueTopic("ep");
    const { doId } = parts(await subscribe(topic, "Patient-open"));
    const frame = await expectDeniedConnect(`http://hub.test/ws/${doId}/${"ab".repeat(16)}`, /unknown|expired/);
    expect(frame["hub.topic"]).toBe("");
  });

  it("denies an endpoint whose object id belongs to no topic of this hub", async () => {
    await expectDeniedConnect(`http://hub.test/ws/${"f".repeat(64)}/${"0".repeat(32)}`, /unknown|expired/);
  });

  it("denies a malformed endpoint path", async () => {
    await expectDeniedConnect("http://hub.test/ws/not-an-id/secret", /unknown|expired/);
    await expectDeniedConnect("http://hub.test/ws/", /unknown|expired/);
  });

  it("a forged connect does not disturb the real subscriber", async () => {
    const topic = uniqueTopic("ep");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    await expectDeniedConnect(`http://hub.test/ws/${parts(endpoint).doId}/${"1".repeat(32)}`, /unknown|expired/);
    const ev = patientOpen(topic);
    expect((await publish(ev)).status).toBe(202);
    expect((await client.frame(1)).id).toBe(ev.id);
    client.close();
  });
});

describe("one connection at a time per endpoint", () => {
  it("denies a second concurrent connection to the same endpoint (1008) while the first keeps receiving events", async () => {
    const topic = uniqueTopic("ep");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    const second = await connect(endpoint);
    expect(await second.frame(0)).toEqual({
      "hub.mode": "denied",
      "hub.topic": topic,
      "hub.events": "Patient-open",
      "hub.reason": expect.stringMatching(/already connected/),
    });
    expect((await second.waitClose()).code).toBe(1008);
    const ev = patientOpen(topic);
    expect((await publish(ev)).status).toBe(202);
    expect((await client.frame(1)).id).toBe(ev.id);
    expect(client.closed).toBeUndefined();
    client.close();
  });

  it("an endpoint is not reusable after its socket closed: reconnecting is denied with 1008", async () => {
    const topic = uniqueTopic("ep");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    client.close(1000, "bye");
    // The close reaches the topic object asynchronously: poll until the endpoint is refused.
    const deadline = Date.now() + 5000;
    for (;;) {
      const again = await connect(endpoint);
      const frame = await again.frame(0);
      if (frame["hub.mode"] === "denied") {
        expect(frame["hub.reason"]).toMatch(/unknown|expired|already connected/);
        expect((await again.waitClose()).code).toBe(1008);
        if (/unknown|expired/.test(frame["hub.reason"])) break;
      } else {
        throw new Error(`closed endpoint was confirmed again: ${JSON.stringify(frame)}`);
      }
      if (Date.now() > deadline) throw new Error("endpoint still held as connected 5 s after the client closed");
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});

describe("connect deadline (ENDPOINT_CONNECT_SECONDS)", () => {
  it("an endpoint nobody connected to within ENDPOINT_CONNECT_SECONDS expires: connecting later is denied with 1008", async () => {
    const topic = uniqueTopic("ep");
    const endpoint = await subscribe(topic, "Patient-open");
    expect(await fireDeadlines(topic, "connect")).toBe(true);
    const frame = await expectDeniedConnect(endpoint, /unknown|expired/);
    expect(frame["hub.mode"]).toBe("denied");
  });

  it("the connect deadline expires only endpoints that were never connected", async () => {
    const topic = uniqueTopic("ep");
    const { client } = await subscriber(topic, "Patient-open");
    const idle = await subscribe(topic, "Patient-open");
    expect(await fireDeadlines(topic, "connect")).toBe(true);
    await expectDeniedConnect(idle, /unknown|expired/);
    const ev = patientOpen(topic);
    expect((await publish(ev)).status).toBe(202);
    expect((await client.frame(1)).id).toBe(ev.id);
    expect(client.closed).toBeUndefined();
    client.close();
  });

  it("an endpoint connected before its deadline is confirmed normally", async () => {
    const topic = uniqueTopic("ep");
    const endpoint = await subscribe(topic, "Patient-open");
    const client = await connect(endpoint);
    expect(await client.frame(0)).toEqual({ "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open", "hub.lease_seconds": 3600 });
    client.close();
  });
});

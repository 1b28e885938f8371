// fhircast.hl7.org/STU3/2-4-Subscribing.html (spec note A6): re-subscribing with an existing hub.channel.endpoint
// replaces that subscription's events and lease; 202 with the same endpoint; a new confirmation on the
// open socket, then the current context for newly added events.
import { describe, expect, it } from "vitest";
import {
  asDistributedOpen, connect, expectText, hubFetch, patientClose, patientOpen, publish, reportOpen, subscribe, subscribeForm,
  subscriber, uniqueTopic,
} from "../helpers/hub";

function resubscribe(topic: string, endpoint: string, events: string, extra: Record<string, string> = {}) {
  return hubFetch("/api/hub", subscribeForm(topic, events, { "hub.channel.endpoint": endpoint, ...extra }));
}

describe("re-subscribe (fhircast.hl7.org/STU3/2-4-Subscribing.html SHALL allow re-subscribing; events replaced)", () => {
  it("answers 202 with the same endpoint", async () => {
    const topic = uniqueTopic("resub");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    const res = await resubscribe(topic, endpoint, "Patient-open,Patient-close");
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ "hub.channel.endpoint": endpoint });
    client.close();
  });

  it("sends a new confirmation on the open socket with the new events and lease, then replays context for newly added events only", async () => {
    const topic = uniqueTopic("resub");
    const evP1 = patientOpen(topic, "p1");
    const evR1 = reportOpen(topic, "r1", "p1");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    const listener = await subscriber(topic, "DiagnosticReport-open");
    expect((await publish(evP1)).status).toBe(202);
    expect((await publish(evR1)).status).toBe(202); // client is not subscribed to it yet
    expect(await client.frame(1)).toEqual(asDistributedOpen(evP1));
    const liveR1 = await listener.client.frame(1);
    await client.quiet(2);

    const res = await resubscribe(topic, endpoint, "Patient-open,DiagnosticReport-open", { "hub.lease_seconds": "120" });
    expect(res.status).toBe(202);
    expect(await client.frame(2)).toEqual({
      "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open,DiagnosticReport-open", "hub.lease_seconds": 120,
    });
    // Only the newly added DiagnosticReport-open is replayed (Patient-open was already subscribed).
    expect(await client.frame(3)).toEqual(liveR1);
    await client.quiet(4);
    client.close();
    listener.client.close();
  });

  it("replaces (not merges) the event list: removed events are no longer delivered, added ones are", async () => {
    const topic = uniqueTopic("resub");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    expect((await resubscribe(topic, endpoint, "Patient-close")).status).toBe(202);
    expect(await client.frame(1)).toMatchObject({ "hub.mode": "subscribe", "hub.events": "Patient-close" });
    const open = patientOpen(topic, "p1");
    const close = patientClose(topic, "p1");
    expect((await publish(open)).status).toBe(202);
    expect((await publish(close)).status).toBe(202);
    expect(await client.frame(2)).toEqual(close);
    await client.quiet(3);
    client.close();
  });

  it("replaces the lease: a shorter lease granted on re-subscribe expires the subscription (denial, then close)", async () => {
    const topic = uniqueTopic("resub");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    expect(client.frames[0]).toMatchObject({ "hub.lease_seconds": 3600 });
    expect((await resubscribe(topic, endpoint, "Patient-open", { "hub.lease_seconds": "1" })).status).toBe(202);
    expect(await client.frame(1)).toMatchObject({ "hub.mode": "subscribe", "hub.lease_seconds": 1 });
    expect(await client.frame(2, 8000)).toEqual({
      "hub.mode": "denied", "hub.topic": topic, "hub.events": "Patient-open", "hub.reason": expect.stringMatching(/expire/i),
    });
    expect((await client.waitClose(5000)).code).toBe(1000);
  });

  it("re-subscribing an endpoint before it is connected changes what the connect confirms", async () => {
    const topic = uniqueTopic("resub");
    const endpoint = await subscribe(topic, "Patient-open");
    expect((await resubscribe(topic, endpoint, "Patient-close,DiagnosticReport-open", { "hub.lease_seconds": "600" })).status).toBe(202);
    const client = await connect(endpoint);
    expect(await client.frame(0)).toEqual({
      "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-close,DiagnosticReport-open", "hub.lease_seconds": 600,
    });
    client.close();
  });

  it("answers 404 (plain text) for an endpoint that names no subscription of this topic, and creates nothing", async () => {
    const topic = uniqueTopic("resub");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    const forged = endpoint.replace(/\/[0-9a-f]+$/, `/${"0".repeat(32)}`);
    await expectText(await resubscribe(topic, forged, "Patient-open"), 404, "hub.channel.endpoint");
    await expectText(await resubscribe(topic, "wss://elsewhere.example/abc", "Patient-open"), 404, "hub.channel.endpoint");
    await client.quiet(1);
    client.close();
  });

  it("answers 404 for an endpoint of another topic, and leaves that subscription untouched", async () => {
    const topicA = uniqueTopic("resubA");
    const topicB = uniqueTopic("resubB");
    const a = await subscriber(topicA, "Patient-open");
    await expectText(await resubscribe(topicB, a.endpoint, "Patient-close"), 404, "hub.channel.endpoint");
    await a.client.quiet(1);
    const ev = patientOpen(topicA);
    expect((await publish(ev)).status).toBe(202);
    expect((await a.client.frame(1)).id).toBe(ev.id);
    a.client.close();
  });

  it("a refused re-subscribe (unknown event) leaves the subscription's events and lease unchanged", async () => {
    const topic = uniqueTopic("resub");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    await expectText(await resubscribe(topic, endpoint, "Patient-close,Bogus-open"), 400, "Bogus-open");
    await client.quiet(1);
    const ev = patientOpen(topic);
    expect((await publish(ev)).status).toBe(202);
    expect((await client.frame(1)).id).toBe(ev.id);
    client.close();
  });
});

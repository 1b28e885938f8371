// fhircast.hl7.org/STU3/2-4-Subscribing.html unsubscribe and fhircast.hl7.org/STU3/2-4-Subscribing.html lease expiry (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html): 202 with the
// endpoint, a denial frame on the socket, close 1000, the endpoint never reused; lease expiry driven
// by the topic object's alarm.
import { describe, expect, it } from "vitest";
import { waitUntil } from "../helpers/until";
import {
  connect, expectText, form, hubFetch, mintToken, patientOpen, publish, subscribe, subscribeForm, subscriber, topicSql, unsubscribe,
  uniqueTopic,
} from "../helpers/hub";

async function expectDenied1008(endpoint: string) {
  const c = await connect(endpoint);
  expect(await c.frame(0)).toMatchObject({ "hub.mode": "denied", "hub.reason": expect.stringMatching(/unknown|expired/) });
  expect((await c.waitClose()).code).toBe(1008);
}

describe("unsubscribe (fhircast.hl7.org/STU3/2-4-Subscribing.html)", () => {
  it("SHALL answer 202 with {hub.channel.endpoint}, SHALL send a denial frame on the socket, then close it with 1000", async () => {
    const topic = uniqueTopic("unsub");
    const { endpoint, client } = await subscriber(topic, "Patient-open,Patient-close");
    const res = await unsubscribe(topic, endpoint);
    expect(res.status).toBe(202);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ "hub.channel.endpoint": endpoint });
    expect(await client.frame(1)).toEqual({
      "hub.mode": "denied", "hub.topic": topic, "hub.events": "Patient-open,Patient-close", "hub.reason": expect.any(String),
    });
    expect((await client.waitClose()).code).toBe(1000);
    expect(client.frames).toHaveLength(2);
  });

  it("an unsubscribed endpoint is never reused: connecting is denied (1008), unsubscribing again and re-subscribing with it are 404", async () => {
    const topic = uniqueTopic("unsub");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    expect((await unsubscribe(topic, endpoint)).status).toBe(202);
    await client.waitClose();
    await expectDenied1008(endpoint);
    await expectText(await unsubscribe(topic, endpoint), 404, "hub.channel.endpoint");
    await expectText(await hubFetch("/api/hub", subscribeForm(topic, "Patient-open", { "hub.channel.endpoint": endpoint })), 404, "hub.channel.endpoint");
    expect(await topicSql(topic, `SELECT count(*) AS n FROM subscriptions`)).toEqual([{ n: 0 }]);
  });

  it("an unsubscribed subscriber receives no further events, while other subscribers do", async () => {
    const topic = uniqueTopic("unsub");
    const gone = await subscriber(topic, "Patient-open");
    const stays = await subscriber(topic, "Patient-open");
    expect((await unsubscribe(topic, gone.endpoint)).status).toBe(202);
    await gone.client.waitClose();
    const ev = patientOpen(topic);
    expect((await publish(ev)).status).toBe(202);
    expect((await stays.client.frame(1)).id).toBe(ev.id);
    expect(gone.client.frames).toHaveLength(2); // confirmation + denial only
    await stays.client.quiet(2);
    stays.client.close();
  });

  it("unsubscribing an endpoint that was never connected answers 202, and connecting to it afterwards is denied", async () => {
    const topic = uniqueTopic("unsub");
    const endpoint = await subscribe(topic, "Patient-open");
    const res = await unsubscribe(topic, endpoint);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ "hub.channel.endpoint": endpoint });
    await expectDenied1008(endpoint);
  });

  it("trims the endpoint value (the spec's own example ends it with %0A)", async () => {
    const topic = uniqueTopic("unsub");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    const body = `hub.channel.type=websocket&hub.mode=unsubscribe&hub.topic=${encodeURIComponent(topic)}&hub.channel.endpoint=${encodeURIComponent(endpoint)}%0A`;
    const res = await hubFetch("/api/hub", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ "hub.channel.endpoint": endpoint });
    expect((await client.waitClose()).code).toBe(1000);
  });

  it("answers 404 (plain text) for an unknown endpoint of this topic and for a malformed one", async () => {
    const topic = uniqueTopic("unsub");
    const { endpoint, client } = await subscriber(topic, "Patient-open");
    await expectText(await unsubscribe(topic, endpoint.replace(/\/[0-9a-f]+$/, `/${"9".repeat(32)}`)), 404, "hub.channel.endpoint");
    await expectText(await unsubscribe(topic, "wss://hub.example.com/ee30d3b9-1558-464f-a299-cbad6f8135de"), 404, "hub.channel.endpoint");
    await client.quiet(1);
    expect(client.closed).toBeUndefined();
    client.close();
  });

  it("answers 404 for an endpoint of another topic and leaves that subscription active", async () => {
    const topicA = uniqueTopic("unsubA");
    const topicB = uniqueTopic("unsubB");
    const a = await subscriber(topicA, "Patient-open");
    await subscriber(topicB, "Patient-open");
    await expectText(await unsubscribe(topicB, a.endpoint), 404, "hub.channel.endpoint");
    await a.client.quiet(1);
    const ev = patientOpen(topicA);
    expect((await publish(ev)).status).toBe(202);
    expect((await a.client.frame(1)).id).toBe(ev.id);
    a.client.close();
  });

  it("answers 400 naming hub.channel.endpoint when it is missing", async () => {
    const topic = uniqueTopic("unsub");
    const res = await hubFetch("/api/hub", form({ "hub.channel.type": "websocket", "hub.mode": "unsubscribe", "hub.topic": topic }));
    await expectText(res, 400, "hub.channel.endpoint");
  });
});

describe("lease expiry (fhircast.hl7.org/STU3/2-4-Subscribing.html SHALL unsubscribe and close when the lease expires)", () => {
  it("the alarm ends a 1-second lease: denial frame whose hub.reason says the lease expired, then close", async () => {
    const topic = uniqueTopic("lease");
    const { endpoint, client } = await subscriber(topic, "Patient-open", { "hub.lease_seconds": "1" });
    expect(client.frames[0]).toEqual({ "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open", "hub.lease_seconds": 1 });
    expect(await client.frame(1, 8000)).toEqual({
      "hub.mode": "denied", "hub.topic": topic, "hub.events": "Patient-open", "hub.reason": expect.stringMatching(/expire/i),
    });
    expect((await client.waitClose(5000)).code).toBe(1000);
    // The subscription is gone: its endpoint can neither be unsubscribed nor reconnected.
    await expectText(await unsubscribe(topic, endpoint), 404);
    await expectDenied1008(endpoint);
  });

  it("the lease does not expire early: a subscriber with the default lease keeps receiving events after a short-lease one expired", async () => {
    const topic = uniqueTopic("lease");
    const short = await subscriber(topic, "Patient-open", { "hub.lease_seconds": "1" });
    const long = await subscriber(topic, "Patient-open");
    await short.client.waitClose(8000);
    const ev = patientOpen(topic);
    expect((await publish(ev)).status).toBe(202);
    expect((await long.client.frame(1)).id).toBe(ev.id);
    expect(long.client.closed).toBeUndefined();
    long.client.close();
  });
});

describe("a token-capped lease runs from the subscribe (issue 21 item 2)", () => {
  /** Subscribes with a token that expires `seconds` from now (its `exp` is what the row holds until the socket connects). */
  async function subscribeWithShortToken(topic: string, seconds: number) {
    const token = await mintToken({}, { expiresIn: seconds });
    const init = subscribeForm(topic, "Patient-open");
    const res = await hubFetch("/api/hub", { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(202);
    const endpoint = ((await res.json()) as { "hub.channel.endpoint": string })["hub.channel.endpoint"];
    return { endpoint, subscribedAt: Date.now() };
  }

  it("the confirmation's hub.lease_seconds is what remains at the moment it is sent, never past the token's exp", async () => {
    const topic = uniqueTopic("lease-token");
    const { endpoint, subscribedAt } = await subscribeWithShortToken(topic, 6);
    const tokenExp = (await topicSql<{ expires_at: number }>(topic, `SELECT expires_at FROM subscriptions`))[0]!.expires_at;
    // The app connects a while after subscribing (here 2 s later).
    await waitUntil(() => Date.now() >= subscribedAt + 2000, 10_000, "2 s after subscribing");
    const client = await connect(endpoint);
    const confirmation = (await client.frame(0)) as { "hub.mode": string; "hub.lease_seconds": number };
    const left = (tokenExp - Date.now()) / 1000;
    expect(confirmation["hub.mode"]).toBe("subscribe");
    expect(confirmation["hub.lease_seconds"]).toBeGreaterThanOrEqual(1);
    expect(confirmation["hub.lease_seconds"]).toBeLessThanOrEqual(left);
    client.close();
  });

  it("a socket that connects after the token expired is denied: no confirmation with a lease of 0", async () => {
    const topic = uniqueTopic("lease-token");
    const { endpoint } = await subscribeWithShortToken(topic, 2);
    const tokenExp = (await topicSql<{ expires_at: number }>(topic, `SELECT expires_at FROM subscriptions`))[0]!.expires_at;
    await waitUntil(() => Date.now() > tokenExp, 10_000, "the token expired");
    const client = await connect(endpoint);
    expect(await client.frame(0)).toMatchObject({ "hub.mode": "denied", "hub.reason": expect.stringMatching(/expired/) });
    await client.waitClose();
    expect(await topicSql(topic, `SELECT id FROM subscriptions`)).toEqual([]);
  });
});

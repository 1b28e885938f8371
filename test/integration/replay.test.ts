// fhircast.hl7.org/STU3/2-4-Subscribing.html: after the confirmation the hub SHALL send the current
// context: for each anchor type the most recent `*-open` with no matching close, filtered to the
// subscriber's events, in original order, with original id and timestamp and the current versionId.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Topic } from "../../src/topic/object";
import {
  asDistributedOpen, connect, encounterClose, expireAnswers, subscribe, topicStub, encounterOpen, patientClose, patientOpen, publish, reportOpen, subscriber, uniqueTopic,
} from "../helpers/hub";

/** Publishes each event (expecting 202) and returns the frames a listener subscribed to everything received. */
async function publishAll(topic: string, events: ReturnType<typeof patientOpen>[]) {
  const listener = await subscriber(topic, "Patient-open,Patient-close,Encounter-open,Encounter-close,DiagnosticReport-open,DiagnosticReport-close");
  for (const ev of events) expect((await publish(ev)).status).toBe(202);
  const frames = (await listener.client.waitFrames(1 + events.length)).slice(1) as any[];
  return { listener: listener.client, frames };
}

describe("current-context replay on connect (fhircast.hl7.org/STU3/2-4-Subscribing.html SHALL)", () => {
  it("SHALL send the confirmation first, then the most recent unclosed open per anchor type, exactly as distributed live (id, timestamp, context.versionId)", async () => {
    const topic = uniqueTopic("replay");
    const evP1 = patientOpen(topic, "p1");
    const evR1 = reportOpen(topic, "r1", "p1");
    const evP2 = patientOpen(topic, "p2");
    const evP2Close = patientClose(topic, "p2");
    const evE1 = encounterOpen(topic, "e1", "p1");
    const evE1Close = encounterClose(topic, "e1", "p1");
    const { listener, frames } = await publishAll(topic, [evP1, evR1, evP2, evP2Close, evE1, evE1Close]);
    const liveP1 = frames[0];
    const liveR1 = frames[1];
    expect(liveP1).toEqual(asDistributedOpen(evP1));
    expect(liveR1).toEqual(asDistributedOpen(evR1));

    const { client } = await subscriber(topic, "Patient-open,DiagnosticReport-open,Encounter-open", {}, 2);
    expect(client.frames[0]).toEqual({
      "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open,DiagnosticReport-open,Encounter-open", "hub.lease_seconds": 3600,
    });
    // Patient p2 was closed, so the most recent unclosed Patient-open is p1's; the Encounter is closed.
    expect(client.frames[1]).toEqual(liveP1);
    expect(client.frames[2]).toEqual(liveR1);
    expect((await client.frame(1)).timestamp).toBe(evP1.timestamp);
    expect((await client.frame(1)).id).toBe(evP1.id);
    await client.quiet(3);
    // The replay goes to the new subscriber only.
    await listener.quiet(1 + 6);
    client.close();
    listener.close();
  });

  it("replays in original chronological order: a re-opened anchor comes after an anchor opened in between", async () => {
    const topic = uniqueTopic("replay");
    const evP1 = patientOpen(topic, "p1");
    const evR1 = reportOpen(topic, "r1", "p1");
    const evP1Again = patientOpen(topic, "p1");
    const { listener, frames } = await publishAll(topic, [evP1, evR1, evP1Again]);
    const { client } = await subscriber(topic, "Patient-open,DiagnosticReport-open", {}, 2);
    expect(client.frames.slice(1)).toEqual([frames[1], frames[2]]);
    expect((await client.frame(2)).id).toBe(evP1Again.id);
    await client.quiet(3);
    client.close();
    listener.close();
  });

  it("replays only the most recent open of an anchor type when several of that type are open (multi-tab)", async () => {
    const topic = uniqueTopic("replay");
    const { listener, frames } = await publishAll(topic, [patientOpen(topic, "p1"), patientOpen(topic, "p2")]);
    const { client } = await subscriber(topic, "Patient-open", {}, 1);
    expect(client.frames[1]).toEqual(frames[1]);
    expect((await client.frame(1)).event.context[0].resource.id).toBe("p2");
    await client.quiet(2);
    client.close();
    listener.close();
  });

  it("SHALL NOT replay events the subscriber is not subscribed to", async () => {
    const topic = uniqueTopic("replay");
    const evP1 = patientOpen(topic, "p1");
    const evR1 = reportOpen(topic, "r1", "p1");
    const { listener, frames } = await publishAll(topic, [evP1, evR1]);

    const onlyReport = await subscriber(topic, "DiagnosticReport-open", {}, 1);
    expect(onlyReport.client.frames.slice(1)).toEqual([frames[1]]);
    await onlyReport.client.quiet(2);

    const closesOnly = await subscriber(topic, "Patient-close,DiagnosticReport-close");
    await closesOnly.client.quiet(1);

    const encounterOnly = await subscriber(topic, "Encounter-open");
    await encounterOnly.client.quiet(1);

    for (const c of [onlyReport.client, closesOnly.client, encounterOnly.client, listener]) c.close();
  });

  it("replays nothing when every opened context was closed", async () => {
    const topic = uniqueTopic("replay");
    const { listener } = await publishAll(topic, [patientOpen(topic, "p1"), patientClose(topic, "p1")]);
    const { client } = await subscriber(topic, "Patient-open,Patient-close");
    await client.quiet(1);
    client.close();
    listener.close();
  });

  it("replays nothing on a topic that never had an event", async () => {
    const topic = uniqueTopic("replay");
    const { client } = await subscriber(topic, "Patient-open");
    await client.quiet(1);
    client.close();
  });

  it("matches the subscriber's events case-insensitively when replaying", async () => {
    const topic = uniqueTopic("replay");
    const evP1 = patientOpen(topic, "p1");
    const { listener, frames } = await publishAll(topic, [evP1]);
    const { client } = await subscriber(topic, "PATIENT-OPEN", {}, 1);
    expect(client.frames[0]).toMatchObject({ "hub.events": "Patient-open" });
    expect(client.frames[1]).toEqual(frames[0]);
    client.close();
    listener.close();
  });
});

/** Waits until no subscriber of the topic owes an answer (the inspector's count). */
async function settled(topic: string): Promise<void> {
  const deadline = Date.now() + 5000;
  const pending = () => runInDurableObject(topicStub(topic), (instance: Topic) => instance.inspect());
  while ((await pending()).subscribers.some((s) => s.pendingAcks > 0)) {
    if (Date.now() > deadline) throw new Error("answers still pending after 5 s");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The SyncError frame's codings (eventid, eventname, subscribername) and diagnostics. */
function syncErrorAbout(frame: any) {
  expect(frame.event["hub.event"]).toBe("SyncError");
  const issue = frame.event.context[0].resource.issue[0];
  const codes = Object.fromEntries(issue.details.coding.map((c: { system: string; code: string }) => [c.system.split("/").pop(), c.code]));
  return { ...codes, diagnostics: issue.diagnostics as string };
}

describe("replayed events are acknowledged like live ones (fhircast.hl7.org/STU3/2-4-Subscribing.html indistinguishable, fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html SyncError for every failed notification)", () => {
  it("a new subscriber that answers the replayed open with 409 makes the hub send a SyncError naming that event to the other SyncError subscribers", async () => {
    const topic = uniqueTopic("replay-ack");
    const watcher = await subscriber(topic, "Patient-open,SyncError");
    const open = patientOpen(topic, "p1");
    expect((await publish(open)).status).toBe(202);
    await watcher.client.waitFrames(2);
    const endpoint = await subscribe(topic, "Patient-open", { "subscriber.name": "Late Refuser" });
    const late = await connect(endpoint, 409);
    expect((await late.frame(1)).id).toBe(open.id); // the replay
    const sync = syncErrorAbout(await watcher.client.frame(2));
    expect(sync).toMatchObject({ eventid: open.id, eventname: "Patient-open", subscribername: "Late Refuser" });
    expect(sync.diagnostics).toContain("status 409");
    await watcher.client.quiet(3);
  });

  it("a new subscriber that never answers the replay is found unresponsive: SyncError about the replayed event, then denied and closed", async () => {
    const topic = uniqueTopic("replay-mute");
    const watcher = await subscriber(topic, "Patient-open,SyncError");
    const open = patientOpen(topic, "p1");
    expect((await publish(open)).status).toBe(202);
    await watcher.client.waitFrames(2);
    const mute = await connect(await subscribe(topic, "Patient-open", { "subscriber.name": "Mute Late App" }), null);
    expect((await mute.frame(1)).id).toBe(open.id);
    await expireAnswers(topic);
    const sync = syncErrorAbout(await watcher.client.frame(2));
    expect(sync).toMatchObject({ eventid: open.id, eventname: "Patient-open", subscribername: "Mute Late App" });
    expect(sync.diagnostics).toContain("did not acknowledge");
    expect(await mute.frame(2)).toMatchObject({ "hub.mode": "denied", "hub.reason": expect.stringContaining("unresponsive") });
    expect((await mute.waitClose()).code).toBe(1000);
    await watcher.client.quiet(3);
  });

  it("a subscriber that leaves the replay and then a live event unanswered is reported for the replay, the first it failed", async () => {
    const topic = uniqueTopic("replay-first");
    const watcher = await subscriber(topic, "Patient-open,Patient-close,SyncError");
    const open = patientOpen(topic, "p1");
    await publish(open);
    await watcher.client.waitFrames(2);
    const mute = await connect(await subscribe(topic, "Patient-open,Patient-close", { "subscriber.name": "Mute" }), null);
    expect((await mute.frame(1)).id).toBe(open.id);
    const close = patientClose(topic, "p1");
    await publish(close);
    expect((await mute.frame(2)).id).toBe(close.id);
    await watcher.client.waitFrames(3);
    await expireAnswers(topic);
    expect(syncErrorAbout(await watcher.client.frame(3))).toMatchObject({ eventid: open.id, subscribername: "Mute" });
    expect((await mute.waitClose()).code).toBe(1000);
    await watcher.client.quiet(4); // one SyncError: the unresponsive subscriber was ended by its first miss
  });

  it("a replay answered with 200 is settled: no SyncError when the timeout passes, and the subscriber stays", async () => {
    const topic = uniqueTopic("replay-ok");
    const watcher = await subscriber(topic, "Patient-open,SyncError");
    await publish(patientOpen(topic, "p1"));
    await watcher.client.waitFrames(2);
    const { client } = await subscriber(topic, "Patient-open", {}, 1);
    await settled(topic); // its answer reached the hub
    await expireAnswers(topic);
    await watcher.client.quiet(2);
    expect(client.closed).toBeUndefined();
  });
});

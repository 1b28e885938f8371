// Synchronization (issue 4; fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html, fhircast.hl7.org/STU3/3-2-1-SyncError.html): acknowledgements, hub-generated SyncError,
// unresponsive and stalled subscribers, resends, keep-alive. Deadlines are fired by hand: the test
// moves the due time of the topic's deadlines to now and runs the object's alarm.
import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { connect, patientOpen, publish, subscribe, uniqueTopic, type Client } from "../helpers/hub";

const SYS = "https://fhircast.hl7.org/events/syncerror";

function stub(topic: string) {
  return env.TOPIC.get(env.TOPIC.idFromName(topic));
}

/**
 * Makes every `kind` deadline of the topic due now and runs the alarm. For "ack", time passes for the
 * events too: the log says they were accepted long ago (an answer is overdue by accepted_at + timeout).
 */
async function fireDeadlines(topic: string, kind: string): Promise<void> {
  await runInDurableObject(stub(topic), (_instance, state: DurableObjectState) => {
    state.storage.sql.exec(`UPDATE deadlines SET due = 0 WHERE kind = ?`, kind);
    if (kind === "ack") state.storage.sql.exec(`UPDATE events SET accepted_at = 0`);
  });
  await runDurableObjectAlarm(stub(topic));
}

async function join(topic: string, events: string, name: string, ack: number | string | null = 200): Promise<Client> {
  const client = await connect(await subscribe(topic, events, { "subscriber.name": name }), ack);
  await client.waitFrames(1);
  return client;
}

type Frame = { id: string; timestamp: string; event: { "hub.event": string; context: { key: string; resource: any }[] } };

function outcome(frame: Frame) {
  expect(frame.event["hub.event"]).toBe("SyncError");
  const oo = frame.event.context[0]!;
  expect(oo.key).toBe("operationoutcome");
  expect(oo.resource.resourceType).toBe("OperationOutcome");
  return oo.resource.issue[0] as { severity: string; code: string; diagnostics: string; details: { coding: { system: string; code: string }[] } };
}

function codings(issue: ReturnType<typeof outcome>) {
  return Object.fromEntries(issue.details.coding.map((c) => [c.system.slice(SYS.length + 1), c.code]));
}

describe("acknowledgement status → SyncError (SHALL, fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html)", () => {
  it("an ack with 409 makes the hub send a profiled SyncError (refused) to the other SyncError subscribers, not to the refuser", async () => {
    const topic = uniqueTopic("refuse");
    const refuser = await join(topic, "Patient-open,SyncError", "Refusing Viewer", 409);
    const watcher = await join(topic, "Patient-open,SyncError", "Watcher");
    const ev = patientOpen(topic);
    expect((await publish(ev)).status).toBe(202);
    const sync = (await watcher.frame(2)) as Frame; // 0 confirmation, 1 the open, 2 the SyncError
    const issue = outcome(sync);
    expect(issue.severity).toBe("warning");
    expect(issue.code).toBe("processing");
    expect(issue.diagnostics).toContain("Refusing Viewer");
    expect(issue.diagnostics).toContain("409");
    expect(codings(issue)).toEqual({ eventid: ev.id, eventname: "Patient-open", subscribername: "Refusing Viewer" });
    expect(sync.id).not.toBe(ev.id);
    await refuser.quiet(2); // confirmation + the open; never its own SyncError
    await watcher.quiet(3);
  });

  it("string and numeric statuses are both read: '404' is a refusal, 500 a failure to deliver", async () => {
    const topic = uniqueTopic("status");
    await join(topic, "Patient-open", "A", "404");
    await join(topic, "Patient-open", "B", 500);
    const watcher = await join(topic, "SyncError", "Watcher");
    const ev = patientOpen(topic);
    await publish(ev);
    const frames = (await watcher.waitFrames(3)).slice(1) as Frame[];
    const byName = Object.fromEntries(frames.map((f) => { const i = outcome(f); return [codings(i).subscribername, i.diagnostics]; }));
    expect(byName.A).toContain("refused the event (status 404)");
    expect(byName.B).toContain("could not process the event (status 500)");
    await watcher.quiet(3);
  });

  it("acks without status ({id, timestamp}, as @medplum/core sends) and 2xx acks count as success: no SyncError", async () => {
    const topic = uniqueTopic("ok");
    const silent = await join(topic, "Patient-open", "NoStatus", null);
    const accepted = await join(topic, "Patient-open", "Accepted", 202);
    const watcher = await join(topic, "SyncError", "Watcher");
    const ev = patientOpen(topic);
    await publish(ev);
    await silent.waitFrames(2);
    silent.send({ id: ev.id, timestamp: new Date().toISOString() });
    await accepted.waitFrames(2);
    await new Promise((r) => setTimeout(r, 200));
    await fireDeadlines(topic, "ack"); // nothing is pending any more
    await watcher.quiet(1);
    expect(silent.closed).toBeUndefined();
  });

  it("one SyncError per failing subscriber per event: a second error ack for the same event is ignored", async () => {
    const topic = uniqueTopic("once");
    const refuser = await join(topic, "Patient-open", "Twice", 409);
    const watcher = await join(topic, "SyncError", "Watcher");
    const ev = patientOpen(topic);
    await publish(ev);
    await refuser.waitFrames(2);
    refuser.send({ id: ev.id, status: 409 });
    await watcher.waitFrames(2);
    await watcher.quiet(2);
  });
});

describe("missed acknowledgements: timeout, unresponsive subscribers (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html)", () => {
  it("no ack within the timeout → SyncError, then the unresponsive subscriber is denied, closed and removed", async () => {
    const topic = uniqueTopic("timeout");
    const mute = await join(topic, "Patient-open,SyncError", "Mute App", null);
    const watcher = await join(topic, "Patient-open,SyncError", "Watcher");
    const ev = patientOpen(topic);
    await publish(ev);
    await mute.waitFrames(2);
    await watcher.waitFrames(2);
    await fireDeadlines(topic, "ack");
    const issue = outcome((await watcher.frame(2)) as Frame);
    expect(issue.diagnostics).toContain("did not acknowledge the event within 10 s");
    expect(codings(issue)).toEqual({ eventid: ev.id, eventname: "Patient-open", subscribername: "Mute App" });
    const denial = (await mute.frame(2)) as Record<string, string>;
    expect(denial["hub.mode"]).toBe("denied");
    expect(denial["hub.reason"]).toContain("unresponsive");
    expect((await mute.waitClose()).code).toBe(1000);
    // Removed: a later event reaches only the watcher, and no SyncError is raised about the mute app.
    await publish(patientOpen(topic, "p2"));
    await watcher.waitFrames(4);
    await watcher.quiet(4);
  });

  it("the ack deadline survives eviction of the topic object between delivery and timeout", async () => {
    const topic = uniqueTopic("evict");
    const mute = await join(topic, "Patient-open", "Evicted Mute", null);
    const watcher = await join(topic, "SyncError", "Watcher");
    await publish(patientOpen(topic));
    await mute.waitFrames(2);
    await evictDurableObject(stub(topic));
    await fireDeadlines(topic, "ack");
    expect(codings(outcome((await watcher.frame(1)) as Frame)).subscribername).toBe("Evicted Mute");
    expect((await mute.waitClose()).code).toBe(1000);
  });

  it("answers and deliveries just before an eviction are kept: after it only the subscriber that did not answer is reported", async () => {
    // Attachment changes are written up to 25 ms later (src/topic/sockets.ts); an eviction right after
    // them must not lose them: neither the answer (a false SyncError) nor the delivery (a missed one).
    const topic = uniqueTopic("evict-answer");
    const acker = await join(topic, "Patient-open", "Prompt Acker");
    const mute = await join(topic, "Patient-open", "Evicted Mute", null);
    const watcher = await join(topic, "SyncError", "Watcher");
    await publish(patientOpen(topic));
    await Promise.all([acker.waitFrames(2), mute.waitFrames(2)]);
    // The acker's answer has reached the object (in memory) before the eviction starts.
    for (let i = 0; ; i++) {
      const owed = await runInDurableObject(stub(topic), (instance) =>
        (instance as unknown as { sockets: { attachments(): { name?: string; pending?: number[] }[] } }).sockets
          .attachments().filter((a) => a.pending?.length).map((a) => a.name));
      if (owed.length === 1) {
        expect(owed).toEqual(["Evicted Mute"]);
        break;
      }
      expect(i).toBeLessThan(100);
      await new Promise((r) => setTimeout(r, 10));
    }
    await evictDurableObject(stub(topic));
    await fireDeadlines(topic, "ack");
    expect(codings(outcome((await watcher.frame(1)) as Frame)).subscribername).toBe("Evicted Mute");
    expect((await mute.waitClose()).code).toBe(1000);
    await watcher.quiet(2);
    await acker.quiet(2);
  });

  it("a subscriber that stops reading is disconnected with a SyncError once too many events are unacknowledged", async () => {
    const topic = uniqueTopic("stall");
    const stalled = await join(topic, "Patient-open", "Stalled", null);
    const watcher = await join(topic, "SyncError", "Watcher");
    for (let i = 0; i < 257; i++) {
      expect((await publish(patientOpen(topic, `p${i}`))).status).toBe(202);
    }
    const issue = outcome((await watcher.frame(1)) as Frame);
    expect(issue.diagnostics).toContain("stopped reading");
    expect((await stalled.waitClose()).code).toBe(1000);
  });
});

describe("the byte budget (SOCKET_BUFFER_BYTES, 4 MiB by default)", () => {
  /** A Patient-open of about 900 KB (the patient's narrative). */
  const bigOpen = (topic: string, id: string) => {
    const ev = patientOpen(topic, id);
    const p = ev.event.context[0] as { resource: Record<string, unknown> };
    p.resource = { ...p.resource, text: { status: "generated", div: `<div>${"x".repeat(900_000)}</div>` } };
    return ev;
  };

  it("an event that would take a silent subscriber's unacknowledged bytes over the budget is not sent: SyncError naming the budget, denial, close", async () => {
    const topic = uniqueTopic("budget");
    const silent = await join(topic, "Patient-open", "Silent", null);
    const acker = await join(topic, "Patient-open,SyncError", "Acker");
    const events = Array.from({ length: 5 }, (_, i) => bigOpen(topic, `p${i}`));
    for (const [i, ev] of events.entries()) {
      expect((await publish(ev)).status).toBe(202);
      expect(((await acker.frame(1 + i)) as Frame).id).toBe(ev.id);
    }
    // 4 × 900 KB owed is under 4 MiB; the 5th would not be: it is not sent, the subscription ends.
    const frames = [...(await silent.waitFrames(6)), ...(await silent.waitClose().then(() => silent.frames.slice(6)))];
    expect(frames.slice(1, 5).map((f: any) => f.id)).toEqual(events.slice(0, 4).map((e) => e.id));
    expect(frames[5]).toMatchObject({ "hub.mode": "denied", "hub.reason": "subscriber stopped reading" });
    expect(frames).toHaveLength(6);
    expect(silent.closed?.code).toBe(1000);
    // The one that acknowledges got all five, then the SyncError about the silent one and the 5th event.
    const got = await acker.waitFrames(7);
    expect(got.slice(1, 6).map((f: any) => f.id)).toEqual(events.map((e) => e.id));
    const issue = outcome(got[6] as Frame);
    expect(issue.diagnostics).toMatch(/^Silent stopped reading \(4 events unacknowledged; the next one would make \d+ bytes owed, over SOCKET_BUFFER_BYTES\)/);
  });

  it("a subscriber that acknowledges as it goes is not cut, however many large events it is sent", async () => {
    const topic = uniqueTopic("budget-one");
    const acker = await join(topic, "Patient-open", "Acker");
    for (let i = 0; i < 6; i++) {
      const ev = bigOpen(topic, `p${i}`);
      expect((await publish(ev)).status).toBe(202);
      expect(((await acker.frame(1 + i)) as Frame).id).toBe(ev.id); // acknowledged before the next
    }
    await acker.quiet(7, 100);
  });
});

describe("socket closes (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html)", () => {
  for (const code of [1000, 1001]) {
    it(`close ${code} by the subscriber: no SyncError, subscription removed`, async () => {
      const topic = uniqueTopic(`close${code}`);
      const leaving = await join(topic, "Patient-open", "Leaving");
      const watcher = await join(topic, "SyncError,Patient-open", "Watcher");
      leaving.close(code);
      await new Promise((r) => setTimeout(r, 200));
      await publish(patientOpen(topic));
      await watcher.waitFrames(2);
      await watcher.quiet(2);
      expect(leaving.frames.length).toBe(1);
    });
  }

  it("an abnormal close (4000) is a SyncError naming the subscriber", async () => {
    const topic = uniqueTopic("abnormal");
    const crashing = await join(topic, "Patient-open", "Crashing App");
    const watcher = await join(topic, "SyncError", "Watcher");
    const ev = patientOpen(topic);
    await publish(ev);
    await crashing.waitFrames(2);
    crashing.close(4000, "crash");
    const issue = outcome((await watcher.frame(1)) as Frame);
    expect(issue.diagnostics).toContain("disconnected abnormally (close code 4000)");
    expect(codings(issue)).toEqual({ eventid: ev.id, eventname: "Patient-open", subscribername: "Crashing App" });
  });
});

describe("loop safety", () => {
  it("two subscribers that refuse everything (SyncErrors included) cause exactly one SyncError each per event", async () => {
    const topic = uniqueTopic("loop");
    const a = await join(topic, "Patient-open,SyncError", "A", 409);
    const b = await join(topic, "Patient-open,SyncError", "B", 409);
    await publish(patientOpen(topic));
    // Each gets the open and the other's SyncError; refusing a SyncError produces nothing more.
    await a.waitFrames(3);
    await b.waitFrames(3);
    await new Promise((r) => setTimeout(r, 300));
    await fireDeadlines(topic, "ack");
    await a.quiet(3);
    await b.quiet(3);
    expect(codings(outcome(a.frames[2] as Frame)).subscribername).toBe("B");
    expect(codings(outcome(b.frames[2] as Frame)).subscribername).toBe("A");
  });
});

describe("subscriber SyncErrors and resends (fhircast.hl7.org/STU3/2-6-SendEventNotification.html, fhircast.hl7.org/STU3/3-2-1-SyncError.html)", () => {
  it("a subscriber's own SyncError (POSTed) is distributed to the SyncError subscribers with its id", async () => {
    const topic = uniqueTopic("own");
    const watcher = await join(topic, "SyncError", "Watcher");
    const own = {
      timestamp: new Date().toISOString(),
      id: crypto.randomUUID(),
      event: {
        "hub.topic": topic,
        "hub.event": "syncerror",
        context: [{ key: "operationoutcome", resource: { resourceType: "OperationOutcome", issue: [{ severity: "warning", code: "processing", diagnostics: "Dictation failed to follow context" }] } }],
      },
    };
    expect((await publish(own)).status).toBe(202);
    const got = (await watcher.frame(1)) as Frame;
    expect(got.id).toBe(own.id);
    expect(got.event["hub.event"]).toBe("SyncError");
  });

  it("a resend with the same id is rate limited (429 + Retry-After), then accepted and re-broadcast", async () => {
    const topic = uniqueTopic("resend");
    const viewer = await join(topic, "Patient-open", "Viewer");
    const ev = patientOpen(topic);
    expect((await publish(ev)).status).toBe(202);
    const again = await publish(ev);
    expect(again.status).toBe(429);
    expect(Number(again.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(JSON.stringify(await again.json())).toContain("resend");
    // Let the resend window pass by ageing the logged event.
    await runInDurableObject(stub(topic), (_i, state: DurableObjectState) => {
      state.storage.sql.exec(`UPDATE events SET accepted_at = accepted_at - 60000`);
    });
    await evictDurableObject(stub(topic)); // the object's in-memory record of recent events goes too
    await viewer.waitFrames(2);
    expect((await publish(ev)).status).toBe(202);
    const frames = (await viewer.waitFrames(3)) as Frame[];
    expect(frames[1]!.id).toBe(ev.id);
    expect(frames[2]!.id).toBe(ev.id);
  });
});

describe("keep-alive (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html)", () => {
  it('"ping" is answered with "pong" by the runtime; no heartbeat event is sent by default', async () => {
    const topic = uniqueTopic("ping");
    const client = await join(topic, "Patient-open", "Pinger");
    client.send("ping");
    expect(await client.frame(1)).toEqual({ raw: "pong" });
    await client.quiet(2, 300);
  });
});

// Derived open events (issue 3; fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html experimental, fhircast.hl7.org/STU3/4-2-3-multi-anchor-considerations.html): subscribers holding
// different event sets receive the opens implied by an event they did not subscribe to.
import { describe, expect, it } from "vitest";
import { connect, currentContext, event, expireAnswers, patient, publish, subscribe, subscriber, uniqueTopic } from "../helpers/hub";

type Frame = { id: string; timestamp: string; event: { "hub.event": string; context: { key: string; resource: { resourceType: string; id: string } }[] } };

const encounter = (id: string, patientId: string) => ({ resourceType: "Encounter", id, status: "in-progress", subject: { reference: `Patient/${patientId}` } });
const study = (id: string) => ({ resourceType: "ImagingStudy", id, status: "available", subject: { reference: "Patient/p1" } });

function encounterOpen(topic: string, id = "e1", patientId = "p1") {
  return event(topic, "Encounter-open", [
    { key: "encounter", resource: encounter(id, patientId) },
    { key: "patient", resource: patient(patientId) },
  ]);
}

describe("derived open events (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html)", () => {
  it("Encounter-open implies Patient-open for a Patient-open-only subscriber: new id, original timestamp, the patient; current anchor unchanged", async () => {
    const topic = uniqueTopic("derive");
    const patientApp = await subscriber(topic, "Patient-open");
    const full = await subscriber(topic, "Patient-open,Encounter-open");
    const ev = encounterOpen(topic);
    expect((await publish(ev)).status).toBe(202);
    const derived = (await patientApp.client.frame(1)) as Frame;
    expect(derived.event["hub.event"]).toBe("Patient-open");
    expect(derived.id).not.toBe(ev.id);
    expect(derived.timestamp).toBe(ev.timestamp);
    expect(derived.event.context).toEqual([{ key: "patient", resource: patient("p1") }]);
    // The subscriber of the implying event gets only that event, never a duplicate Patient-open.
    expect(((await full.client.frame(1)) as Frame).id).toBe(ev.id);
    await full.client.quiet(2);
    await patientApp.client.quiet(2);
    expect((await currentContext(topic))["context.type"]).toBe("Encounter");
  });

  it("DiagnosticReport-open implies Patient-, Encounter- and one ImagingStudy-open per study, least specific first, same ids for every recipient", async () => {
    const topic = uniqueTopic("derive-dr");
    const events = "Patient-open,Encounter-open,ImagingStudy-open";
    const a = await subscriber(topic, events);
    const b = await subscriber(topic, events);
    const ev = event(topic, "DiagnosticReport-open", [
      { key: "report", resource: { resourceType: "DiagnosticReport", id: "r1", status: "unknown" } },
      { key: "encounter", resource: encounter("e1", "p1") },
      { key: "study", resource: study("s1") },
      { key: "study", resource: study("s2") },
      { key: "patient", resource: patient("p1") },
    ]);
    await publish(ev);
    const fa = ((await a.client.waitFrames(5)).slice(1)) as Frame[];
    const fb = ((await b.client.waitFrames(5)).slice(1)) as Frame[];
    expect(fa.map((f) => f.event["hub.event"])).toEqual(["Patient-open", "Encounter-open", "ImagingStudy-open", "ImagingStudy-open"]);
    expect(fa.map((f) => f.event.context[0]!.resource.id)).toEqual(["p1", "e1", "s1", "s2"]);
    expect(fa[1]!.event.context.map((c) => c.key)).toEqual(["encounter", "patient"]);
    expect(fa[2]!.event.context.map((c) => c.key)).toEqual(["study", "encounter", "patient"]);
    expect(fb.map((f) => f.id)).toEqual(fa.map((f) => f.id));
    await a.client.quiet(5);
  });

  it("is not duplicated: a subscriber whose last Patient-open was the same patient gets no derived one", async () => {
    const topic = uniqueTopic("derive-dup");
    const app = await subscriber(topic, "Patient-open,Patient-close");
    await publish(event(topic, "Patient-open", [{ key: "patient", resource: patient("p1") }]));
    await app.client.waitFrames(2);
    await publish(encounterOpen(topic, "e1", "p1"));
    await publish(encounterOpen(topic, "e2", "p1"));
    await app.client.quiet(2);
    // After that patient's context closed, a new implying open derives it again.
    await publish(event(topic, "Patient-close", [{ key: "patient", resource: patient("p1") }]));
    await publish(encounterOpen(topic, "e3", "p1"));
    const frames = (await app.client.waitFrames(4)) as Frame[];
    expect(frames[3]!.event["hub.event"]).toBe("Patient-open");
    expect(frames[3]!.event.context[0]!.resource.id).toBe("p1");
    await app.client.quiet(4);
  });

  it("a new subscriber gets the derived opens of the newest open context in its replay", async () => {
    const topic = uniqueTopic("derive-replay");
    await publish(encounterOpen(topic, "e9", "p9"));
    const app = await subscriber(topic, "Patient-open", {}, 1);
    const replayed = app.client.frames[1] as Frame;
    expect(replayed.event["hub.event"]).toBe("Patient-open");
    expect(replayed.event.context).toEqual([{ key: "patient", resource: patient("p9") }]);
    await app.client.quiet(2);
  });
});

describe("derived opens are acknowledged like live events (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html: a SyncError for every failed event notification)", () => {
  function syncErrorAbout(frame: any) {
    expect(frame.event["hub.event"]).toBe("SyncError");
    const issue = frame.event.context[0].resource.issue[0];
    const codes = Object.fromEntries(issue.details.coding.map((c: { system: string; code: string }) => [c.system.split("/").pop(), c.code]));
    return { ...codes, diagnostics: issue.diagnostics as string };
  }

  it("a subscriber that answers a derived Patient-open with 409 makes the hub send a SyncError naming the derived event's id", async () => {
    const topic = uniqueTopic("derive-refuse");
    const refuser = await connect(await subscribe(topic, "Patient-open", { "subscriber.name": "Patient Viewer" }), 409);
    await refuser.waitFrames(1);
    const watcher = await subscriber(topic, "Encounter-open,SyncError");
    expect((await publish(encounterOpen(topic))).status).toBe(202);
    const derived = (await refuser.frame(1)) as Frame;
    expect(derived.event["hub.event"]).toBe("Patient-open");
    await watcher.client.waitFrames(2); // the Encounter-open itself
    const sync = syncErrorAbout(await watcher.client.frame(2));
    expect(sync).toMatchObject({ eventid: derived.id, eventname: "Patient-open", subscribername: "Patient Viewer" });
    expect(sync.diagnostics).toContain("status 409");
    await watcher.client.quiet(3);
  });

  it("a subscriber that owes answers to more than 64 derived opens is stalled: SyncError, denial, close", async () => {
    const topic = uniqueTopic("derive-stalled");
    const watcher = await subscriber(topic, "SyncError");
    const mute = await connect(await subscribe(topic, "Patient-open", { "subscriber.name": "Behind" }), null);
    await mute.waitFrames(1);
    for (let i = 0; i <= 64; i++) expect((await publish(encounterOpen(topic, `e${i}`, `p${i}`))).status).toBe(202);
    const denial = mute.frames.find((f: any) => f["hub.mode"] === "denied") ?? (await mute.frame(66));
    expect(denial).toMatchObject({ "hub.mode": "denied", "hub.reason": "subscriber stopped reading" });
    expect((await mute.waitClose()).code).toBe(1000);
    expect(syncErrorAbout(await watcher.client.frame(1))).toMatchObject({ subscribername: "Behind", diagnostics: expect.stringContaining("stopped reading") });
    await watcher.client.quiet(2);
  });

  it("a subscriber that never answers derived opens (live or in its replay) is found unresponsive: SyncError, denial, close", async () => {
    const topic = uniqueTopic("derive-mute");
    const watcher = await subscriber(topic, "SyncError");
    const live = await connect(await subscribe(topic, "Patient-open", { "subscriber.name": "Mute Live" }), null);
    await live.waitFrames(1);
    await publish(encounterOpen(topic, "e1", "p1"));
    const derived = (await live.frame(1)) as Frame;
    // A second subscriber gets the derived open of the same context in its replay.
    const replayed = await connect(await subscribe(topic, "Patient-open", { "subscriber.name": "Mute Replayed" }), null);
    const derivedInReplay = (await replayed.frame(1)) as Frame;
    expect(derivedInReplay.event["hub.event"]).toBe("Patient-open");
    await expireAnswers(topic);
    const errors = ((await watcher.client.waitFrames(3)).slice(1) as any[]).map(syncErrorAbout);
    expect(errors).toEqual(expect.arrayContaining([
      expect.objectContaining({ eventid: derived.id, eventname: "Patient-open", subscribername: "Mute Live" }),
      expect.objectContaining({ eventid: derivedInReplay.id, eventname: "Patient-open", subscribername: "Mute Replayed" }),
    ]));
    for (const c of [live, replayed]) {
      expect(await c.frame(2)).toMatchObject({ "hub.mode": "denied", "hub.reason": expect.stringContaining("unresponsive") });
      expect((await c.waitClose()).code).toBe(1000);
    }
    await watcher.client.quiet(3);
  });
});

// Multiple open contexts (fhircast.hl7.org/STU3/4-2-2-multitab-considerations.html, fhircast.hl7.org/STU3/4-2-3-multi-anchor-considerations.html): all open contexts kept in
// most-recently-opened order; re-opening makes an anchor current; a close of a background context
// leaves the current one alone; a close of something not open is broadcast (202) and changes nothing.
import { describe, expect, it } from "vitest";
import {
  asDistributedOpen, currentContext, homeOpen, patientClose, patientOpen, publish, reportClose, reportOpen, subscriber, topicSql, uniqueTopic,
} from "../helpers/hub";
import { MAX_OPEN_CONTEXTS } from "../../src/topic/publish";
import { CONTEXT_TRIM_EVERY } from "../../src/topic/store";

const EMPTY = { "context.type": "", context: [] };

/** A subscriber to Patient-open/close and Home-open that records what the hub distributed. */
async function watcher(topic: string) {
  return subscriber(topic, "Patient-open,Patient-close,Home-open,DiagnosticReport-open,DiagnosticReport-close");
}

function patientOf(ctx: Record<string, unknown>): string | undefined {
  const entries = ctx.context as { key: string; resource: { id: string } }[];
  return entries.find((e) => e.key === "patient")?.resource.id;
}

describe("multi-tab state (fhircast.hl7.org/STU3/4-2-2-multitab-considerations.html)", () => {
  it("with two patients open the last opened is current; re-opening the first makes it current again with a new versionId", async () => {
    const topic = uniqueTopic("tabs");
    const { client } = await watcher(topic);
    const p1 = patientOpen(topic, "p1");
    const p2 = patientOpen(topic, "p2");
    const p1again = patientOpen(topic, "p1");
    for (const ev of [p1, p2]) expect((await publish(ev)).status).toBe(202);
    const [, f1, f2] = (await client.waitFrames(3)) as any[];
    let ctx = await currentContext(topic);
    expect(patientOf(ctx)).toBe("p2");
    expect(ctx["context.versionId"]).toBe(f2.event["context.versionId"]);

    expect((await publish(p1again)).status).toBe(202);
    const f3 = await client.frame(3);
    expect(f3).toEqual(asDistributedOpen(p1again)); // a tab switch is an ordinary open, not an error
    ctx = await currentContext(topic);
    expect(ctx).toMatchObject({ "context.type": "Patient", "context.versionId": f3.event["context.versionId"] });
    expect(patientOf(ctx)).toBe("p1");
    expect(f3.event["context.versionId"]).not.toBe(f1.event["context.versionId"]);
    client.close();
  });

  it("keeps open contexts in most-recently-opened order: closing the newest leaves the next newest as the one replayed", async () => {
    const topic = uniqueTopic("tabs");
    for (const id of ["p1", "p2", "p3"]) expect((await publish(patientOpen(topic, id))).status).toBe(202);
    expect((await publish(patientOpen(topic, "p1"))).status).toBe(202); // p1 becomes the newest: order p2, p3, p1
    const replayed = async () => {
      const s = await subscriber(topic, "Patient-open");
      await new Promise((r) => setTimeout(r, 300)); // the replay follows the confirmation at once
      s.client.close();
      return (s.client.frames.slice(1) as any[]).map((f) => f.event.context[0].resource.id);
    };
    expect(await replayed()).toEqual(["p1"]);
    expect((await publish(patientClose(topic, "p1"))).status).toBe(202);
    expect(await replayed()).toEqual(["p3"]);
    expect((await publish(patientClose(topic, "p3"))).status).toBe(202);
    expect(await replayed()).toEqual(["p2"]);
    expect((await publish(patientClose(topic, "p2"))).status).toBe(202);
    expect(await replayed()).toEqual([]);
  });

  it("a close of a background context is broadcast and leaves the current context unchanged", async () => {
    const topic = uniqueTopic("tabs");
    const { client } = await watcher(topic);
    for (const ev of [patientOpen(topic, "p1"), patientOpen(topic, "p2")]) expect((await publish(ev)).status).toBe(202);
    await client.waitFrames(3);
    const before = await currentContext(topic);
    const close = patientClose(topic, "p1");
    expect((await publish(close)).status).toBe(202);
    expect(await client.frame(3)).toEqual(close);
    expect(await currentContext(topic)).toStrictEqual(before);
    // p1 is no longer open: a new subscriber's replay shows only p2.
    const late = await subscriber(topic, "Patient-open", {}, 1);
    expect((await late.client.frame(1)).event.context[0].resource.id).toBe("p2");
    await late.client.quiet(2);
    late.client.close();
    client.close();
  });

  it("a close of something never opened is broadcast (202, delivered) and changes nothing", async () => {
    const topic = uniqueTopic("tabs");
    const { client } = await watcher(topic);
    expect((await publish(patientOpen(topic, "p1"))).status).toBe(202);
    await client.waitFrames(2);
    const before = await currentContext(topic);
    const close = patientClose(topic, "never-opened");
    expect((await publish(close)).status).toBe(202);
    expect(await client.frame(2)).toEqual(close);
    expect(await currentContext(topic)).toStrictEqual(before);
    const late = await subscriber(topic, "Patient-open", {}, 1);
    expect((await late.client.frame(1)).event.context[0].resource.id).toBe("p1");
    late.client.close();
    client.close();
  });

  it("after the current context closes nothing is current, but the older context stays open until it is re-opened", async () => {
    const topic = uniqueTopic("tabs");
    const { client } = await watcher(topic);
    for (const ev of [patientOpen(topic, "p1"), patientOpen(topic, "p2"), patientClose(topic, "p2")]) expect((await publish(ev)).status).toBe(202);
    await client.waitFrames(4);
    expect(await currentContext(topic)).toStrictEqual(EMPTY);
    const late = await subscriber(topic, "Patient-open", {}, 1);
    expect((await late.client.frame(1)).event.context[0].resource.id).toBe("p1");
    late.client.close();
    expect((await publish(patientOpen(topic, "p1"))).status).toBe(202);
    expect(patientOf(await currentContext(topic))).toBe("p1");
    client.close();
  });

  it("Home-open clears the current context; a later open makes that anchor current", async () => {
    const topic = uniqueTopic("tabs");
    const { client } = await watcher(topic);
    for (const ev of [patientOpen(topic, "p1"), reportOpen(topic, "r1", "p1"), homeOpen(topic)]) expect((await publish(ev)).status).toBe(202);
    await client.waitFrames(4);
    expect(await currentContext(topic)).toStrictEqual(EMPTY);
    expect((await publish(patientOpen(topic, "p1"))).status).toBe(202);
    const ctx = await currentContext(topic);
    expect(ctx["context.type"]).toBe("Patient");
    expect(patientOf(ctx)).toBe("p1");
    client.close();
  });

  it("a DiagnosticReport-close or Encounter-close carrying a patient entry does not close the Patient context (fhircast.hl7.org/STU3/4-2-2-multitab-considerations.html)", async () => {
    const topic = uniqueTopic("tabs");
    const { client } = await watcher(topic);
    for (const ev of [patientOpen(topic, "p1"), reportOpen(topic, "r1", "p1"), reportClose(topic, "r1", "p1")]) {
      expect((await publish(ev)).status).toBe(202);
    }
    await client.waitFrames(4);
    expect(await currentContext(topic)).toStrictEqual(EMPTY); // the closed report was current
    const late = await subscriber(topic, "Patient-open,DiagnosticReport-open", {}, 1);
    expect((await late.client.frame(1)).event).toMatchObject({ "hub.event": "Patient-open", context: [{ key: "patient", resource: { id: "p1" } }] });
    await late.client.quiet(2);
    late.client.close();
    client.close();
  });

  it("closing the current context after switching tabs does not resurrect the previous tab as current", async () => {
    const topic = uniqueTopic("tabs");
    for (const ev of [patientOpen(topic, "p1"), reportOpen(topic, "r1", "p1"), patientOpen(topic, "p1")]) {
      expect((await publish(ev)).status).toBe(202);
    }
    expect((await currentContext(topic))["context.type"]).toBe("Patient");
    expect((await publish(patientClose(topic, "p1"))).status).toBe(202);
    expect(await currentContext(topic)).toStrictEqual(EMPTY);
  });
});

describe("bounded open contexts", () => {
  it(`keeps at most ${MAX_OPEN_CONTEXTS} open contexts (plus those opened since the last trim), dropping the least recently opened`, async () => {
    const topic = uniqueTopic("bound");
    const opens = 2 * CONTEXT_TRIM_EVERY + 10; // past two trims
    for (let i = 0; i < opens; i++) expect((await publish(patientOpen(topic, `p${i}`))).status).toBe(202);
    const anchors = (await topicSql<{ anchor: string }>(topic, `SELECT anchor FROM contexts ORDER BY opened_seq`)).map((r) => r.anchor);
    // The last trim (after the open with seq 2 × CONTEXT_TRIM_EVERY) kept the newest MAX_OPEN_CONTEXTS; 10 opens since.
    const kept = Array.from({ length: MAX_OPEN_CONTEXTS + 10 }, (_, k) => `Patient/p${opens - MAX_OPEN_CONTEXTS - 10 + k}`);
    expect(anchors).toEqual(kept);
    const current = (await currentContext(topic)) as { context: { resource?: { id?: string } }[] };
    expect(current.context[0]?.resource?.id).toBe(`p${opens - 1}`);
  });
});

// fhircast.hl7.org/STU3/2-9-GetCurrentContext.html Get Current Context: GET {hub.url}/{topic} returns
// context.type, context.versionId and the current open's context exactly as sent, plus a `content`
// entry holding a collection Bundle; the empty form when nothing is current.
import { describe, expect, it } from "vitest";
import {
  currentContext, encounterOpen, homeOpen, hubFetch, patientClose, patientOpen, publish, reportClose, reportOpen, subscriber,
  uniqueTopic,
} from "../helpers/hub";

const EMPTY = { "context.type": "", context: [] };
const emptyContent = { key: "content", resource: { resourceType: "Bundle", id: expect.any(String), type: "collection", entry: [] } };

/** Publishes an open and returns the context.versionId the hub distributed with it. */
async function open(topic: string, ev: ReturnType<typeof patientOpen>): Promise<string> {
  const { client } = await subscriber(topic, ev.event["hub.event"]);
  expect((await publish(ev)).status).toBe(202);
  // The new subscriber may get a replay first: skip frames until the live event (each wait times out).
  let live: { id: string; event: Record<string, unknown> } | undefined;
  for (let i = 1; !live; i++) {
    const f = await client.frame(i);
    if (f.id === ev.id) live = f;
  }
  client.close();
  return live.event["context.versionId"] as string;
}

describe("GET current context (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html)", () => {
  it("returns exactly the empty form {\"context.type\":\"\",\"context\":[]} for a topic with no events, as application/json", async () => {
    const res = await hubFetch(`/api/hub/${encodeURIComponent(uniqueTopic("ctx"))}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(await res.json()).toStrictEqual(EMPTY);
  });

  it("after a Patient-open: context.type, the distributed context.versionId, and the open's context exactly as sent plus an empty collection Bundle", async () => {
    const topic = uniqueTopic("ctx");
    const ev = patientOpen(topic, "ewUbXT9RWEbSj5wPEdgRaBw3");
    const versionId = await open(topic, ev);
    expect(await currentContext(topic)).toStrictEqual({
      "context.type": "Patient",
      "context.versionId": versionId,
      context: [...ev.event.context, emptyContent],
    });
  });

  it("after a DiagnosticReport-open: every context entry of the open in order (report, patient, study), then content", async () => {
    const topic = uniqueTopic("ctx");
    const ev = reportOpen(topic, "40012366", "p1");
    ev.event.context.push({ key: "study", resource: { resourceType: "ImagingStudy", id: "8i7tbu6fby5ftfbku6fniuf", status: "available" } } as never);
    const versionId = await open(topic, ev);
    const ctx = await currentContext(topic);
    expect(ctx).toStrictEqual({ "context.type": "DiagnosticReport", "context.versionId": versionId, context: [...ev.event.context, emptyContent] });
  });

  it("the current context follows the most recent open across anchor types", async () => {
    const topic = uniqueTopic("ctx");
    await open(topic, patientOpen(topic, "p1"));
    const enc = encounterOpen(topic, "e1", "p1");
    const v = await open(topic, enc);
    expect(await currentContext(topic)).toStrictEqual({ "context.type": "Encounter", "context.versionId": v, context: [...enc.event.context, emptyContent] });
  });

  it("SHALL return the empty form after the current context closes", async () => {
    const topic = uniqueTopic("ctx");
    await open(topic, patientOpen(topic, "p1"));
    expect((await publish(patientClose(topic, "p1"))).status).toBe(202);
    expect(await currentContext(topic)).toStrictEqual(EMPTY);
  });

  it("SHALL return the empty form after the current context closes even though an older context is still open", async () => {
    const topic = uniqueTopic("ctx");
    await open(topic, patientOpen(topic, "p1"));
    await open(topic, reportOpen(topic, "r1", "p1"));
    expect((await publish(reportClose(topic, "r1", "p1"))).status).toBe(202);
    expect(await currentContext(topic)).toStrictEqual(EMPTY);
  });

  it("returns the empty form after Home-open (switch to a context-less home tab)", async () => {
    const topic = uniqueTopic("ctx");
    await open(topic, patientOpen(topic, "p1"));
    const { client } = await subscriber(topic, "Home-open");
    const home = homeOpen(topic);
    expect((await publish(home)).status).toBe(202);
    expect(await client.frame(1)).toEqual(home);
    expect(await currentContext(topic)).toStrictEqual(EMPTY);
    client.close();
  });

  it("reading the current context changes nothing (two reads are identical)", async () => {
    const topic = uniqueTopic("ctx");
    await open(topic, patientOpen(topic, "p1"));
    const a = await currentContext(topic);
    const b = await currentContext(topic);
    expect(b).toStrictEqual(a);
  });

  it("a topic name with reserved characters is read back through URL encoding", async () => {
    const topic = `${uniqueTopic("ctx")} a+b&c=d?é`;
    const ev = patientOpen(topic, "p1");
    const versionId = await open(topic, ev);
    expect(await currentContext(topic)).toStrictEqual({ "context.type": "Patient", "context.versionId": versionId, context: [...ev.event.context, emptyContent] });
  });
});

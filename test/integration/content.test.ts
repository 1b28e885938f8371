// Content sharing over the real Worker and Durable Object (issue 3; fhircast.hl7.org/STU3/2-10-ContentSharing.html, fhircast.hl7.org/STU3/2-9-GetCurrentContext.html, fhircast.hl7.org/STU3/4-2-2-multitab-considerations.html, spec notes A3, A16,
// A17, A18, A23): versions on open, the versioned atomic update, GET with content, select, multi-tab
// scope, and state surviving eviction. Every test has its own topic; every wait has a timeout.
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  contentUpdate,
  currentContext,
  deleteEntry,
  event,
  hubFetch,
  observation,
  patient,
  publish,
  putEntry,
  refusal,
  reportClose,
  reportOpen,
  type Resource,
  subscriber,
  topicStub,
  uniqueTopic,
} from "../helpers/hub";

const DR_EVENTS = "DiagnosticReport-open,DiagnosticReport-update,DiagnosticReport-select,DiagnosticReport-close";
type Notification = ReturnType<typeof event>;

/** The open event as the hub distributes and replays it: the request plus the hub's version (fhircast.hl7.org/STU3/2-10-ContentSharing.html, spec note A3). */
const versioned = (n: Notification, versionId: string) => ({ ...n, event: { ...n.event, "context.versionId": versionId } });
/** An update as the hub broadcasts it: new version, prior = the request's, same id and Bundle (fhircast.hl7.org/STU3/2-10-ContentSharing.html). */
const broadcastOf = (n: Notification, versionId: string) => ({
  ...n,
  event: { ...n.event, "context.versionId": versionId, "context.priorVersionId": n.event["context.versionId"] },
});

async function accepted(n: unknown): Promise<void> {
  const res = await publish(n);
  if (res.status !== 202) throw new Error(`publish refused: ${res.status} ${await res.text()}`);
}

/** Opens an anchor and returns the versionId the hub assigned, read from a subscriber's frame. */
async function openAndVersion(client: { frame(i: number): Promise<any> }, index: number, open: Notification): Promise<string> {
  await accepted(open);
  const frame = await client.frame(index);
  expect(frame).toEqual(versioned(open, frame.event["context.versionId"]));
  expect(typeof frame.event["context.versionId"]).toBe("string");
  expect(frame.event["context.versionId"]).not.toBe("");
  return frame.event["context.versionId"] as string;
}

/** The GET body for an anchor: the open's context as opened, plus exactly one content Bundle (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html). */
function expectedContext(open: Notification, versionId: string, content: { fullUrl?: string; resource: unknown }[]) {
  return {
    "context.type": open.event["hub.event"].split("-")[0],
    "context.versionId": versionId,
    context: [
      ...open.event.context,
      { key: "content", resource: { resourceType: "Bundle", id: expect.any(String), type: "collection", entry: content } },
    ],
  };
}

// ---- our own fixtures for the spec's example chain (3-6-1 → 3-6-3) ---------------------------------

const PATIENT_ID = "503824b8-fe8c-4227-b061-7181ba6c3926";
const REPORT_ID = "2402d3bd-e988-414b-b7f2-4322e86c9327";
const OPEN_STUDY_ID = "8i7tbu6fby5ftfbku6fniuf";
const NEW_STUDY_ID = "7e9deb91-0017-4690-aebd-951cef34aba4";
const OBS_ID = "40afe766-3628-4ded-b5bd-925727c013b3";

const chainReport = (status: string): Resource => ({
  resourceType: "DiagnosticReport",
  id: REPORT_ID,
  status,
  basedOn: [{ identifier: { type: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0203", code: "ACSN" }] }, value: "VN0001" } }],
  subject: { reference: `Patient/${PATIENT_ID}` },
  imagingStudy: [{ reference: `ImagingStudy/${OPEN_STUDY_ID}` }],
});
const chainStudy = (id: string): Resource => ({
  resourceType: "ImagingStudy",
  id,
  status: "available",
  identifier: [{ system: "urn:dicom:uid", value: `urn:oid:2.16.124.113543.6003.1154777499.${id.length}` }],
  subject: { reference: `Patient/${PATIENT_ID}` },
});

function chainOpen(topic: string) {
  return event(topic, "DiagnosticReport-open", [
    { key: "report", resource: chainReport("unknown") },
    { key: "patient", resource: patient(PATIENT_ID) },
    { key: "study", resource: chainStudy(OPEN_STUDY_ID) },
  ]);
}

describe("every *-open gets a context.versionId unique within the topic (fhircast.hl7.org/STU3/2-10-ContentSharing.html)", () => {
  it("in the distributed event, the replay and GET; a different one for each open", async () => {
    const topic = uniqueTopic("ver");
    const { client } = await subscriber(topic, "Patient-open,Encounter-open,ImagingStudy-open,DiagnosticReport-open");
    const opens = [
      event(topic, "Patient-open", [{ key: "patient", resource: patient("p1") }]),
      event(topic, "Encounter-open", [
        { key: "encounter", resource: { resourceType: "Encounter", id: "e1", status: "in-progress", subject: { reference: "Patient/p1" } } },
        { key: "patient", resource: patient("p1") },
      ]),
      event(topic, "ImagingStudy-open", [{ key: "study", resource: chainStudy("s1") }, { key: "patient", resource: patient("p1") }]),
      reportOpen(topic, "r1", "p1"),
      reportOpen(topic, "r2", "p1"),
      reportOpen(topic, "r1", "p1"), // re-open: a new version again (spec note A23)
    ];
    const versions: string[] = [];
    for (const [i, open] of opens.entries()) versions.push(await openAndVersion(client, i + 1, open));
    expect(new Set(versions).size).toBe(opens.length);

    // GET: the current (last) open's version.
    expect((await currentContext(topic))["context.versionId"]).toBe(versions[5]);

    // Replay: the most recent open per anchor type, each with its current version.
    const { client: late } = await subscriber(topic, "Patient-open,Encounter-open,ImagingStudy-open,DiagnosticReport-open", {}, 4);
    expect(late.frames.slice(1)).toEqual([
      versioned(opens[0]!, versions[0]!),
      versioned(opens[1]!, versions[1]!),
      versioned(opens[2]!, versions[2]!),
      versioned(opens[5]!, versions[5]!),
    ]);
    await late.quiet(5);
  });

  it("a client-sent versionId on an open is replaced by the hub's", async () => {
    const topic = uniqueTopic("ver-client");
    const { client } = await subscriber(topic, "DiagnosticReport-open");
    const open = { ...reportOpen(topic), event: { ...reportOpen(topic).event, "context.versionId": "client-chosen", versionId: "client-alias" } };
    await accepted(open);
    const frame = await client.frame(1);
    expect(frame.event["context.versionId"]).not.toBe("client-chosen");
    expect(frame.event.versionId).toBeUndefined();
    expect((await currentContext(topic))["context.versionId"]).toBe(frame.event["context.versionId"]);
  });
});

describe("the spec's example chain (3-6-1 open → 3-6-3 update, broadcast, DELETE, stale replay)", () => {
  it("applies each update at the current version, broadcasts v(n+1) with prior v(n), and rejects the replayed first update as stale", async () => {
    const topic = uniqueTopic("chain");
    const { client } = await subscriber(topic, DR_EVENTS);
    const open = chainOpen(topic);
    const v1 = await openAndVersion(client, 1, open);

    // Update at v1: PUT ImagingStudy, PUT Observation, PUT DiagnosticReport (status changes).
    const update1 = contentUpdate(topic, `DiagnosticReport/${REPORT_ID}`, v1, [
      putEntry(chainStudy(NEW_STUDY_ID)),
      putEntry(observation(OBS_ID, PATIENT_ID, { partOf: [{ reference: `ImagingStudy/${NEW_STUDY_ID}` }] })),
      putEntry(chainReport("preliminary")),
    ], { bundleId: "bundle-update-1", patientId: PATIENT_ID });
    expect((await publish(update1)).status).toBe(202);
    const b1 = await client.frame(2);
    const v2 = b1.event["context.versionId"] as string;
    expect(typeof v2).toBe("string");
    expect(v2).not.toBe(v1);
    // Same event id, same Bundle id (spec note A18), priorVersionId = v1, everything else as sent.
    expect(b1).toEqual(broadcastOf(update1, v2));
    expect(b1.id).toBe(update1.id);
    expect(b1.event["context.priorVersionId"]).toBe(v1);
    expect(b1.event.context[2].resource.id).toBe("bundle-update-1");

    expect(await currentContext(topic)).toEqual(expectedContext(open, v2, [
      { resource: chainStudy(NEW_STUDY_ID) },
      { resource: observation(OBS_ID, PATIENT_ID, { partOf: [{ reference: `ImagingStudy/${NEW_STUDY_ID}` }] }) },
      { resource: chainReport("preliminary") },
    ]));

    // Update at v2: DELETE the Observation by relative fullUrl (spec note A17), PUT the report as final.
    const update2 = contentUpdate(topic, `DiagnosticReport/${REPORT_ID}`, v2, [
      deleteEntry(`Observation/${OBS_ID}`),
      putEntry(chainReport("final")),
    ], { bundleId: "bundle-update-2" });
    expect((await publish(update2)).status).toBe(202);
    const b2 = await client.frame(3);
    const v3 = b2.event["context.versionId"] as string;
    expect(new Set([v1, v2, v3]).size).toBe(3);
    expect(b2).toEqual(broadcastOf(update2, v3));

    const afterChain = await currentContext(topic);
    expect(afterChain).toEqual(expectedContext(open, v3, [
      { resource: chainStudy(NEW_STUDY_ID) },
      { resource: chainReport("final") },
    ]));

    // Sending the first update (based on v1) again is stale: 409, nothing applied, nothing sent. It
    // goes as a new event (new id): a resend of the same id within RESEND_MIN_SECONDS is throttled first.
    const stale = await refusal(await publish({ ...update1, id: crypto.randomUUID() }));
    expect(stale).toEqual({
      status: 409,
      contentType: "application/fhir+json; charset=utf-8",
      code: "conflict",
      diagnostics: `context.versionId "${v1}" is not the current version of DiagnosticReport/${REPORT_ID}; the current version is "${v3}"`,
    });
    expect(await currentContext(topic)).toEqual(afterChain);
    await client.quiet(4);
  });

  it("the 409 names the current version, which a client can then update against", async () => {
    const topic = uniqueTopic("409");
    const { client } = await subscriber(topic, DR_EVENTS);
    const v1 = await openAndVersion(client, 1, reportOpen(topic));
    const res = await refusal(await publish(contentUpdate(topic, "DiagnosticReport/r1", "not-a-version", [putEntry(observation("o1"))])));
    expect(res.status).toBe(409);
    expect(res.code).toBe("conflict");
    expect(res.diagnostics).toBe(`context.versionId "not-a-version" is not the current version of DiagnosticReport/r1; the current version is "${v1}"`);
    const current = /the current version is "([^"]+)"/.exec(res.diagnostics)![1]!;
    expect((await publish(contentUpdate(topic, "DiagnosticReport/r1", current, [putEntry(observation("o1"))]))).status).toBe(202);
  });

  it("accepts the plain versionId alias on an update and broadcasts the dotted form (spec note A3)", async () => {
    const topic = uniqueTopic("alias");
    const { client } = await subscriber(topic, DR_EVENTS);
    const v1 = await openAndVersion(client, 1, reportOpen(topic));
    const upd = contentUpdate(topic, "DiagnosticReport/r1", v1, [putEntry(observation("o1"))]);
    const { "context.versionId": _dotted, ...plain } = upd.event;
    expect((await publish({ ...upd, event: { ...plain, versionId: v1 } })).status).toBe(202);
    const b = await client.frame(2);
    expect(b).toEqual(broadcastOf(upd, b.event["context.versionId"]));
    expect(b.event.versionId).toBeUndefined();
  });
});

describe("atomicity: an update with one bad entry is rejected whole (fhircast.hl7.org/STU3/2-10-ContentSharing.html)", () => {
  const bad: [string, (topic: string, v: string) => unknown, number, string][] = [
    ["a POST entry", (t, v) => contentUpdate(t, "DiagnosticReport/r1", v, [
      putEntry(observation("new")),
      { request: { method: "POST" }, resource: { resourceType: "Observation", status: "preliminary" } },
    ]), 422, "not-supported"],
    ["the same resource twice", (t, v) => contentUpdate(t, "DiagnosticReport/r1", v, [
      putEntry(observation("new")),
      putEntry(observation("new", "p1", { status: "final" })),
    ]), 400, "invalid"],
    ["a DELETE of the open event's report", (t, v) => contentUpdate(t, "DiagnosticReport/r1", v, [
      putEntry(observation("new")),
      deleteEntry("DiagnosticReport/r1"),
    ]), 422, "business-rule"],
    ["a DELETE of the open event's patient, by absolute request.url", (t, v) => contentUpdate(t, "DiagnosticReport/r1", v, [
      putEntry(observation("new")),
      { fullUrl: "urn:uuid:7d3c", request: { method: "DELETE", url: "https://fhir.example.org/Patient/p1" } },
    ]), 422, "business-rule"],
    ["a DELETE of the open event's report placed first", (t, v) => contentUpdate(t, "DiagnosticReport/r1", v, [
      deleteEntry("DiagnosticReport/r1"),
      putEntry(observation("new")),
    ]), 422, "business-rule"],
    ["two updates Bundles", (t, v) => {
      const u = contentUpdate(t, "DiagnosticReport/r1", v, [putEntry(observation("new"))]);
      return { ...u, event: { ...u.event, context: [...u.event.context, { key: "updates", resource: { resourceType: "Bundle", type: "transaction", entry: [] } }] } };
    }, 400, "invalid"],
    ["a stale version", (t) => contentUpdate(t, "DiagnosticReport/r1", "stale", [putEntry(observation("new"))]), 409, "conflict"],
  ];

  it.each(bad)("%s → the whole update refused; GET unchanged; no subscriber got a frame", async (_label, build, status, code) => {
    const topic = uniqueTopic("atomic");
    const { client } = await subscriber(topic, DR_EVENTS);
    const open = reportOpen(topic);
    const v1 = await openAndVersion(client, 1, open);
    await accepted(contentUpdate(topic, "DiagnosticReport/r1", v1, [putEntry(observation("kept"))]));
    const v2 = (await client.frame(2)).event["context.versionId"] as string;
    const before = await currentContext(topic);
    expect(before).toEqual(expectedContext(open, v2, [{ resource: observation("kept") }]));

    const res = await refusal(await publish(build(topic, v2)));
    expect([res.status, res.code]).toEqual([status, code]);
    expect(await currentContext(topic)).toEqual(before);
    await client.quiet(3);

    // The version did not move: an update at v2 still applies.
    await accepted(contentUpdate(topic, "DiagnosticReport/r1", v2, [putEntry(observation("after"))]));
    expect((await client.frame(3)).event["context.priorVersionId"]).toBe(v2);
  });

  it("a DELETE of a resource that was added by an update (not in the open context) is allowed", async () => {
    const topic = uniqueTopic("del-added");
    const { client } = await subscriber(topic, DR_EVENTS);
    const open = reportOpen(topic);
    const v1 = await openAndVersion(client, 1, open);
    await accepted(contentUpdate(topic, "DiagnosticReport/r1", v1, [putEntry(observation("o1")), putEntry(observation("o2"))]));
    const v2 = (await client.frame(2)).event["context.versionId"] as string;
    await accepted(contentUpdate(topic, "DiagnosticReport/r1", v2, [deleteEntry("https://fhir.example.org/Observation/o1")]));
    const v3 = (await client.frame(3)).event["context.versionId"] as string;
    expect(await currentContext(topic)).toEqual(expectedContext(open, v3, [{ resource: observation("o2") }]));
  });
});

describe("GET current context with content (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html)", () => {
  it("after open: exactly one content entry, an empty collection Bundle", async () => {
    const topic = uniqueTopic("get-empty");
    const { client } = await subscriber(topic, DR_EVENTS);
    const open = reportOpen(topic);
    const v1 = await openAndVersion(client, 1, open);
    expect(await currentContext(topic)).toEqual(expectedContext(open, v1, []));
  });

  it("after an update: context entries exactly as opened, the updated report copy and PUT fullUrls in the Bundle, no request on entries", async () => {
    const topic = uniqueTopic("get-content");
    const { client } = await subscriber(topic, DR_EVENTS);
    const open = reportOpen(topic);
    const v1 = await openAndVersion(client, 1, open);
    const updatedReport = { ...(open.event.context[0] as { resource: Resource }).resource, status: "preliminary" };
    await accepted(contentUpdate(topic, "DiagnosticReport/r1", v1, [
      putEntry(updatedReport),
      { fullUrl: "Observation/o1", request: { method: "PUT", url: "Observation/o1" }, resource: observation("o1") },
    ]));
    const v2 = (await client.frame(2)).event["context.versionId"] as string;

    const got = await currentContext(topic);
    expect(got).toEqual(expectedContext(open, v2, [
      { resource: updatedReport },
      { fullUrl: "Observation/o1", resource: observation("o1") },
    ]));
    const context = got.context as { key: string; resource: { status?: string; entry?: Record<string, unknown>[] } }[];
    expect(context.filter((e) => e.key === "content")).toHaveLength(1);
    expect(context[0]!.resource.status).toBe("unknown"); // the open-time report is unchanged
    for (const entry of context.at(-1)!.resource.entry!) expect(Object.keys(entry).filter((k) => k !== "fullUrl" && k !== "resource")).toEqual([]);
  });

  it("a PUT of a resource already in the content replaces it", async () => {
    const topic = uniqueTopic("replace");
    const { client } = await subscriber(topic, DR_EVENTS);
    const open = reportOpen(topic);
    const v1 = await openAndVersion(client, 1, open);
    await accepted(contentUpdate(topic, "DiagnosticReport/r1", v1, [putEntry(observation("o1"))]));
    const v2 = (await client.frame(2)).event["context.versionId"] as string;
    await accepted(contentUpdate(topic, "DiagnosticReport/r1", v2, [putEntry(observation("o1", "p1", { status: "final" }))]));
    const v3 = (await client.frame(3)).event["context.versionId"] as string;
    expect(await currentContext(topic)).toEqual(expectedContext(open, v3, [{ resource: observation("o1", "p1", { status: "final" }) }]));
  });
});

describe("DiagnosticReport-select (spec note A16): forwarded unchanged, version unchanged", () => {
  const sel = (reference: string) => ({ key: "select", reference: { reference } });
  const encodings: [string, unknown[]][] = [
    ["repeated select keys", [sel("Observation/o1"), sel("ImagingStudy/s1")]],
    ["one select key with an array", [{ key: "select", reference: [{ reference: "Observation/o1" }, { reference: "ImagingStudy/s1" }] }]],
    ["an empty array", [{ key: "select", reference: [] }]],
    ["no select key", []],
  ];

  it.each(encodings)("%s", async (_label, selectEntries) => {
    const topic = uniqueTopic("select");
    const { client } = await subscriber(topic, DR_EVENTS);
    const open = reportOpen(topic);
    const v1 = await openAndVersion(client, 1, open);
    const before = await currentContext(topic);

    const select = event(topic, "DiagnosticReport-select", [
      { key: "report", reference: { reference: "DiagnosticReport/r1" } },
      { key: "patient", reference: { reference: "Patient/p1" } },
      ...selectEntries,
    ]);
    expect((await publish(select)).status).toBe(202);
    expect(await client.frame(2)).toEqual(select);
    expect(await currentContext(topic)).toEqual(before);

    // The version is still v1: an update against it applies.
    await accepted(contentUpdate(topic, "DiagnosticReport/r1", v1, [putEntry(observation("o1"))]));
    expect((await client.frame(3)).event["context.priorVersionId"]).toBe(v1);
  });

  it("is not replayed to a later subscriber (only opens are context)", async () => {
    const topic = uniqueTopic("select-replay");
    const { client } = await subscriber(topic, DR_EVENTS);
    const open = reportOpen(topic);
    const v1 = await openAndVersion(client, 1, open);
    await accepted(event(topic, "DiagnosticReport-select", [{ key: "report", reference: { reference: "DiagnosticReport/r1" } }, sel("Observation/o1")]));
    await client.frame(2);
    const { client: late } = await subscriber(topic, DR_EVENTS, {}, 1);
    expect(late.frames[1]).toEqual(versioned(open, v1));
    await late.quiet(2);
  });
});

describe("multi-tab: content belongs to its anchor (fhircast.hl7.org/STU3/4-2-2-multitab-considerations.html, spec note A23)", () => {
  it("switching away and back keeps the content with a new version; a close discards it", async () => {
    const topic = uniqueTopic("tabs");
    const { client } = await subscriber(topic, DR_EVENTS);
    // Each open is a new event (new id), as a tab switch is.
    const openR1 = () => reportOpen(topic, "r1", "p1");
    const openR2 = () => reportOpen(topic, "r2", "p2");
    const r1v1 = await openAndVersion(client, 1, openR1());
    await accepted(contentUpdate(topic, "DiagnosticReport/r1", r1v1, [putEntry(observation("o1"))]));
    const r1v2 = (await client.frame(2)).event["context.versionId"] as string;

    // Switch to r2: its own (empty) content.
    const r2v1 = await openAndVersion(client, 3, openR2());
    expect(await currentContext(topic)).toEqual(expectedContext(openR2(), r2v1, []));

    // Back to r1: the content is kept, under a new version.
    const r1v3 = await openAndVersion(client, 4, openR1());
    expect(new Set([r1v1, r1v2, r2v1, r1v3]).size).toBe(4);
    expect(await currentContext(topic)).toEqual(expectedContext(openR1(), r1v3, [{ resource: observation("o1") }]));
    expect((await refusal(await publish(contentUpdate(topic, "DiagnosticReport/r1", r1v2, [putEntry(observation("o2"))])))).status).toBe(409);

    // Close r1: no current context, and its content is gone.
    await accepted(reportClose(topic, "r1", "p1"));
    await client.frame(5);
    expect(await currentContext(topic)).toEqual({ "context.type": "", context: [] });
    const closedUpdate = await refusal(await publish(contentUpdate(topic, "DiagnosticReport/r1", r1v3, [putEntry(observation("o2"))])));
    expect(closedUpdate).toMatchObject({ status: 409, code: "conflict", diagnostics: "DiagnosticReport/r1 is not open in this topic; open it before updating its content" });

    // Re-open r1: empty content, yet another version.
    const r1v4 = await openAndVersion(client, 6, openR1());
    expect(r1v4).not.toBe(r1v3);
    expect(await currentContext(topic)).toEqual(expectedContext(openR1(), r1v4, []));

    // r2 kept its context throughout: switching to it shows its (empty) content.
    const r2v2 = await openAndVersion(client, 7, openR2());
    expect(await currentContext(topic)).toEqual(expectedContext(openR2(), r2v2, []));
    await client.quiet(8);
  });

  it("an update to an open but not current anchor applies in its scope and leaves the current context alone (fhircast.hl7.org/STU3/2-10-ContentSharing.html)", async () => {
    const wk = await (await hubFetch("/api/hub/.well-known/fhircast-configuration")).json() as { capabilities: Record<string, boolean> };
    expect(wk.capabilities.supportsNonCurrentContextUpdates).toBe(true);

    const topic = uniqueTopic("noncurrent");
    const { client } = await subscriber(topic, DR_EVENTS);
    const openR1 = () => reportOpen(topic, "r1", "p1");
    const openR2 = () => reportOpen(topic, "r2", "p2");
    const r1v1 = await openAndVersion(client, 1, openR1());
    const r2v1 = await openAndVersion(client, 2, openR2());
    const current = await currentContext(topic);
    expect(current).toEqual(expectedContext(openR2(), r2v1, []));

    // r2's version does not apply to r1: versions are per anchor.
    expect((await refusal(await publish(contentUpdate(topic, "DiagnosticReport/r1", r2v1, [putEntry(observation("o1"))])))).status).toBe(409);

    const upd = contentUpdate(topic, "DiagnosticReport/r1", r1v1, [putEntry(observation("o1"))]);
    expect((await publish(upd)).status).toBe(202);
    const b = await client.frame(3);
    const r1v2 = b.event["context.versionId"] as string;
    expect(b).toEqual(broadcastOf(upd, r1v2));
    expect(await currentContext(topic)).toEqual(current);

    // r1's scope tracked its own version.
    await accepted(contentUpdate(topic, "DiagnosticReport/r1", r1v2, [putEntry(observation("o2"))]));
    await client.frame(4);
    expect(await currentContext(topic)).toEqual(current);

    // Switching to r1 shows both updates applied.
    const r1v4 = await openAndVersion(client, 5, openR1());
    expect(await currentContext(topic)).toEqual(expectedContext(openR1(), r1v4, [{ resource: observation("o1") }, { resource: observation("o2") }]));
  });

  it("an update for an anchor that is not open → 409, nothing broadcast", async () => {
    const topic = uniqueTopic("notopen");
    const { client } = await subscriber(topic, DR_EVENTS);
    const open = reportOpen(topic, "r1");
    const v1 = await openAndVersion(client, 1, open);
    const res = await refusal(await publish(contentUpdate(topic, "DiagnosticReport/never-opened", v1, [putEntry(observation("o1"))])));
    expect(res).toEqual({
      status: 409,
      contentType: "application/fhir+json; charset=utf-8",
      code: "conflict",
      diagnostics: "DiagnosticReport/never-opened is not open in this topic; open it before updating its content",
    });
    expect(await currentContext(topic)).toEqual(expectedContext(open, v1, []));
    await client.quiet(2);
  });

  it("an update on a topic that has never been used → 409", async () => {
    const topic = uniqueTopic("fresh");
    const res = await refusal(await publish(contentUpdate(topic, "DiagnosticReport/r1", "v1", [putEntry(observation("o1"))])));
    expect([res.status, res.code]).toEqual([409, "conflict"]);
    expect(await currentContext(topic)).toEqual({ "context.type": "", context: [] });
  });
});

describe("generic X-update for other anchors", () => {
  it("Patient-update applies to an open Patient's content", async () => {
    const topic = uniqueTopic("patient-update");
    const { client } = await subscriber(topic, "Patient-open,Patient-update");
    const open = event(topic, "Patient-open", [{ key: "patient", resource: patient("p1") }]);
    const v1 = await openAndVersion(client, 1, open);
    const upd = contentUpdate(topic, "Patient/p1", v1, [putEntry(observation("o1"))]);
    expect((await publish(upd)).status).toBe(202);
    const b = await client.frame(2);
    expect(b).toEqual(broadcastOf(upd, b.event["context.versionId"]));
    expect(await currentContext(topic)).toEqual(expectedContext(open, b.event["context.versionId"], [{ resource: observation("o1") }]));
  });
});

describe("concurrency: updates racing on one version", () => {
  it("exactly one of 50 concurrent updates at the same version is accepted; the rest get 409", async () => {
    const topic = uniqueTopic("race");
    const { client } = await subscriber(topic, DR_EVENTS);
    const open = reportOpen(topic);
    const v1 = await openAndVersion(client, 1, open);
    const updates = Array.from({ length: 50 }, (_, i) => contentUpdate(topic, "DiagnosticReport/r1", v1, [putEntry(observation(`o${i}`))]));
    const statuses = await Promise.all(updates.map(async (u) => (await publish(u)).status));
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(49);
    const winner = statuses.indexOf(202);
    const b = await client.frame(2);
    expect(b).toEqual(broadcastOf(updates[winner]!, b.event["context.versionId"]));
    expect(await currentContext(topic)).toEqual(expectedContext(open, b.event["context.versionId"], [{ resource: observation(`o${winner}`) }]));
    await client.quiet(3);
  });
});

describe("content and versions survive eviction of the topic object", () => {
  it("GET, version checks, replay and a hibernated subscriber all continue after evictDurableObject", async () => {
    const topic = uniqueTopic("evict");
    const { client } = await subscriber(topic, DR_EVENTS);
    const open = reportOpen(topic);
    const v1 = await openAndVersion(client, 1, open);
    await accepted(contentUpdate(topic, "DiagnosticReport/r1", v1, [putEntry(observation("o1"))]));
    const v2 = (await client.frame(2)).event["context.versionId"] as string;
    const before = await currentContext(topic);
    expect(before).toEqual(expectedContext(open, v2, [{ resource: observation("o1") }]));

    await evictDurableObject(topicStub(topic));

    expect(await currentContext(topic)).toEqual(before);
    expect((await refusal(await publish(contentUpdate(topic, "DiagnosticReport/r1", v1, [putEntry(observation("o2"))])))).status).toBe(409);
    const { client: late } = await subscriber(topic, DR_EVENTS, {}, 1);
    expect(late.frames[1]).toEqual(versioned(open, v2));

    const upd = contentUpdate(topic, "DiagnosticReport/r1", v2, [putEntry(observation("o2"))]);
    expect((await publish(upd)).status).toBe(202);
    const b = await client.frame(3);
    expect(b).toEqual(broadcastOf(upd, b.event["context.versionId"]));
    expect(await late.frame(2)).toEqual(b);
    expect(await currentContext(topic)).toEqual(expectedContext(open, b.event["context.versionId"], [{ resource: observation("o1") }, { resource: observation("o2") }]));
  });
});

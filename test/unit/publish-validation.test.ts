// validatePublish (fhircast.hl7.org/STU3/2-6-SendEventNotification.html, fhircast.hl7.org/STU3/2-3-Events.html, fhircast.hl7.org/STU3/3_Events.html, fhircast.hl7.org/STU3/2-10-ContentSharing.html): every stateless check on a publish body.
// Each refusal is a Result with the status and OperationOutcome code the Worker answers with.
import { describe, expect, it } from "vitest";
import { EventCatalog } from "../../src/fhircast/catalog";
import { validatePublish } from "../../src/fhircast/publish";

const catalog = new EventCatalog(["org.example.patient_transmogrify"]);
const TOPIC = "fdb2f928-5546-4f52-87a0-0648e9ded065";
const TS = "2019-09-10T14:58:45.988Z";
const ID = "cc4d016a-f516-4ce7-8f1a-e0baf0beb94d";

const patient = { resourceType: "Patient", id: "503824b8", identifier: [{ system: "urn:oid:1.2.3", value: "185444" }] };
const report = { resourceType: "DiagnosticReport", id: "2402d3bd", status: "unknown", subject: { reference: "Patient/503824b8" } };
const study = { resourceType: "ImagingStudy", id: "7e9deb91", status: "available", subject: { reference: "Patient/503824b8" } };
const encounter = { resourceType: "Encounter", id: "8cc652ba", status: "in-progress", subject: { reference: "Patient/503824b8" } };

function body(name: string, context: unknown[], extra: Record<string, unknown> = {}) {
  return { timestamp: TS, id: ID, event: { "hub.topic": TOPIC, "hub.event": name, context, ...extra } };
}
const reportRef = { key: "report", reference: { reference: "DiagnosticReport/2402d3bd" } };
const patientRef = { key: "patient", reference: { reference: "Patient/503824b8" } };
const emptyUpdates = { key: "updates", resource: { resourceType: "Bundle", id: "b1", type: "transaction", entry: [] } };

const failure = (status: number, code: string, detail: string) => ({ ok: false, status, code, detail });

describe("envelope (fhircast.hl7.org/STU3/2-6-SendEventNotification.html shape)", () => {
  it.each<[string, unknown, string]>([
    ["null body", null, "body: Invalid input: expected object, received null"],
    ["array body", [], "body: Invalid input: expected object, received array"],
    ["missing timestamp", { id: ID, event: body("Patient-open", []).event }, "timestamp: Invalid input: expected string, received undefined"],
    ["empty timestamp", { timestamp: "", id: ID, event: body("Patient-open", []).event }, "timestamp: timestamp must be a non-empty string"],
    ["missing id", { timestamp: TS, event: body("Patient-open", []).event }, "id: Invalid input: expected string, received undefined"],
    ["empty id", { timestamp: TS, id: "", event: body("Patient-open", []).event }, "id: id must be a non-empty string"],
    ["numeric id", { timestamp: TS, id: 7, event: body("Patient-open", []).event }, "id: Invalid input: expected string, received number"],
    ["missing event", { timestamp: TS, id: ID }, "event: Invalid input: expected object, received undefined"],
    ["empty hub.topic", body("Patient-open", [], { "hub.topic": "" }), "event.hub.topic: event.hub.topic must be a non-empty string"],
    ["empty hub.event", body("", []), "event.hub.event: event.hub.event must be a non-empty string"],
    ["context not an array", body("Patient-open", {} as unknown as unknown[]), "event.context: event.context must be an array"],
    ["numeric context.versionId", body("DiagnosticReport-update", [], { "context.versionId": 1 }), "event.context.versionId: Invalid input: expected string, received number"],
  ])("%s → 400 invalid naming the field", (_label, input, detail) => {
    expect(validatePublish(input, catalog)).toEqual(failure(400, "invalid", detail));
  });

  it("refuses an over-long hub.topic (512 characters max)", () => {
    const r = validatePublish(body("Patient-open", [{ key: "patient", resource: patient }], { "hub.topic": "x".repeat(513) }), catalog);
    expect(r.ok).toBe(false);
    expect(r).toMatchObject({ status: 400, code: "invalid" });
    expect((r as { detail: string }).detail.startsWith("event.hub.topic: ")).toBe(true);
  });
});

describe("event name (fhircast.hl7.org/STU3/2-3-Events.html)", () => {
  it("an unknown event → 400 not-supported, pointing at eventsSupported", () => {
    expect(validatePublish(body("Patient-opened", []), catalog)).toEqual(failure(400, "not-supported",
      `event.hub.event "Patient-opened" is not an event this hub supports (see eventsSupported in .well-known/fhircast-configuration)`));
  });

  it("matches case-insensitively and distributes the canonical spelling", () => {
    const r = validatePublish(body("patient-OPEN", [{ key: "patient", resource: patient }]), catalog);
    expect(r).toEqual({
      ok: true,
      value: {
        notification: { timestamp: TS, id: ID, event: { "hub.topic": TOPIC, "hub.event": "Patient-open", context: [{ key: "patient", resource: patient }] } },
        eventName: "Patient-open",
        role: "open",
        anchor: "Patient/503824b8",
        anchorType: "Patient",
        versionId: undefined,
        ops: undefined,
      },
    });
  });
});

describe("path topic (fhircast.hl7.org/STU3/2-6-SendEventNotification.html, spec note A1)", () => {
  const ev = body("Patient-open", [{ key: "patient", resource: patient }]);
  it("accepts a URL topic equal to event.hub.topic", () => {
    expect(validatePublish(ev, catalog, TOPIC).ok).toBe(true);
  });
  it("refuses a URL topic that differs from event.hub.topic", () => {
    expect(validatePublish(ev, catalog, "other-topic")).toEqual(failure(400, "invalid", "the topic in the URL does not equal event.hub.topic"));
  });
  it("compares exactly (case matters, no trimming)", () => {
    expect(validatePublish(ev, catalog, TOPIC.toUpperCase()).ok).toBe(false);
    expect(validatePublish(ev, catalog, `${TOPIC} `).ok).toBe(false);
  });
});

describe("context keys (fhircast.hl7.org/STU3/2-3-Events.html, fhircast.hl7.org/STU3/3_Events.html)", () => {
  it("an entry that is not an object with a string key → 400", () => {
    expect(validatePublish(body("Patient-open", ["patient"]), catalog)).toEqual(
      failure(400, "invalid", `event.context[0] must be an object with a string "key"`));
    expect(validatePublish(body("Patient-open", [{ key: 1, resource: patient }]), catalog)).toEqual(
      failure(400, "invalid", `event.context[0] must be an object with a string "key"`));
  });

  it("a required key that is missing → 400 required", () => {
    expect(validatePublish(body("Patient-open", []), catalog)).toEqual(
      failure(400, "required", `event.context: Patient-open requires key "patient"`));
    expect(validatePublish(body("Encounter-open", [{ key: "encounter", resource: encounter }]), catalog)).toEqual(
      failure(400, "required", `event.context: Encounter-open requires key "patient"`));
    expect(validatePublish(body("DiagnosticReport-update", [reportRef], { "context.versionId": "v1" }), catalog)).toEqual(
      failure(400, "required", `event.context: DiagnosticReport-update requires key "updates"`));
    expect(validatePublish(body("SyncError", []), catalog)).toEqual(
      failure(400, "required", `event.context: SyncError requires key "operationoutcome"`));
  });

  it("a 1..1 key given twice → 400 naming the cardinality", () => {
    expect(validatePublish(body("Patient-open", [{ key: "patient", resource: patient }, { key: "patient", resource: patient }]), catalog)).toEqual(
      failure(400, "invalid", `event.context: Patient-open allows key "patient" at most 1 time(s), got 2`));
  });

  it("a 0..* key may repeat (DiagnosticReport-open study)", () => {
    const r = validatePublish(body("DiagnosticReport-open", [
      { key: "report", resource: report },
      { key: "study", resource: study },
      { key: "study", resource: { ...study, id: "second" } },
      { key: "patient", resource: patient },
    ]), catalog);
    expect(r.ok).toBe(true);
  });

  it("optional keys may be left out and given (ImagingStudy-open encounter, patient)", () => {
    expect(validatePublish(body("ImagingStudy-open", [{ key: "study", resource: study }]), catalog).ok).toBe(true);
    expect(validatePublish(body("ImagingStudy-open", [
      { key: "study", resource: study }, { key: "encounter", resource: encounter }, { key: "patient", resource: patient },
    ]), catalog).ok).toBe(true);
  });

  it("a key the event does not define → 400 listing the allowed keys", () => {
    expect(validatePublish(body("Patient-open", [{ key: "patient", resource: patient }, { key: "encounter", resource: encounter }]), catalog)).toEqual(
      failure(400, "invalid", `event.context[1]: key "encounter" is not defined for Patient-open (allowed: patient, extension)`));
    expect(validatePublish(body("Home-open", [{ key: "patient", resource: patient }]), catalog)).toEqual(
      failure(400, "invalid", `event.context[0]: key "patient" is not defined for Home-open (allowed: extension)`));
  });

  it("keys are case-sensitive (fhircast.hl7.org/STU3/2-3-Events.html)", () => {
    expect(validatePublish(body("Patient-open", [{ key: "Patient", resource: patient }]), catalog)).toEqual(
      failure(400, "invalid", `event.context[0]: key "Patient" is not defined for Patient-open (allowed: patient, extension)`));
  });

  it("passes the reserved extension key through unchanged, any number of times (fhircast.hl7.org/STU3/2-8-Extensions.html)", () => {
    const context = [
      { key: "patient", resource: patient },
      { key: "extension", data: { "user-timezone": "+1:00" } },
      { key: "extension", data: { other: [1, 2] } },
    ];
    const r = validatePublish(body("Patient-open", context), catalog);
    expect(r.ok && r.value.notification.event.context).toEqual(context);
    expect(validatePublish(body("Home-open", [{ key: "extension", data: {} }]), catalog).ok).toBe(true);
  });

  it("a proprietary event accepts any context and passes it through", () => {
    const context = [{ key: "anything", valueString: "x" }, { key: "Patient", resource: { resourceType: "Whatever" } }];
    const r = validatePublish(body("ORG.example.patient_transmogrify", context), catalog);
    expect(r).toEqual({
      ok: true,
      value: {
        notification: { timestamp: TS, id: ID, event: { "hub.topic": TOPIC, "hub.event": "org.example.patient_transmogrify", context } },
        eventName: "org.example.patient_transmogrify",
        role: "infrastructure",
        anchor: undefined,
        anchorType: undefined,
        versionId: undefined,
        ops: undefined,
      },
    });
  });
});

describe("resource vs reference and resourceType (fhircast.hl7.org/STU3/2-3-Events.html, fhircast.hl7.org/STU3/3_Events.html)", () => {
  it("a resource key given as a reference → 400", () => {
    expect(validatePublish(body("Patient-open", [{ key: "patient", reference: { reference: "Patient/503824b8" } }]), catalog)).toEqual(
      failure(400, "invalid", `event.context[0] ("patient") must carry a "resource" object`));
  });

  it("a resource of the wrong type, or without resourceType → 400 naming both", () => {
    expect(validatePublish(body("Patient-open", [{ key: "patient", resource: encounter }]), catalog)).toEqual(
      failure(400, "invalid", `event.context[0] ("patient"): resource.resourceType must be "Patient", got "Encounter"`));
    expect(validatePublish(body("Patient-open", [{ key: "patient", resource: { id: "x" } }]), catalog)).toEqual(
      failure(400, "invalid", `event.context[0] ("patient"): resource.resourceType must be "Patient", got null`));
  });

  it("a reference key given as a resource → 400", () => {
    expect(validatePublish(body("DiagnosticReport-update", [{ key: "report", resource: report }, emptyUpdates], { "context.versionId": "v1" }), catalog)).toEqual(
      failure(400, "invalid", `event.context[0].reference must be a FHIR Reference object ("report")`));
  });

  it("a reference to the wrong type → 400", () => {
    expect(validatePublish(body("DiagnosticReport-update", [{ key: "report", reference: { reference: "Patient/503824b8" } }, emptyUpdates], { "context.versionId": "v1" }), catalog)).toEqual(
      failure(400, "invalid", `event.context[0].reference.reference must refer to a DiagnosticReport ("DiagnosticReport/<id>") ("report")`));
    expect(validatePublish(body("DiagnosticReport-update", [reportRef, { key: "patient", reference: { reference: "Group/1" } }, emptyUpdates], { "context.versionId": "v1" }), catalog)).toEqual(
      failure(400, "invalid", `event.context[1].reference.reference must refer to a Patient ("Patient/<id>") ("patient")`));
  });

  it("accepts relative, versioned and absolute references and takes the anchor id from them", () => {
    for (const reference of [
      "DiagnosticReport/2402d3bd",
      "DiagnosticReport/2402d3bd/_history/3",
      "https://fhir.example.org/r4/DiagnosticReport/2402d3bd",
    ]) {
      const r = validatePublish(body("DiagnosticReport-update", [{ key: "report", reference: { reference } }, emptyUpdates], { "context.versionId": "v1" }), catalog);
      expect(r.ok && r.value.anchor).toBe("DiagnosticReport/2402d3bd");
    }
  });

  it("an anchor reference without a usable Type/id → 400 required", () => {
    expect(validatePublish(body("DiagnosticReport-update", [{ key: "report", reference: { identifier: { value: "acc-1" } } }, emptyUpdates], { "context.versionId": "v1" }), catalog)).toEqual(
      failure(400, "required", `event.context "report": reference must be "DiagnosticReport/<id>"`));
  });

  it("a non-string Reference.reference → 400", () => {
    expect(validatePublish(body("DiagnosticReport-update", [reportRef, { key: "patient", reference: { reference: 42 } }, emptyUpdates], { "context.versionId": "v1" }), catalog)).toEqual(
      failure(400, "invalid", `event.context[1].reference.reference must be a string ("patient")`));
  });
});

describe("anchor id (fhircast.hl7.org/STU3/3_Events.html: the close pairs with the open by id)", () => {
  it.each([
    ["Patient-open", undefined],
    ["Patient-open", ""],
    ["Patient-open", "   "],
    ["Patient-close", undefined],
    ["Patient-open", 12],
  ])("%s with id %j → 400 required", (name, id) => {
    const { id: _drop, ...rest } = patient;
    const resource = id === undefined ? rest : { ...rest, id };
    expect(validatePublish(body(name, [{ key: "patient", resource }]), catalog)).toEqual(
      failure(400, "required", `event.context "patient": the Patient resource needs an "id" (the hub pairs close with open by it)`));
  });

  it("the anchor of each open is Type/id of its anchor key, not of other resources", () => {
    const r = validatePublish(body("DiagnosticReport-open", [{ key: "patient", resource: patient }, { key: "report", resource: report }]), catalog);
    expect(r.ok && [r.value.anchor, r.value.anchorType, r.value.role]).toEqual(["DiagnosticReport/2402d3bd", "DiagnosticReport", "open"]);
    const s = validatePublish(body("ImagingStudy-close", [{ key: "study", resource: study }]), catalog);
    expect(s.ok && [s.value.anchor, s.value.role]).toEqual(["ImagingStudy/7e9deb91", "close"]);
  });

  it("events without an anchor have none", () => {
    const r = validatePublish(body("Home-open", []), catalog);
    expect(r.ok && [r.value.anchor, r.value.role]).toEqual([undefined, "home"]);
  });
});

describe("versionId (fhircast.hl7.org/STU3/2-10-ContentSharing.html, spec note A3)", () => {
  const update = (extra: Record<string, unknown>) => body("DiagnosticReport-update", [reportRef, patientRef, emptyUpdates], extra);

  it("an update without a version → 400 required", () => {
    expect(validatePublish(update({}), catalog)).toEqual(
      failure(400, "required", `event["context.versionId"] is required for DiagnosticReport-update (the version the update is based on)`));
    expect(validatePublish(update({ "context.versionId": "" }), catalog)).toEqual(
      failure(400, "required", `event["context.versionId"] is required for DiagnosticReport-update (the version the update is based on)`));
  });

  it("takes the dotted form", () => {
    const r = validatePublish(update({ "context.versionId": "v1" }), catalog);
    expect(r.ok && r.value.versionId).toBe("v1");
  });

  it("accepts the table's plain versionId as an alias of context.versionId", () => {
    const r = validatePublish(update({ versionId: "v1" }), catalog);
    expect(r.ok && r.value.versionId).toBe("v1");
  });

  it("prefers the dotted form when both are given", () => {
    const r = validatePublish(update({ "context.versionId": "dotted", versionId: "plain" }), catalog);
    expect(r.ok && r.value.versionId).toBe("dotted");
  });

  it("strips client-sent versionId, context.versionId and context.priorVersionId from the notification (the hub sets them)", () => {
    const r = validatePublish(update({ "context.versionId": "v1", versionId: "v0", "context.priorVersionId": "v-1", "x-vendor": "kept" }), catalog);
    expect(r.ok && r.value.notification).toEqual({
      timestamp: TS,
      id: ID,
      event: { "hub.topic": TOPIC, "hub.event": "DiagnosticReport-update", context: [reportRef, patientRef, emptyUpdates], "x-vendor": "kept" },
    });
    const open = validatePublish(body("Patient-open", [{ key: "patient", resource: patient }], { "context.versionId": "client" }), catalog);
    expect(open.ok && open.value.notification.event).toEqual({ "hub.topic": TOPIC, "hub.event": "Patient-open", context: [{ key: "patient", resource: patient }] });
  });

  it("an update yields its Bundle's operations", () => {
    const updates = {
      key: "updates",
      resource: {
        resourceType: "Bundle", id: "b1", type: "transaction",
        entry: [
          { request: { method: "PUT" }, resource: { resourceType: "Observation", id: "o1", status: "preliminary" } },
          { fullUrl: "Observation/o2", request: { method: "DELETE" } },
        ],
      },
    };
    const r = validatePublish(body("DiagnosticReport-update", [reportRef, updates], { "context.versionId": "v1" }), catalog);
    expect(r.ok && r.value.ops).toEqual([
      { method: "PUT", key: "Observation/o1", resource: { resourceType: "Observation", id: "o1", status: "preliminary" } },
      { method: "DELETE", key: "Observation/o2" },
    ]);
  });

  it("an update's Bundle refusal is the publish's refusal", () => {
    const updates = { key: "updates", resource: { resourceType: "Bundle", type: "transaction", entry: [{ request: { method: "POST" }, resource: { resourceType: "Observation" } }] } };
    expect(validatePublish(body("DiagnosticReport-update", [reportRef, updates], { "context.versionId": "v1" }), catalog)).toEqual(
      failure(422, "not-supported", `updates.entry[0]: POST is not allowed in content updates (the content model cannot assign ids); use PUT with an id`));
  });

  it("more than one updates Bundle → 400 (exactly one Bundle, SHALL)", () => {
    expect(validatePublish(body("DiagnosticReport-update", [reportRef, emptyUpdates, emptyUpdates], { "context.versionId": "v1" }), catalog)).toEqual(
      failure(400, "invalid", `event.context: DiagnosticReport-update allows key "updates" at most 1 time(s), got 2`));
  });

  it("updates must be a Bundle resource", () => {
    expect(validatePublish(body("DiagnosticReport-update", [reportRef, { key: "updates", resource: { resourceType: "Parameters" } }], { "context.versionId": "v1" }), catalog)).toEqual(
      failure(400, "invalid", `event.context[1] ("updates"): resource.resourceType must be "Bundle", got "Parameters"`));
  });
});

describe("DiagnosticReport-select encodings (spec note A16): all accepted and forwarded unchanged", () => {
  const sel = (reference: string) => ({ key: "select", reference: { reference } });
  it.each<[string, unknown[]]>([
    ["repeated select keys, one Reference each (STU3 example)", [reportRef, patientRef, sel("Observation/40afe766"), sel("Observation/e25ce4c2")]],
    ["one select key with an array of References (pre-2025 form)", [reportRef, patientRef, { key: "select", reference: [{ reference: "Observation/40afe766" }, { reference: "ImagingStudy/7e9deb91" }] }]],
    ["one select key with an empty array", [reportRef, { key: "select", reference: [] }]],
    ["no select key at all", [reportRef, patientRef]],
    ["a select of any resource type", [reportRef, sel("https://fhir.example.org/ImagingStudy/7e9deb91")]],
  ])("%s", (_label, context) => {
    const r = validatePublish(body("DiagnosticReport-select", context), catalog);
    expect(r).toEqual({
      ok: true,
      value: {
        notification: { timestamp: TS, id: ID, event: { "hub.topic": TOPIC, "hub.event": "DiagnosticReport-select", context } },
        eventName: "DiagnosticReport-select",
        role: "select",
        anchor: "DiagnosticReport/2402d3bd",
        anchorType: "DiagnosticReport",
        versionId: undefined,
        ops: undefined,
      },
    });
  });

  it("refuses an array entry that is not a Reference", () => {
    expect(validatePublish(body("DiagnosticReport-select", [reportRef, { key: "select", reference: [{ reference: "Observation/1" }, "Observation/2"] }]), catalog)).toEqual(
      failure(400, "invalid", `event.context[1].reference must be a FHIR Reference object ("select")`));
  });

  it("accepts an array only under select: an array under report → 400", () => {
    expect(validatePublish(body("DiagnosticReport-select", [{ key: "report", reference: [{ reference: "DiagnosticReport/2402d3bd" }] }]), catalog)).toEqual(
      failure(400, "invalid", `event.context[0].reference must be a FHIR Reference object ("report")`));
  });

  it("the select anchor is still required", () => {
    expect(validatePublish(body("DiagnosticReport-select", [sel("Observation/1")]), catalog)).toEqual(
      failure(400, "required", `event.context: DiagnosticReport-select requires key "report"`));
  });
});

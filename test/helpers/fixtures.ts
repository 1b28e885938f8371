// Event fixtures modeled on the spec's examples (https://fhircast.hl7.org/STU3/index.html), one set
// for every tier: the workers tests (through test/helpers/hub.ts), the e2e tests and their support
// (through test/helpers/server.ts), the benchmark's plain Node too. Plain data, no imports, so it
// runs in workerd and in Node alike.

export function patient(id: string) {
  return { resourceType: "Patient", id, identifier: [{ system: "urn:oid:2.16.840.1.113883.19.5", value: `mrn-${id}` }] };
}

/** An event body; `extra` members (e.g. "context.versionId") sit beside the required ones. */
export type EventBody = { "hub.topic": string; "hub.event": string; context: unknown[]; [extra: string]: unknown };

export function event(topic: string, name: string, context: unknown[], extra: Record<string, unknown> = {}): { timestamp: string; id: string; event: EventBody } {
  return {
    timestamp: new Date().toISOString(),
    id: crypto.randomUUID(),
    event: { "hub.topic": topic, "hub.event": name, context, ...extra },
  };
}

export function patientOpen(topic: string, id = "p1") {
  return event(topic, "Patient-open", [{ key: "patient", resource: patient(id) }]);
}
export function patientClose(topic: string, id = "p1") {
  return event(topic, "Patient-close", [{ key: "patient", resource: patient(id) }]);
}
export function encounterOpen(topic: string, encounterId = "e1", patientId = "p1") {
  return event(topic, "Encounter-open", [
    { key: "encounter", resource: { resourceType: "Encounter", id: encounterId, status: "in-progress", class: { code: "AMB" }, subject: { reference: `Patient/${patientId}` } } },
    { key: "patient", resource: patient(patientId) },
  ]);
}
export function encounterClose(topic: string, encounterId = "e1", patientId = "p1") {
  const e = encounterOpen(topic, encounterId, patientId);
  e.event["hub.event"] = "Encounter-close";
  return e;
}
export function homeOpen(topic: string) {
  return event(topic, "Home-open", []);
}
export function reportOpen(topic: string, reportId = "r1", patientId = "p1") {
  return event(topic, "DiagnosticReport-open", [
    { key: "report", resource: { resourceType: "DiagnosticReport", id: reportId, status: "unknown", subject: { reference: `Patient/${patientId}` } } },
    { key: "patient", resource: patient(patientId) },
  ]);
}
export function reportClose(topic: string, reportId = "r1", patientId = "p1") {
  const open = reportOpen(topic, reportId, patientId);
  return event(topic, "DiagnosticReport-close", open.event.context);
}

// ---- content sharing (fhircast.hl7.org/STU3/2-10-ContentSharing.html): update Bundles and select events ----------------------------------------

export type Resource = { resourceType: string; id: string; [k: string]: unknown };

export function observation(id: string, patientId = "p1", extra: Record<string, unknown> = {}): Resource {
  return {
    resourceType: "Observation",
    id,
    status: "preliminary",
    code: { coding: [{ system: "http://www.radlex.org", code: "RID49690", display: "simple cyst" }] },
    subject: { reference: `Patient/${patientId}` },
    ...extra,
  };
}

/** A PUT entry as in the spec examples: the resource identifies itself, no request.url. */
export const putEntry = (resource: Resource) => ({ request: { method: "PUT" }, resource });
/** A DELETE entry as in the spec examples: the target in a relative fullUrl, no request.url. */
export const deleteEntry = (fullUrl: string) => ({ fullUrl, request: { method: "DELETE" } });

/**
 * An `X-update` (fhircast.hl7.org/STU3/2-10-ContentSharing.html) based on `versionId`. `anchor` is the anchor's `Type/id`; the anchor key comes
 * from the event (report, study, encounter, patient).
 */
export function contentUpdate(
  topic: string,
  anchor: string,
  versionId: string,
  entries: unknown[],
  opts: { bundleId?: string; patientId?: string } = {},
) {
  const type = anchor.split("/")[0]!;
  const key = ({ DiagnosticReport: "report", ImagingStudy: "study", Encounter: "encounter", Patient: "patient" } as Record<string, string>)[type]!;
  const context: unknown[] = [{ key, reference: { reference: anchor } }];
  if (opts.patientId && type !== "Patient") context.push({ key: "patient", reference: { reference: `Patient/${opts.patientId}` } });
  context.push({ key: "updates", resource: { resourceType: "Bundle", id: opts.bundleId ?? crypto.randomUUID(), type: "transaction", entry: entries } });
  return event(topic, `${type}-update`, context, { "context.versionId": versionId });
}

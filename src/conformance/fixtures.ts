// Event bodies the kit publishes: minimal resources that satisfy the FHIRcast 3.0.0 open/close
// profiles (id, identifier, subject), built fresh for every check so that checks never collide.

export type Json = Record<string, any>;

/** A short random id with a readable prefix. */
export function uid(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 13)}`;
}

export function notification(topic: string, name: string, context: Json[], extra: Json = {}): Json {
  return {
    timestamp: new Date().toISOString(),
    id: crypto.randomUUID(),
    event: { "hub.topic": topic, "hub.event": name, context, ...extra },
  };
}

export function patient(id: string): Json {
  return {
    resourceType: "Patient",
    id,
    identifier: [{ system: "urn:oid:2.16.840.1.113883.19.5", value: `mrn-${id}` }],
    name: [{ family: "Conformance", given: ["Test"] }],
    gender: "unknown",
    birthDate: "1970-01-01",
  };
}

export function encounter(id: string, patientId: string): Json {
  return {
    resourceType: "Encounter",
    id,
    status: "in-progress",
    class: { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "AMB" },
    identifier: [{ system: "urn:oid:2.16.840.1.113883.19.6", value: `enc-${id}` }],
    subject: { reference: `Patient/${patientId}` },
  };
}

export function report(id: string, patientId: string, status = "preliminary"): Json {
  return {
    resourceType: "DiagnosticReport",
    id,
    status,
    code: { coding: [{ system: "http://loinc.org", code: "19005-8", display: "Radiology Imaging study" }] },
    subject: { reference: `Patient/${patientId}` },
    basedOn: [
      {
        type: "ServiceRequest",
        identifier: {
          type: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0203", code: "ACSN" }] },
          value: `acc-${id}`,
        },
      },
    ],
  };
}

export function observation(id: string, patientId: string, value: string): Json {
  return {
    resourceType: "Observation",
    id,
    status: "preliminary",
    code: { text: "conformance finding" },
    subject: { reference: `Patient/${patientId}` },
    valueString: value,
  };
}

export const patientOpen = (topic: string, pid: string): Json =>
  notification(topic, "Patient-open", [{ key: "patient", resource: patient(pid) }]);

export const patientClose = (topic: string, pid: string): Json =>
  notification(topic, "Patient-close", [{ key: "patient", resource: patient(pid) }]);

export const encounterOpen = (topic: string, eid: string, pid: string): Json =>
  notification(topic, "Encounter-open", [
    { key: "encounter", resource: encounter(eid, pid) },
    { key: "patient", resource: patient(pid) },
  ]);

export const reportOpen = (topic: string, rid: string, pid: string): Json =>
  notification(topic, "DiagnosticReport-open", [
    { key: "report", resource: report(rid, pid) },
    { key: "patient", resource: patient(pid) },
  ]);

export const reportClose = (topic: string, rid: string, pid: string): Json =>
  notification(topic, "DiagnosticReport-close", [
    { key: "report", resource: report(rid, pid) },
    { key: "patient", resource: patient(pid) },
  ]);

/** A DiagnosticReport-update based on `versionId`, with the given transaction entries. */
export function reportUpdate(topic: string, rid: string, pid: string, versionId: string, entries: Json[], bundleId = crypto.randomUUID()): Json {
  return notification(
    topic,
    "DiagnosticReport-update",
    [
      { key: "report", reference: { reference: `DiagnosticReport/${rid}` } },
      { key: "patient", reference: { reference: `Patient/${pid}` } },
      { key: "updates", resource: { resourceType: "Bundle", id: bundleId, type: "transaction", entry: entries } },
    ],
    { "context.versionId": versionId },
  );
}

export const put = (resource: Json): Json => ({
  fullUrl: `${resource.resourceType}/${resource.id}`,
  request: { method: "PUT", url: `${resource.resourceType}/${resource.id}` },
  resource,
});

export const del = (type: string, id: string): Json => ({
  fullUrl: `${type}/${id}`,
  request: { method: "DELETE", url: `${type}/${id}` },
});

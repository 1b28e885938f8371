// @ts-check
// Publish templates for every event of the hub's catalog, shaped by the catalog's key table (the one
// the hub validates with) and filled from the topic's open contexts: a close names the open anchor, an
// update carries the anchor's current context.versionId, an Encounter-open reuses the open patient.
// Plain browser module; `lib` is the subscriber client bundle (/fhircast-client.js).
/** @import { EventCatalog, EventSpec, FhirResource } from "../fhircast-client.js" */
/** @import { ContextEntry, EventBody, InspectView, Notification } from "../../fhircast/wire" */
/** @typedef {InspectView["contexts"][number]} OpenContext */

const short = () => crypto.randomUUID().slice(0, 8);

const PATIENT_SYSTEM = "urn:oid:2.16.840.1.113883.19.5";

function newPatient() {
  const id = `pat-${short()}`;
  return {
    resourceType: "Patient",
    id,
    identifier: [{ system: PATIENT_SYSTEM, value: `MRN-${id.slice(4).toUpperCase()}` }],
    name: [{ family: "Sandbox", given: ["Pat"] }],
  };
}

/** @param {FhirResource | undefined} patient */
const subject = (patient) => (patient?.id ? { subject: { reference: `Patient/${patient.id}` } } : {});

/**
 * A new resource of an anchor type (the anchor of an open event, or its companions).
 * @param {string} type
 * @param {FhirResource | undefined} patient
 * @param {Record<string, unknown>} [extra]
 * @returns {FhirResource}
 */
function newResource(type, patient, extra = {}) {
  switch (type) {
    case "Patient":
      return newPatient();
    case "Encounter":
      return {
        resourceType: "Encounter",
        id: `enc-${short()}`,
        status: "in-progress",
        class: { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "AMB" },
        ...subject(patient),
      };
    case "ImagingStudy":
      return {
        resourceType: "ImagingStudy",
        id: `study-${short()}`,
        status: "available",
        identifier: [{ system: "urn:dicom:uid", value: `urn:oid:2.25.${BigInt(`0x${crypto.randomUUID().replaceAll("-", "")}`)}` }],
        ...subject(patient),
      };
    case "DiagnosticReport":
      return {
        resourceType: "DiagnosticReport",
        id: `report-${short()}`,
        status: "preliminary",
        code: { coding: [{ system: "http://loinc.org", code: "18748-4", display: "Diagnostic imaging study" }] },
        ...subject(patient),
        ...extra,
      };
    default:
      return { resourceType: type, id: `${type.toLowerCase()}-${short()}` };
  }
}

/**
 * The most recently opened context of an anchor type, from the inspector's snapshot.
 * @param {InspectView | null} view
 * @param {string} type
 */
function openOf(view, type) {
  return view?.contexts?.find((c) => c.type === type);
}

/**
 * The value of a key in an open context's event (the resource it was opened with).
 * @param {OpenContext | undefined} ctx
 * @param {string} key
 * @returns {ContextEntry | undefined}
 */
function entryOf(ctx, key) {
  return ctx?.event?.event?.context?.find((e) => e.key === key);
}

/**
 * The resource of a key in an open context's event.
 * @param {OpenContext | undefined} ctx
 * @param {string} key
 */
function resourceOf(ctx, key) {
  return /** @type {FhirResource | undefined} */ (entryOf(ctx, key)?.resource);
}

/**
 * The patient of the topic: the open Patient context's, else the one of the newest open context.
 * @param {InspectView | null} view
 */
function currentPatient(view) {
  const p = resourceOf(openOf(view, "Patient"), "patient");
  if (p) return p;
  for (const c of view?.contexts ?? []) {
    const q = resourceOf(c, "patient");
    if (q) return q;
  }
  return undefined;
}

/**
 * The anchor of an open, close, update or select event: the catalog gives each of them an anchor
 * type and key.
 * @param {EventSpec} spec
 */
function anchorOfSpec(spec) {
  const { anchorType: type, anchorKey: key } = spec;
  if (!type || !key) throw new Error(`${spec.name} has no anchor in the catalog`);
  return { type, key };
}

/**
 * A publish request body for `name`.
 * @param {typeof import("../fhircast-client.js")} lib the client bundle's exports (updateBundle, syncErrorContext)
 * @param {EventCatalog} catalog the hub's catalog (with its proprietary events)
 * @param {string} topic hub.topic
 * @param {string} name the event's name
 * @param {InspectView | null} view the inspector snapshot, for open contexts and versions
 * @param {{lastEvent?: {id: string, name: string}}} hints
 * @returns {Notification}
 */
export function template(lib, catalog, topic, name, view, hints = {}) {
  const spec = catalog.get(name);
  /** @type {EventBody} */
  const event = { "hub.topic": topic, "hub.event": spec?.name ?? name, context: [] };
  const body = { timestamp: new Date().toISOString(), id: crypto.randomUUID(), event };
  if (!spec || spec.proprietary) return body;
  const ctx = event.context;
  const open = spec.anchorType ? openOf(view, spec.anchorType) : undefined;

  switch (spec.role) {
    case "open": {
      const a = anchorOfSpec(spec);
      const patient = currentPatient(view) ?? newPatient();
      let anchor;
      if (a.type === "Patient") anchor = newPatient();
      else if (a.type === "DiagnosticReport") {
        const study = resourceOf(openOf(view, "ImagingStudy"), "study");
        anchor = newResource("DiagnosticReport", patient, study ? { imagingStudy: [{ reference: `ImagingStudy/${study.id}` }] } : {});
      } else anchor = newResource(a.type, patient);
      ctx.push({ key: a.key, resource: anchor });
      for (const k of spec.keys) {
        if (k.key === a.key) continue;
        if (k.key === "patient" && a.type !== "Patient") ctx.push({ key: "patient", resource: patient });
        else if (k.key === "study") {
          const study = resourceOf(openOf(view, "ImagingStudy"), "study");
          if (study) ctx.push({ key: "study", resource: study });
        } else if (k.key === "encounter") {
          const enc = resourceOf(openOf(view, "Encounter"), "encounter");
          if (enc) ctx.push({ key: "encounter", resource: enc });
        }
      }
      return body;
    }
    case "close": {
      const a = anchorOfSpec(spec);
      // Close exactly what was opened: the open context's own entries for this event's keys.
      if (open) {
        for (const k of spec.keys) {
          for (const e of open.event.event.context.filter((x) => x.key === k.key)) ctx.push(e);
        }
      } else {
        const patient = newPatient();
        ctx.push({ key: a.key, resource: a.type === "Patient" ? patient : newResource(a.type, patient) });
        if (a.type !== "Patient" && spec.keys.some((k) => k.key === "patient" && k.min > 0)) ctx.push({ key: "patient", resource: patient });
      }
      return body;
    }
    case "update": {
      const a = anchorOfSpec(spec);
      const anchorRef = open ? open.anchor : `${a.type}/${a.type.toLowerCase()}-${short()}`;
      ctx.push({ key: a.key, reference: { reference: anchorRef } });
      const patient = resourceOf(open, "patient") ?? currentPatient(view);
      if (patient && a.type !== "Patient") ctx.push({ key: "patient", reference: { reference: `Patient/${patient.id}` } });
      const observation = {
        resourceType: "Observation",
        id: `obs-${short()}`,
        status: "preliminary",
        code: { text: "Sandbox finding" },
        ...(patient ? { subject: { reference: `Patient/${patient.id}` } } : {}),
        valueString: `Noted at ${new Date().toLocaleTimeString()}`,
      };
      ctx.push({ key: "updates", resource: lib.updateBundle({ put: [observation] }) });
      // The version this update is based on (fhircast.hl7.org/STU3/2-10-ContentSharing.html): the anchor's current one, as the hub holds it.
      if (open) event["context.versionId"] = open.versionId;
      else event["context.versionId"] = "(no open context of this type: open one first)";
      return body;
    }
    case "select": {
      const a = anchorOfSpec(spec);
      const anchorRef = open ? open.anchor : `${a.type}/${a.type.toLowerCase()}-${short()}`;
      ctx.push({ key: a.key, reference: { reference: anchorRef } });
      const patient = resourceOf(open, "patient");
      if (patient && a.type !== "Patient") ctx.push({ key: "patient", reference: { reference: `Patient/${patient.id}` } });
      const entries = /** @type {{ resource?: FhirResource }[] | undefined} */ (open?.content?.entry);
      const first = entries?.find((e) => e?.resource?.resourceType && e.resource.id)?.resource;
      if (first) ctx.push({ key: "select", reference: { reference: `${first.resourceType}/${first.id}` } });
      return body;
    }
    case "home":
      return body;
    case "infrastructure": {
      if (spec.name === "SyncError") {
        const about = hints.lastEvent ?? { id: crypto.randomUUID(), name: "Patient-open" };
        ctx.push(...lib.syncErrorContext(about, "sandbox", `The sandbox could not follow ${about.name}`));
      } else {
        ctx.push({
          key: "parameters",
          resource: {
            resourceType: "Parameters",
            parameter: [{ name: "code", valueCoding: { system: "http://hl7.org/fhir/uv/fhircast/CodeSystem/fhircast-codesystem", code: spec.name === "UserLogout" ? "user-initiated" : "system-timeout" } }],
          },
        });
      }
      return body;
    }
    default:
      return body;
  }
}

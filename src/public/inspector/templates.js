// Publish templates for every event of the hub's catalog, shaped by the catalog's key table (the one
// the hub validates with) and filled from the topic's open contexts: a close names the open anchor, an
// update carries the anchor's current context.versionId, an Encounter-open reuses the open patient.
// Plain browser module; `lib` is the subscriber client bundle (/fhircast-client.js).

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

const subject = (patient) => (patient?.id ? { subject: { reference: `Patient/${patient.id}` } } : {});

/** A new resource of an anchor type (the anchor of an open event, or its companions). */
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

/** The most recently opened context of an anchor type, from the inspector's snapshot. */
function openOf(view, type) {
  return view?.contexts?.find((c) => c.type === type);
}

/** The value of a key in an open context's event (the resource it was opened with). */
function entryOf(ctx, key) {
  return ctx?.event?.event?.context?.find((e) => e.key === key);
}

function resourceOf(ctx, key) {
  return entryOf(ctx, key)?.resource;
}

/** The patient of the topic: the open Patient context's, else the one of the newest open context. */
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
 * A publish request body for `name`.
 * @param {object} lib the client bundle's exports (EventCatalog, updateBundle, syncErrorContext)
 * @param {object} catalog an EventCatalog (with the hub's proprietary events)
 * @param {string} topic hub.topic
 * @param {object|null} view the inspector snapshot (InspectView), for open contexts and versions
 * @param {{lastEvent?: {id: string, name: string}}} hints
 */
export function template(lib, catalog, topic, name, view, hints = {}) {
  const spec = catalog.get(name);
  const event = { "hub.topic": topic, "hub.event": spec?.name ?? name, context: [] };
  const body = { timestamp: new Date().toISOString(), id: crypto.randomUUID(), event };
  if (!spec || spec.proprietary) return body;
  const ctx = event.context;
  const open = spec.anchorType ? openOf(view, spec.anchorType) : undefined;

  switch (spec.role) {
    case "open": {
      const patient = currentPatient(view) ?? newPatient();
      let anchor;
      if (spec.anchorType === "Patient") anchor = newPatient();
      else if (spec.anchorType === "DiagnosticReport") {
        const study = resourceOf(openOf(view, "ImagingStudy"), "study");
        anchor = newResource("DiagnosticReport", patient, study ? { imagingStudy: [{ reference: `ImagingStudy/${study.id}` }] } : {});
      } else anchor = newResource(spec.anchorType, patient);
      ctx.push({ key: spec.anchorKey, resource: anchor });
      for (const k of spec.keys) {
        if (k.key === spec.anchorKey) continue;
        if (k.key === "patient" && spec.anchorType !== "Patient") ctx.push({ key: "patient", resource: patient });
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
      // Close exactly what was opened: the open context's own entries for this event's keys.
      if (open) {
        for (const k of spec.keys) {
          for (const e of open.event.event.context.filter((x) => x.key === k.key)) ctx.push(e);
        }
      } else {
        const patient = newPatient();
        ctx.push({ key: spec.anchorKey, resource: spec.anchorType === "Patient" ? patient : newResource(spec.anchorType, patient) });
        if (spec.anchorType !== "Patient" && spec.keys.some((k) => k.key === "patient" && k.min > 0)) ctx.push({ key: "patient", resource: patient });
      }
      return body;
    }
    case "update": {
      const anchorRef = open ? open.anchor : `${spec.anchorType}/${spec.anchorType.toLowerCase()}-${short()}`;
      ctx.push({ key: spec.anchorKey, reference: { reference: anchorRef } });
      const patient = resourceOf(open, "patient") ?? currentPatient(view);
      if (patient && spec.anchorType !== "Patient") ctx.push({ key: "patient", reference: { reference: `Patient/${patient.id}` } });
      const observation = {
        resourceType: "Observation",
        id: `obs-${short()}`,
        status: "preliminary",
        code: { text: "Sandbox finding" },
        ...(patient ? { subject: { reference: `Patient/${patient.id}` } } : {}),
        valueString: `Noted at ${new Date().toLocaleTimeString()}`,
      };
      ctx.push({ key: "updates", resource: lib.updateBundle({ put: [observation] }) });
      // The version this update is based on (§2.10): the anchor's current one, as the hub holds it.
      if (open) event["context.versionId"] = open.versionId;
      else event["context.versionId"] = "(no open context of this type: open one first)";
      return body;
    }
    case "select": {
      const anchorRef = open ? open.anchor : `${spec.anchorType}/${spec.anchorType.toLowerCase()}-${short()}`;
      ctx.push({ key: spec.anchorKey, reference: { reference: anchorRef } });
      const patient = resourceOf(open, "patient");
      if (patient && spec.anchorType !== "Patient") ctx.push({ key: "patient", reference: { reference: `Patient/${patient.id}` } });
      const first = open?.content?.entry?.find((e) => e?.resource?.resourceType && e.resource.id);
      if (first) ctx.push({ key: "select", reference: { reference: `${first.resource.resourceType}/${first.resource.id}` } });
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

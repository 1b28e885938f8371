// Derived open events (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html "experimental", fhircast.hl7.org/STU3/4-2-3-multi-anchor-considerations.html): when subscribers of a topic hold
// different event sets, an open implies opens of the other anchors it carries (Encounter-open implies
// Patient-open; DiagnosticReport-open implies Patient-, Encounter- and ImagingStudy-open). Choices are
// recorded in docs/decisions.md. Pure module.
import type { ContextEntry, Notification } from "../fhircast/wire";

export interface DerivedOpen {
  name: "Patient-open" | "Encounter-open" | "ImagingStudy-open";
  anchorType: "Patient" | "Encounter" | "ImagingStudy";
  /** The anchor resource's id, to skip a subscriber whose last open of this type was the same. */
  id: string;
  notification: Notification;
}

const idOf = (e: ContextEntry | undefined): string | undefined => {
  const r = e?.resource as { id?: unknown } | undefined;
  return typeof r?.id === "string" && r.id !== "" ? r.id : undefined;
};

/**
 * The opens implied by `open`, least specific first (Patient, Encounter, ImagingStudy — one per
 * study). Each has a new id shared by all its recipients and the original event's timestamp.
 */
export function impliedOpens(open: Notification): DerivedOpen[] {
  const name = open.event["hub.event"];
  if (name !== "Encounter-open" && name !== "ImagingStudy-open" && name !== "DiagnosticReport-open") return [];
  const ctx = open.event.context;
  const patient = ctx.find((e) => e.key === "patient");
  const encounter = name === "Encounter-open" ? undefined : ctx.find((e) => e.key === "encounter");
  const studies = name === "DiagnosticReport-open" ? ctx.filter((e) => e.key === "study") : [];
  const make = (n: DerivedOpen["name"], anchorType: DerivedOpen["anchorType"], anchor: ContextEntry, entries: ContextEntry[]): DerivedOpen[] => {
    const id = idOf(anchor);
    if (!id) return [];
    const notification: Notification = {
      timestamp: open.timestamp,
      id: crypto.randomUUID(),
      event: { "hub.topic": open.event["hub.topic"], "hub.event": n, context: entries },
    };
    return [{ name: n, anchorType, id, notification }];
  };
  const out: DerivedOpen[] = [];
  if (patient) out.push(...make("Patient-open", "Patient", patient, [patient]));
  // Encounter-open requires its patient (1..1); without one there is nothing valid to derive.
  if (encounter && patient) out.push(...make("Encounter-open", "Encounter", encounter, [encounter, patient]));
  for (const study of studies) {
    out.push(...make("ImagingStudy-open", "ImagingStudy", study, [study, ...(encounter ? [encounter] : []), ...(patient ? [patient] : [])]));
  }
  return out;
}

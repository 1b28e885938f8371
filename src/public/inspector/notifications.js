// @ts-check
// Reading the hub's notifications (src/fhircast/wire.ts) for the page's one-line summaries.
/** @import { ContextEntry, Truncated } from "../../fhircast/wire" */

/**
 * An event's context entry as the page reads it (fhircast.hl7.org/STU3/2-3-Events.html): a resource or a reference. The wire type
 * (ContextEntry) leaves the values open; the hub validated them against the catalog.
 * @typedef {{ key: string, resource?: { resourceType?: string, id?: string, issue?: OutcomeIssue[] }, reference?: { reference?: string } }} Entry
 */
/** @typedef {{ diagnostics?: string, details?: { coding?: { system?: string, code?: string }[] } }} OutcomeIssue */

/**
 * Anything with an event's context, as far as it is there: a notification, or a frame of any shape.
 * @typedef {{ timestamp?: string, event?: { context?: readonly ContextEntry[] } } | null | undefined} HasContext
 */

/** @param {HasContext} n */
const entries = (n) => /** @type {readonly Entry[]} */ (n?.event?.context ?? []);

/**
 * The anchor (`Type/id`) named by an event's context, for the one-line summaries.
 * @param {HasContext} n
 */
export function anchorOf(n) {
  const ctx = entries(n);
  for (const key of ["report", "study", "encounter", "patient"]) {
    const e = ctx.find((x) => x.key === key);
    if (e?.resource) return `${e.resource.resourceType}/${e.resource.id}`;
    if (e?.reference?.reference) return e.reference.reference;
  }
  return "";
}

/**
 * A SyncError's explanation (its OperationOutcome's diagnostics), for the one-line summary.
 * @param {HasContext} n
 */
export function diagnosticsOf(n) {
  const d = syncErrorOf(n).diagnostics;
  return d.length > 90 ? `${d.slice(0, 90)}…` : d;
}

/**
 * A SyncError as the page keeps it: its diagnostics, the subscriber and event it names, when.
 * @typedef {{ diagnostics: string, subscriber?: string, eventName?: string, eventId?: string, at?: string }} SyncErrorSeen
 */

/**
 * A SyncError's diagnostics and the subscriber and event it names (its OperationOutcome's codings).
 * @param {HasContext} n
 * @returns {SyncErrorSeen}
 */
export function syncErrorOf(n) {
  const issue = entries(n).find((e) => e.key === "operationoutcome")?.resource?.issue?.[0];
  /** @param {string} suffix */
  const code = (suffix) => issue?.details?.coding?.find((c) => String(c.system ?? "").endsWith(`/${suffix}`))?.code;
  return { diagnostics: issue?.diagnostics ?? "", subscriber: code("subscribername"), eventName: code("eventname"), eventId: code("eventid"), at: n?.timestamp };
}

/**
 * The hub's marker for JSON it left out of a snapshot to stay within its budget (docs/inspector.md).
 * @param {{ truncated?: Truncated } | undefined} value
 */
export function leftOut(value) {
  const t = value?.truncated;
  if (!t) return "";
  const what = t.entries ? `${t.entries} ${t.entries === 1 ? "entry" : "entries"}, ` : "";
  return ` — ${what}${t.bytes} bytes left out (too large for the snapshot)`;
}

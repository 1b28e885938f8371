// Reading a received SyncError (fhircast.hl7.org/STU3/3-2-1-SyncError.html): which event failed, for whom, and why.
import { SYNCERROR_SYSTEM } from "../topic/sync";
import type { Notification } from "../protocol/wire";

export interface SyncErrorDetails {
  /** Id of the event that could not be followed (coding …/syncerror/eventid). */
  failedEventId?: string;
  /** Its name (coding …/syncerror/eventname). */
  failedEventName?: string;
  /** Who failed (coding …/syncerror/subscribername; the example's …/subscriber is accepted too). */
  subscriberName?: string;
  diagnostics?: string;
  /** OperationOutcome.issue.code, e.g. "processing" or "too-long". */
  issueCode?: string;
}

type Coding = { system?: unknown; code?: unknown };

export function syncErrorDetails(n: Notification): SyncErrorDetails {
  const entry = n.event.context.find((e) => e.key === "operationoutcome");
  const outcome = entry?.resource as { issue?: unknown } | undefined;
  const issue = Array.isArray(outcome?.issue) ? (outcome.issue[0] as Record<string, unknown> | undefined) : undefined;
  if (!issue) return {};
  const details = issue.details as { coding?: unknown } | undefined;
  const codings = (Array.isArray(details?.coding) ? details.coding : []) as Coding[];
  const code = (...suffixes: string[]) => {
    const c = codings.find((x) => typeof x.system === "string" && suffixes.some((s) => x.system === `${SYNCERROR_SYSTEM}/${s}`));
    return typeof c?.code === "string" ? c.code : undefined;
  };
  return {
    failedEventId: code("eventid"),
    failedEventName: code("eventname"),
    subscriberName: code("subscribername", "subscriber"),
    diagnostics: typeof issue.diagnostics === "string" ? issue.diagnostics : undefined,
    issueCode: typeof issue.code === "string" ? issue.code : undefined,
  };
}

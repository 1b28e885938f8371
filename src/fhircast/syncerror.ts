// SyncError (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html, fhircast.hl7.org/STU3/3-2-1-SyncError.html): what an
// acknowledgement's status means, the event's profiled OperationOutcome as the hub sends it
// (fhircast-hub-operation-outcome-syncerror: severity warning, code processing, three codings) and as
// a subscriber sends it, and reading a received one. Pure module: the hub's topic object
// (src/topic/answers.ts) and the subscriber client both use it.
import type { ContextEntry, Notification } from "./wire";

export const SYNCERROR_SYSTEM = "https://fhircast.hl7.org/events/syncerror";

/** Why a subscriber is out of sync. */
export type SyncFailure =
  | { kind: "refused"; status: number } //     409 or another 4xx ack
  | { kind: "failed"; status: number } //      5xx (or any other non-2xx) ack
  | { kind: "timeout"; seconds: number } //    no ack within the ack timeout
  | { kind: "closed"; code: number } //        socket closed with a code other than 1000/1001
  | { kind: "stalled"; pending: number; bytes?: number }; // stopped reading: too many events (or bytes) unacknowledged

/**
 * Classifies an ack's `status`: a number, a numeric string, or absent (success, as clients send).
 * Here rather than in the topic object: it is what the spec's status codes mean (2xx followed,
 * 4xx refused, other failed), not hub state, and a subscriber's tooling reads it the same way.
 */
export function ackOutcome(status: unknown): { success: true } | { success: false; failure: SyncFailure } {
  if (status === undefined || status === null) return { success: true };
  const code = typeof status === "number" ? status : typeof status === "string" ? Number(status.trim()) : NaN;
  if (!Number.isInteger(code)) return { success: true }; // unreadable: not evidence of failure
  if (code >= 200 && code < 300) return { success: true };
  if (code >= 400 && code < 500) return { success: false, failure: { kind: "refused", status: code } };
  return { success: false, failure: { kind: "failed", status: code } };
}

function describe(failure: SyncFailure): string {
  switch (failure.kind) {
    case "refused":
      return `refused the event (status ${failure.status})`;
    case "failed":
      return `could not process the event (status ${failure.status})`;
    case "timeout":
      return `did not acknowledge the event within ${failure.seconds} s`;
    case "closed":
      return `disconnected abnormally (close code ${failure.code})`;
    case "stalled":
      return failure.bytes === undefined
        ? `stopped reading (${failure.pending} events unacknowledged) and was disconnected`
        : `stopped reading (${failure.pending} events unacknowledged; the next one would make ${failure.bytes} bytes owed, over SOCKET_BUFFER_BYTES) and was disconnected`;
  }
}

/** The one context entry of a SyncError: an OperationOutcome naming the failed event and who failed it. */
function outcomeEntry(failed: { id: string; name: string }, subscriber: string, diagnostics: string, issueCode: string): ContextEntry {
  return {
    key: "operationoutcome",
    resource: {
      resourceType: "OperationOutcome",
      issue: [
        {
          severity: "warning",
          code: issueCode,
          diagnostics,
          details: {
            coding: [
              { system: `${SYNCERROR_SYSTEM}/eventid`, code: failed.id },
              { system: `${SYNCERROR_SYSTEM}/eventname`, code: failed.name },
              { system: `${SYNCERROR_SYSTEM}/subscribername`, code: subscriber },
            ],
          },
        },
      ],
    },
  };
}

/** The hub's SyncError about `subscriber` failing event `{eventId, eventName}`. */
export function syncError(
  topic: string,
  subscriber: string,
  failed: { eventId: string; eventName: string },
  failure: SyncFailure,
  now: number,
): Notification {
  return {
    timestamp: new Date(now).toISOString(),
    id: crypto.randomUUID(),
    event: {
      "hub.topic": topic,
      "hub.event": "SyncError",
      context: [
        outcomeEntry(
          { id: failed.eventId, name: failed.eventName },
          subscriber,
          `${subscriber} ${describe(failure)}: ${failed.eventName} ${failed.eventId}`,
          "processing",
        ),
      ],
    },
  };
}

/**
 * A subscriber's SyncError about an event it received and could not follow (after acknowledging it
 * with 202, fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html): the subscriber variant of the SyncError OperationOutcome (fhircast.hl7.org/STU3/3-2-1-SyncError.html).
 */
export function syncErrorContext(failed: { id: string; name: string }, subscriberName: string, diagnostics: string, issueCode = "processing"): ContextEntry[] {
  return [outcomeEntry(failed, subscriberName, diagnostics, issueCode)];
}

/** What a received SyncError says (fhircast.hl7.org/STU3/3-2-1-SyncError.html): which event failed, for whom, and why. */
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

/** Reads a received SyncError; members it cannot find are left undefined. */
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

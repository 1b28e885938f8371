// Synchronization (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html, fhircast.hl7.org/STU3/3-2-1-SyncError.html SyncError): what an acknowledgement means, and the
// hub-generated SyncError event with its profiled OperationOutcome
// (fhircast-hub-operation-outcome-syncerror: severity warning, code processing, three codings).
import type { Notification } from "../protocol/wire";

export const SYNCERROR_SYSTEM = "https://fhircast.hl7.org/events/syncerror";

/** Why a subscriber is out of sync. */
export type SyncFailure =
  | { kind: "refused"; status: number } //     409 or another 4xx ack
  | { kind: "failed"; status: number } //      5xx (or any other non-2xx) ack
  | { kind: "timeout"; seconds: number } //    no ack within the ack timeout
  | { kind: "closed"; code: number } //        socket closed with a code other than 1000/1001
  | { kind: "stalled"; pending: number; bytes?: number }; // stopped reading: too many events (or bytes) unacknowledged

/** Classifies an ack's `status`: a number, a numeric string, or absent (success, as clients send). */
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
        {
          key: "operationoutcome",
          resource: {
            resourceType: "OperationOutcome",
            issue: [
              {
                severity: "warning",
                code: "processing",
                diagnostics: `${subscriber} ${describe(failure)}: ${failed.eventName} ${failed.eventId}`,
                details: {
                  coding: [
                    { system: `${SYNCERROR_SYSTEM}/eventid`, code: failed.eventId },
                    { system: `${SYNCERROR_SYSTEM}/eventname`, code: failed.eventName },
                    { system: `${SYNCERROR_SYSTEM}/subscribername`, code: subscriber },
                  ],
                },
              },
            ],
          },
        },
      ],
    },
  };
}

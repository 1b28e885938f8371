// What a FhircastClient reports to the application: the typed event map and its payloads.
import type { EventRole } from "../fhircast/catalog";
import type { SyncErrorDetails } from "../fhircast/syncerror";
import type { Confirmation, ContextEntry, CurrentContext, Denial, Notification } from "../fhircast/wire";

/** An event notification as received, with what the catalog says about it. */
export interface ReceivedEvent {
  id: string;
  timestamp: string;
  /** Canonical (catalog) spelling when the event is known, else as received. */
  name: string;
  role?: EventRole;
  /** `Type/id` of the anchor, for open/close/update/select events. */
  anchor?: string;
  context: ContextEntry[];
  versionId?: string;
  priorVersionId?: string;
  /** The frame exactly as the hub sent it. */
  notification: Notification;
}

/**
 * The acknowledgement status an "event" listener may return (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html): 200 (the default) applied,
 * 202 received and deciding (then `sendSyncError` within 10 s if refusing), 409 refused, 4xx/5xx failed.
 */
export type AckStatus = number;

export interface ClientEventMap {
  /** The WebSocket opened (before the hub's confirmation). */
  connect: { endpoint: string; reconnect: boolean };
  /** The hub confirmed the subscription (also after a re-subscribe or a lease renewal). */
  confirmed: { confirmation: Confirmation; events: string[]; leaseSeconds: number; reconnect: boolean; renewal: boolean };
  /**
   * An event arrived (live or replayed current context). The first listener that returns (or resolves
   * to) a number sets the acknowledgement status; otherwise 200. A listener that throws makes it 500.
   */
  event: ReceivedEvent;
  /** A SyncError arrived (it is also delivered as "event"). */
  syncerror: SyncErrorDetails & { event: ReceivedEvent };
  /** The hub denied or ended the subscription (fhircast.hl7.org/STU3/2-4-Subscribing.html). The client does not reconnect after a denial. */
  denied: { denial: Denial; reason?: string };
  /** The socket dropped unexpectedly; the client starts re-subscribing. */
  disconnect: { code: number; reason: string; at: number };
  /** A re-subscribe attempt is scheduled. */
  reconnect: { attempt: number; delayMs: number };
  /** Re-subscribed after a drop; the replay of current context follows as "event"s. */
  reconnected: { downMs: number; attempts: number; disconnectedAt: number; endpoint: string };
  /** The client re-read the current context, e.g. after an update was refused with 409. */
  resync: { cause: "conflict"; anchor?: string; versionId?: string; context: CurrentContext };
  /** close() finished: unsubscribed and the socket closed. */
  close: { code: number; reason: string; complete: boolean };
  /** Something failed in the background (a reconnect attempt, a lease renewal, an acknowledgement). */
  error: { error: Error; during: "reconnect" | "renew" | "ack" | "unsubscribe" | "frame" };
}

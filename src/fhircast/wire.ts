// Every JSON shape that crosses the wire (HTTP bodies and WebSocket frames), in one place, and the
// Result type refusals travel as: plain types, no schema library, shared by the hub and the subscriber
// client (docs/decisions.md "One FHIRcast model").
// fhircast.hl7.org/STU3/2-4-Subscribing.html (frames), fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html, fhircast.hl7.org/STU3/2-6-SendEventNotification.html (notifications), fhircast.hl7.org/STU3/2-9-GetCurrentContext.html (current context). Pure module.

/** One entry of an event's `context` array: `{key, resource|reference|<datatype>|data}` (fhircast.hl7.org/STU3/2-3-Events.html). */
export type ContextEntry = { key: string; [member: string]: unknown };

/** The `event` member of a notification or publish request (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html). */
export interface EventBody {
  "hub.topic": string;
  "hub.event": string;
  context: ContextEntry[];
  /** Content sharing version (fhircast.hl7.org/STU3/2-10-ContentSharing.html); the hub sets it on distributed opens and updates. */
  "context.versionId"?: string;
  "context.priorVersionId"?: string;
  [extra: string]: unknown;
}

/** A notification as distributed by the hub and as POSTed by a subscriber (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html, fhircast.hl7.org/STU3/2-6-SendEventNotification.html). */
export interface Notification {
  timestamp: string;
  id: string;
  event: EventBody;
}

/** Subscription confirmation frame (fhircast.hl7.org/STU3/2-4-Subscribing.html): all four fields required, events as a comma string. */
export interface Confirmation {
  "hub.mode": "subscribe";
  "hub.topic": string;
  "hub.events": string;
  "hub.lease_seconds": number;
}

/** Subscription denial frame (fhircast.hl7.org/STU3/2-4-Subscribing.html). */
export interface Denial {
  "hub.mode": "denied";
  "hub.topic": string;
  "hub.events": string;
  "hub.reason"?: string;
}

/** Event acknowledgement from a subscriber (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html): `status` may be a number, a string, or absent. */
export interface Ack {
  id: string;
  status?: number | string;
}

/** GET current context (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html). The empty form is `{"context.type": "", "context": []}`. */
export interface CurrentContext {
  "context.type": string;
  "context.versionId"?: string;
  context: ContextEntry[];
}

/** `.well-known/fhircast-configuration` (fhircast.hl7.org/STU3/2-7-Conformance.html). */
export interface WellKnown {
  eventsSupported: string[];
  websocketSupport: true;
  fhircastVersion: "3.0.0";
  fhirVersion: "R4";
  getCurrentSupport: boolean;
  capabilities: { supportsGetCurrentContext: boolean; supportsNonCurrentContextUpdates: boolean };
}

/** The 202 body of subscribe and unsubscribe (fhircast.hl7.org/STU3/2-4-Subscribing.html). */
export interface SubscriptionResponse {
  "hub.channel.endpoint": string;
}

/** A FHIR OperationOutcome, the body of every JSON API error (docs/decisions.md). */
export interface OperationOutcome {
  resourceType: "OperationOutcome";
  issue: { severity: "error" | "warning"; code: string; diagnostics: string; details?: unknown }[];
}

/**
 * A domain result crossing the Worker/DO boundary. RPC keeps only `name` and `message` of thrown
 * errors, so refusals travel as values and only bugs throw.
 */
export type Failure = { ok: false; status: number; code: string; detail: string; retryAfter?: number };
export type Result<T> = { ok: true; value: T } | Failure;

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });

/** Whether a parsed JSON value is an object (not null, not an array): what every check of untrusted JSON starts with. */
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
export const fail = (status: number, code: string, detail: string): Failure => ({
  ok: false,
  status,
  code,
  detail,
});

/**
 * The inspector's marker for stored JSON left out of a snapshot to keep it within its byte budget
 * (docs/inspector.md): on an event (then it has an empty context) or on a content Bundle (then
 * `entries` of its entries were left out).
 */
export interface Truncated {
  bytes: number;
  entries?: number;
  reason: string;
}

/** The inspector's snapshot of one topic (GET /api/inspect/{topic}); no secrets, no endpoints. */
export interface InspectView {
  topic: string;
  subscribers: {
    id: string;
    name: string | null;
    events: string[];
    connected: boolean;
    leaseSecondsLeft: number | null;
    /** Events delivered and not yet acknowledged. */
    pendingAcks: number;
    missedAcks: number;
    lastSyncError: { reason: string; at: string } | null;
  }[];
  /** Open contexts, most recently opened first. */
  contexts: {
    anchor: string;
    type: string;
    current: boolean;
    versionId: string;
    event: Notification & { truncated?: Truncated };
    content: Record<string, unknown> & { truncated?: Truncated };
  }[];
  /** The newest logged events, newest first. */
  events: { seq: number; acceptedAt: string; event: Notification & { truncated?: Truncated } }[];
}

/** A frame on the inspector's live socket. */
export type InspectorFrame =
  | { type: "event"; seq: number; acceptedAt: string; event: Notification }
  | { type: "changed"; what: "subscribers" };

/**
 * What the inspector sends back for each event frame it read: every event up to `seen` (cumulative).
 * An inspector that stops answering is closed once SOCKET_BUFFER_BYTES of event frames are unanswered.
 */
export interface InspectorSeen {
  seen: number;
}

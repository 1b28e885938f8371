// Publishing (fhircast.hl7.org/STU3/2-6-SendEventNotification.html, fhircast.hl7.org/STU3/2-10-ContentSharing.html, fhircast.hl7.org/STU3/4-2-2-multitab-considerations.html): an event the Worker validated is applied to the topic's state and logged
// in one transaction, then sent to every subscriber of it, its implied opens to those that hold them
// instead (./derive.ts), and shown to the inspectors.
import { topicHash } from "../log";
import { count } from "../metrics";
import type { PublishRequest } from "../fhircast/publish";
import { fail, type Notification, ok, type Result } from "../fhircast/wire";
import { awaitAnswers, outOfSync } from "./answers";
import { applyUpdate } from "./content";
import type { TopicCore } from "./core";
import { impliedOpens } from "./derive";
import { inspectorEvent } from "./inspector";
import { type AnchorChange, MAX_AWAITED } from "./sockets";
import { CONTEXT_TRIM_EVERY } from "./store";

/**
 * A validated publish as the Worker hands it to the topic object: the notification travels as its
 * JSON text, which crosses the RPC boundary more cheaply than a structured clone of the object, and is
 * the very frame the object sends for events it does not change (docs/performance.md).
 */
export type PublishCall = Omit<PublishRequest, "notification"> & { notification: string };

/** Most open contexts a topic keeps (multi-tab); the least recently opened is dropped beyond it. */
export const MAX_OPEN_CONTEXTS = 100;

/**
 * Accepts a validated event: applies it to the topic's state and logs it in one transaction, then
 * sends it to every subscriber of that event (the requester included, when subscribed).
 */
export async function publish(core: TopicCore, call: PublishCall): Promise<Result<{ seq: number }>> {
  const { config, store, sockets, memory } = core;
  const req: PublishRequest = { ...call, notification: JSON.parse(call.notification) as Notification };
  const topic = req.notification.event["hub.topic"];
  if (!memory.hasStorage) core.ensureStorage(topic, await topicHash(topic));
  const now = Date.now();
  // A resent event (same id) is how a subscriber restores sync (fhircast.hl7.org/STU3/2-6-SendEventNotification.html, fhircast.hl7.org/STU3/3-2-1-SyncError.html): accept it again, but
  // not sooner than RESEND_MIN_SECONDS after the last time, so that resends cannot loop.
  const minGap = config.resendMinSeconds * 1000;
  const previous = memory.eventLog.get(req.notification.id);
  if (previous && minGap > 0 && now - previous.accepted_at < minGap) {
    const wait = Math.ceil((previous.accepted_at + minGap - now) / 1000);
    return { ...fail(429, "throttled", `event ${req.notification.id} was accepted ${now - previous.accepted_at} ms ago; resend it no sooner than ${config.resendMinSeconds} s after the previous one`), retryAfter: wait };
  }
  // Acknowledgements are tracked for every event but SyncError: no SyncError about a SyncError.
  const tracked = req.eventName !== "SyncError";
  const ackDue = now + config.ackTimeoutSeconds * 1000;
  const writesAckRow = tracked && memory.acks.needsRow();
  let out: Notification = req.notification;
  let frame = "";
  const applied = core.ctx.storage.transactionSync((): Result<number> => {
    // Serialized at most once: the same JSON is logged, stored as the open context and sent.
    const append = () => {
      frame = out === req.notification ? call.notification : JSON.stringify(out);
      const seq = store.appendEvent(out.id, req.eventName, frame, now, config.eventLogLimit);
      if (writesAckRow) store.setDeadlineNoLater("ack", "", ackDue);
      return seq;
    };
    /** Applies the event to the topic's state and logs it; the log's seq, or why not. */
    const change = (): Result<number> => {
      switch (req.role) {
        case "open": {
          const versionId = crypto.randomUUID();
          out = withVersion(req.notification, versionId);
          const seq = append();
          store.upsertContext(req.anchor!, req.anchorType!, frame, versionId, seq);
          store.setCurrentAnchor(req.anchor);
          return ok(seq);
        }
        case "close": {
          const wasOpen = store.deleteContext(req.anchor!);
          if (store.currentAnchor() === req.anchor) store.setCurrentAnchor(undefined);
          // A close of something not open is broadcast anyway (idempotent for subscribers), and logged.
          if (!wasOpen) core.log("close.not-open", { event: req.eventName }, "warn");
          return ok(append());
        }
        case "home": {
          store.setCurrentAnchor(undefined);
          return ok(append());
        }
        case "update": {
          const result = applyUpdate(store, req, { perAnchor: config.maxContentBytesPerAnchor, perTopic: config.maxContentBytesPerTopic });
          if (!result.ok) return result;
          out = result.value;
          return ok(append());
        }
        default:
          return ok(append());
      }
    };
    const result = change();
    // Bounded every CONTEXT_TRIM_EVERY events of any kind, not on every open (docs/decisions.md).
    if (result.ok && result.value % CONTEXT_TRIM_EVERY === 0) {
      const dropped = store.trimContexts(MAX_OPEN_CONTEXTS);
      if (dropped > 0) core.log("contexts.trimmed", { count: dropped }, "warn");
    }
    return result;
  });
  if (!applied.ok) {
    core.log("publish.rejected", { event: req.eventName, status: applied.status });
    count("fhircast_events_rejected_total", { status: String(applied.status) });
    return applied;
  }
  const seq = applied.value;
  if (writesAckRow) {
    memory.acks.rowWritten();
    core.alarmNoLaterThan(ackDue);
  }
  memory.eventLog.note(out.id, seq, req.eventName, now);
  const anchor = anchorChange(req);
  const { sent, stalled } = sockets.broadcast(req.eventName, frame, { track: tracked ? seq : undefined, anchor });
  if (tracked) memory.acks.delivered(seq, now, sent);
  // Derived opens are awaited like the event itself (docs/decisions.md "Synchronization").
  const derivedStalled = new Set<string>();
  if (req.role === "open") {
    for (const d of impliedOpens(out)) {
      const derived = sockets.broadcastDerived(d, JSON.stringify(d.notification), req.eventName, { id: d.notification.id, due: ackDue });
      if (derived.sent > 0) awaitAnswers(core, ackDue);
      for (const sub of derived.stalled) derivedStalled.add(sub);
    }
  }
  sockets.toInspectors(() => inspectorEvent(seq, now, out), seq);
  // Past the count or the byte budget (SOCKET_BUFFER_BYTES): ended, so the hub stops sending to it.
  for (const s of stalled) {
    outOfSync(core, s.sub, { eventId: out.id, eventName: req.eventName }, { kind: "stalled", pending: s.pending, ...(s.bytes !== undefined ? { bytes: s.bytes } : {}) }, true);
  }
  for (const sub of derivedStalled) {
    if (!sockets.get(sub)) continue; // already ended above
    outOfSync(core, sub, { eventId: out.id, eventName: req.eventName }, { kind: "stalled", pending: MAX_AWAITED + 1 }, true);
  }
  core.log("publish", { event: req.eventName, seq, delivered: sent });
  count("fhircast_events_accepted_total", { event: req.eventName });
  count("fhircast_deliveries_total", {}, sent);
  return ok({ seq });
}

/** The event as distributed: the hub's versionId at event level (spec note A3). */
export function withVersion(n: Notification, versionId: string): Notification {
  return { ...n, event: { ...n.event, "context.versionId": versionId } };
}

/** The anchor an open or close concerns, as `{role, type, id}`. */
function anchorChange(req: PublishRequest): AnchorChange | undefined {
  if ((req.role !== "open" && req.role !== "close") || !req.anchor || !req.anchorType) return undefined;
  return { role: req.role, type: req.anchorType, id: req.anchor.slice(req.anchorType.length + 1) };
}

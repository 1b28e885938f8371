// Acknowledgements in the topic object (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html, fhircast.hl7.org/STU3/3-2-1-SyncError.html; docs/decisions.md "Synchronization"): answers
// awaited, received and overdue, and the SyncError the hub raises about a subscriber that is out of
// sync. What an answer means and the SyncError's shape are in ../fhircast/syncerror.ts; which events still await
// answers is ./acks.ts (live events) and each socket's attachment (replayed and derived ones).
import { ackOutcome, type SyncFailure, syncError } from "../fhircast/syncerror";
import type { Ack } from "../fhircast/wire";
import { count } from "../metrics";
import { ACK_CHECK_GAP_MS } from "./acks";
import type { TopicCore } from "./core";
import { inspectorEvent } from "./inspector";
import { endSubscription } from "./subscription-end";

/**
 * Makes sure the acknowledgement check runs no later than `due`, the time an answer just awaited
 * falls due. Nothing to write while the stored `ack` row stands: it is due no later than that.
 */
export function awaitAnswers(core: TopicCore, due: number): void {
  const acks = core.memory.acks;
  if (!acks.needsRow()) return;
  core.ctx.storage.transactionSync(() => core.store.setDeadlineNoLater("ack", "", due));
  acks.rowWritten();
  core.alarmNoLaterThan(due);
}

/**
 * A subscriber's answer `{id, status}` to an event. Each event is judged once per subscriber: a
 * second answer, or one for an event it was not sent, is ignored. A failure is a SyncError.
 */
export function receiveAnswer(core: TopicCore, sub: string, ack: Ack): void {
  const outcome = ackOutcome(ack.status);
  // A replayed or derived event this socket owes an answer to (a replayed one may also be in the log).
  const awaitedName = core.sockets.answerAwaited(sub, ack.id, outcome.success);
  const event = core.memory.eventLog.get(ack.id);
  const live = event !== undefined && core.sockets.answer(sub, event.seq, outcome.success);
  if (live) core.memory.acks.answered(event.seq);
  if (!live && awaitedName === undefined) return;
  count("fhircast_acks_total", { outcome: outcome.success ? "success" : outcome.failure.kind });
  if (outcome.success) return;
  outOfSync(core, sub, { eventId: ack.id, eventName: awaitedName ?? event!.name }, outcome.failure, false);
}

/** Raises a timeout SyncError for every recipient that has not answered an event in time (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html). */
export function checkAnswers(core: TopicCore, now: number): void {
  const { config, store, sockets, memory } = core;
  const timeoutMs = config.ackTimeoutSeconds * 1000;
  const timeout: SyncFailure = { kind: "timeout", seconds: config.ackTimeoutSeconds };
  const { seqs, next: nextLive } = memory.acks.takeOverdue(now, timeoutMs, (from) => store.acceptedTimes(from));
  const misses: { sub: string; eventId: string; eventName: string; due: number }[] = [];
  for (const seq of seqs) {
    const missed = sockets.takeMissed(seq);
    const event = missed.length > 0 ? store.eventBySeq(seq) : undefined;
    const due = (event ? (memory.eventLog.get(event.id)?.accepted_at ?? 0) : 0) + timeoutMs;
    for (const m of missed) misses.push({ sub: m.sub, eventId: event?.id ?? "unknown", eventName: event?.name ?? "unknown", due });
  }
  // Replayed and derived events, judged the same way (each socket holds their due times).
  const awaited = sockets.takeOverdueAwaited(now);
  for (const m of awaited.missed) misses.push({ sub: m.sub, eventId: m.id, eventName: m.name, due: m.due });
  // Oldest first, whichever kind: the event a subscriber failed first is the one reported, and the
  // miss that makes it unresponsive ends it before any later one is (each takes* counted them all).
  misses.sort((a, b) => a.due - b.due);
  const missCount = new Map<string, number>();
  for (const m of misses) missCount.set(m.sub, (missCount.get(m.sub) ?? 0) + 1);
  const seen = new Map<string, number>();
  for (const m of misses) {
    if (!sockets.get(m.sub)) continue; // already ended as unresponsive by an earlier miss
    const nth = (seen.get(m.sub) ?? 0) + 1;
    seen.set(m.sub, nth);
    const missesNow = sockets.misses(m.sub) - missCount.get(m.sub)! + nth;
    outOfSync(core, m.sub, { eventId: m.eventId, eventName: m.eventName }, timeout, missesNow >= config.unresponsiveThreshold);
  }
  const soonest = Math.min(nextLive ?? Infinity, awaited.next ?? Infinity);
  const next = soonest === Infinity ? undefined : Math.max(soonest, now + ACK_CHECK_GAP_MS);
  if (next === undefined) {
    memory.acks.rowConsumed();
  } else {
    memory.acks.rowWritten();
    store.setDeadline("ack", "", next);
  }
}

/**
 * A subscriber failed an event: distribute one SyncError about it to the topic's other SyncError
 * subscribers (docs/decisions.md), and, when `unsubscribe`, end its subscription.
 */
export function outOfSync(core: TopicCore, sub: string, failed: { eventId: string; eventName: string }, failure: SyncFailure, unsubscribe: boolean): void {
  const { config, store, sockets } = core;
  const row = store.subscription(sub);
  const ws = sockets.get(sub);
  const att = ws ? sockets.attachment(ws) : undefined;
  const name = att?.name ?? row?.name ?? row?.client_id ?? sub;
  const now = Date.now();
  const event = syncError(core.topicName(), name, failed, failure, now);
  const frame = JSON.stringify(event);
  const seq = core.ctx.storage.transactionSync(() => store.appendEvent(event.id, "SyncError", frame, now, config.eventLogLimit));
  core.memory.eventLog.note(event.id, seq, "SyncError", now);
  const { sent } = sockets.broadcast("SyncError", frame, { exclude: sub });
  sockets.noteSyncError(sub, failure.kind, event.timestamp);
  sockets.toInspectors(() => inspectorEvent(seq, now, event), seq);
  core.log("syncerror", { sub, reason: failure.kind, delivered: sent }, "warn");
  count("fhircast_syncerrors_total", { reason: failure.kind });
  count("fhircast_events_accepted_total", { event: "SyncError" });
  count("fhircast_deliveries_total", {}, sent);
  if (unsubscribe && row) {
    const reason =
      failure.kind === "stalled" ? "subscriber stopped reading" : "unresponsive: events were not acknowledged";
    endSubscription(core, row, reason);
  }
}

// The topic's deadlines: one alarm multiplexed over the `deadlines` table (docs/storage.md), always
// set to the earliest row (TopicCore.scheduleAlarm). Each kind has its handler in DEADLINES, a table
// TypeScript checks against DeadlineKind, so that a new kind cannot be left without one.
import { HEARTBEAT } from "../fhircast/catalog";
import { checkAnswers } from "./answers";
import type { TopicCore } from "./core";
import type { DeadlineKind } from "./store";
import { endSubscription } from "./subscription-end";

/** One run of the alarm: its time, and whether the acknowledgement check is due after the deadlines. */
interface AlarmRun {
  readonly now: number;
  answersDue: boolean;
}

/** What a due deadline of a kind does; `ref` is the subscription id, or "" for the topic's own kinds. */
type DeadlineHandler = (core: TopicCore, ref: string, run: AlarmRun) => void;

const DEADLINES: Record<DeadlineKind, DeadlineHandler> = {
  /** An endpoint nobody connected to in ENDPOINT_CONNECT_SECONDS expires. */
  connect(core, ref) {
    const row = core.store.subscription(ref);
    if (row && row.connected_at === null) {
      core.store.deleteSubscription(ref);
      core.log("endpoint.expired", { sub: ref });
    }
    core.store.deleteDeadline("connect", ref);
  },
  /** A lease that ended: denial "subscription expired", close 1000 (a re-subscribe may have moved it). */
  lease(core, ref, run) {
    const row = core.store.subscription(ref);
    if (row && row.expires_at !== null && row.expires_at <= run.now) {
      endSubscription(core, row, "subscription expired");
      core.log("lease.expired", { sub: ref });
    } else if (!row) {
      core.store.deleteDeadline("lease", ref);
    }
  },
  /** Answers may be overdue: checked once, after every other due deadline. */
  ack(core, ref, run) {
    // One row (older versions kept one per event: any ref is consumed the same way).
    core.store.deleteDeadline("ack", ref);
    run.answersDue = true;
  },
  heartbeat(core, _ref, run) {
    core.store.deleteDeadline("heartbeat", "");
    heartbeat(core, run.now);
  },
  idle(core, _ref, run) {
    deleteIfIdle(core, run.now);
  },
};

/** Runs every due deadline. Alarms are at-least-once: each handler is idempotent. */
export function runDeadlines(core: TopicCore): void {
  core.memory.alarmAt = undefined; // the alarm that fired is consumed
  const run: AlarmRun = { now: Date.now(), answersDue: false };
  if (core.sockets.expireInspectors(run.now) > 0) core.log("inspector.expired", {});
  if (!core.memory.hasStorage) {
    core.scheduleAlarm();
    return;
  }
  for (const d of core.store.dueDeadlines(run.now)) {
    // A kind this version does not know (left by a newer one before a rollback) stays as it is.
    const handler = DEADLINES[d.kind] as DeadlineHandler | undefined;
    handler?.(core, d.ref, run);
    if (!core.memory.hasStorage) return; // the topic was deleted (idle): nothing left to run or schedule
  }
  if (run.answersDue) checkAnswers(core, run.now);
  core.scheduleAlarm();
}

/**
 * The legacy `heartbeat` event (STU3 ballots; removed from 3.0.0) for older clients, only when
 * HEARTBEAT_SECONDS > 0 and only to subscriptions that list it (STU3 forbids sending events a
 * subscriber did not subscribe to). Not logged, not acknowledged. It stops when nobody wants it; a
 * connect or re-subscribe that asks for it starts it again.
 */
function heartbeat(core: TopicCore, now: number): void {
  const seconds = core.config.heartbeatSeconds;
  if (seconds === 0) return;
  const frame = JSON.stringify({
    timestamp: new Date(now).toISOString(),
    id: crypto.randomUUID(),
    event: { "hub.topic": core.topicName(), "hub.event": HEARTBEAT.name, context: [{ key: "period", decimal: String(seconds) }] },
  });
  const { sent } = core.sockets.broadcast(HEARTBEAT.name, frame);
  if (sent > 0) core.store.setDeadline("heartbeat", "", now + seconds * 1000);
}

/** Deletes the topic's storage when it has no subscribers and no activity for the idle time. */
function deleteIfIdle(core: TopicCore, now: number): void {
  const { store } = core;
  const idleMs = core.config.topicIdleSeconds * 1000;
  const last = Math.max(Number(store.getMeta("last_activity") ?? 0), store.lastEventAt());
  if (store.subscriptionCount() === 0 && core.sockets.subscriptionIds().length === 0 && last + idleMs <= now) {
    void core.ctx.storage.deleteAlarm();
    void core.ctx.storage.deleteAll();
    core.memory.reset();
    core.log("topic.deleted", {});
    core.scheduleAlarm(); // live inspector sockets still end with their tokens
    return;
  }
  // Subscribed: look again a full idle period from now; otherwise when the quiet period ends.
  const due = store.subscriptionCount() > 0 ? now + idleMs : Math.max(last + idleMs, now + 1000);
  store.setDeadline("idle", "", due);
}

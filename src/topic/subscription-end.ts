// How a subscription ends (fhircast.hl7.org/STU3/2-4-Subscribing.html), whatever ends it: an unsubscribe, its lease, its socket's close, a
// frame too large, an unresponsive or stalled subscriber, or a socket that died with the runtime.
// Every one goes through `removeSubscription`, so the row, its deadlines, the alarm, the inspectors
// and the socket index always agree.
import type { Denial } from "../fhircast/wire";
import { socketClosed } from "../metrics";
import type { TopicCore } from "./core";
import { subscribersChanged } from "./inspector";
import { CLOSE, denyAndClose } from "./sockets";
import type { SubscriptionRow } from "./store";

/**
 * The one way a subscription ends: its row and deadlines go, the alarm and the inspectors follow,
 * and its socket leaves the index. Returns the socket, still open, for the caller to close.
 */
export function removeSubscription(core: TopicCore, id: string): WebSocket | undefined {
  core.ctx.storage.transactionSync(() => {
    core.store.deleteSubscription(id);
    core.touch(Date.now());
  });
  core.scheduleAlarm();
  core.sockets.toInspectors(subscribersChanged);
  const ws = core.sockets.get(id);
  core.sockets.forget(id);
  if (ws) socketClosed();
  return ws;
}

/** Removes a subscription; if its socket is open, sends the denial and closes it with 1000. */
export function endSubscription(core: TopicCore, row: SubscriptionRow, reason: string): void {
  const ws = removeSubscription(core, row.id);
  if (ws) denyAndClose(ws, denial(core, row.events, reason), CLOSE.normal);
}

export function denial(core: TopicCore, events: string, reason: string): Denial {
  return { "hub.mode": "denied", "hub.topic": core.topicName(), "hub.events": events, "hub.reason": reason };
}

/**
 * After a restart of the runtime, subscriptions may be marked connected whose sockets died with the
 * process (no close event is ever delivered for them). A dropped socket ends its subscription.
 */
export function reconcileSockets(core: TopicCore): void {
  const live = new Set(core.sockets.subscriptionIds());
  const dead = core.store.connectedSubscriptionIds().filter((id) => !live.has(id));
  if (dead.length === 0) return;
  core.ctx.storage.transactionSync(() => dead.forEach((id) => core.store.deleteSubscription(id)));
  core.log("subscriptions.reaped", { count: dead.length });
}

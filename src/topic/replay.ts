// The current context (fhircast.hl7.org/STU3/2-4-Subscribing.html, fhircast.hl7.org/STU3/2-9-GetCurrentContext.html): replayed to a socket when it connects (and for events a
// re-subscribe adds), and read by `GET {hub.url}/{topic}`.
import type { ContextEntry, CurrentContext, Notification } from "../fhircast/wire";
import { awaitAnswers, outOfSync } from "./answers";
import type { TopicCore } from "./core";
import { impliedOpens } from "./derive";
import { withVersion } from "./publish";
import { type AnchorChange, type Awaited, MAX_AWAITED, sendFrame } from "./sockets";

const EMPTY_CONTEXT: CurrentContext = { "context.type": "", context: [] };

/**
 * The current-context replay (fhircast.hl7.org/STU3/2-4-Subscribing.html): for each anchor type, the most recent open that has not been
 * closed, if its event is in `only`; in original order, with original id and timestamp and the
 * anchor's current versionId. When the newest open context is of an event the subscription does not
 * hold, the opens it implies follow (derived, fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html), as they would have been delivered live.
 */
export function replay(core: TopicCore, ws: WebSocket, sub: string, granted: Set<string>, only: Set<string>): void {
  if (only.size === 0 || !core.memory.hasStorage) return;
  const latestPerType = new Map<string, { event: Notification; version: string; seq: number; anchor: string }>();
  for (const row of core.store.latestContextPerType()) {
    latestPerType.set(row.anchor_type, { event: JSON.parse(row.open_event) as Notification, version: row.version_id, seq: row.opened_seq, anchor: row.anchor });
  }
  const chosen = [...latestPerType.entries()].sort(([, a], [, b]) => a.seq - b.seq);
  const sent: AnchorChange[] = [];
  // The replay is indistinguishable from live events (fhircast.hl7.org/STU3/2-4-Subscribing.html): each one is awaited like a live one.
  const due = Date.now() + core.config.ackTimeoutSeconds * 1000;
  const awaited: Awaited[] = [];
  for (const [type, c] of chosen) {
    if (!only.has(c.event.event["hub.event"])) continue;
    if (!sendFrame(ws, JSON.stringify(withVersion(c.event, c.version)))) continue;
    sent.push({ role: "open", type, id: c.anchor.slice(type.length + 1) });
    awaited.push([c.event.id, c.event.event["hub.event"], due]);
  }
  const newest = chosen[chosen.length - 1]?.[1];
  if (newest && !granted.has(newest.event.event["hub.event"])) {
    for (const d of impliedOpens(newest.event)) {
      if (!only.has(d.name) || sent.some((a) => a.type === d.anchorType && a.id === d.id)) continue;
      if (!sendFrame(ws, JSON.stringify(d.notification))) continue;
      sent.push({ role: "open", type: d.anchorType, id: d.id });
      awaited.push([d.notification.id, d.name, due]);
    }
  }
  const stalled = core.sockets.noteReplayed(sub, sent, awaited);
  if (awaited.length > 0) awaitAnswers(core, due);
  if (stalled) {
    const [id, name] = awaited[awaited.length - 1]!;
    outOfSync(core, sub, { eventId: id, eventName: name }, { kind: "stalled", pending: MAX_AWAITED + 1 }, true);
  }
}

/**
 * The current context: the most recent open's context exactly as opened, plus its content Bundle;
 * `eventName` is that open's event, for the caller's scope check.
 */
export function currentContext(core: TopicCore): { context: CurrentContext; eventName?: string } {
  if (!core.memory.hasStorage) return { context: EMPTY_CONTEXT };
  const anchor = core.store.currentAnchor();
  const row = anchor ? core.store.context(anchor) : undefined;
  if (!row) return { context: EMPTY_CONTEXT };
  const open = JSON.parse(row.open_event) as Notification;
  const content: ContextEntry = { key: "content", resource: core.store.contentBundle(row.anchor, row.version_id) };
  return {
    context: { "context.type": row.anchor_type, "context.versionId": row.version_id, context: [...open.event.context, content] },
    eventName: open.event["hub.event"],
  };
}

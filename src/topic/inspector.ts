// The inspector's side of the topic object (docs/inspector.md): the snapshot it reads over RPC, its
// live socket, and the frames that socket is sent. The open contexts and events of the snapshot are
// chosen within a byte budget by ./inspection.ts.
import { outcomeResponse } from "../http/responses";
import type { InspectorFrame, InspectView, Notification } from "../fhircast/wire";
import type { TopicCore } from "./core";
import { inspection } from "./inspection";

/** The path the Worker forwards the inspector's live socket to. */
export const INSPECTOR_PATH = "/inspect/live";
/** The header in which the Worker tells the topic when the inspector's token expires (ms since epoch). */
export const INSPECTOR_EXPIRES_HEADER = "X-Hub-Token-Expires";

/** A snapshot of the topic for the inspector: subscribers, open contexts, recent events. */
export function inspect(core: TopicCore): InspectView {
  const now = Date.now();
  if (!core.memory.hasStorage) return { topic: "", subscribers: [], contexts: [], events: [] };
  const atts = new Map(core.sockets.attachments().map((a) => [a.sub, a]));
  const current = core.store.currentAnchor();
  return {
    topic: core.topicName(),
    subscribers: core.store.subscriptions().map((r) => {
      const a = atts.get(r.id);
      return {
        id: r.id,
        name: r.name,
        events: r.events.split(","),
        connected: r.connected_at !== null,
        leaseSecondsLeft: r.connected_at === null || r.expires_at === null ? null : Math.max(0, Math.round((r.expires_at - now) / 1000)),
        pendingAcks: (a?.pending?.length ?? 0) + (a?.awaiting?.length ?? 0),
        missedAcks: a?.misses ?? 0,
        lastSyncError: a?.lastSyncError ?? null,
      };
    }),
    // Open contexts and recent events within a byte budget, whatever the topic holds.
    ...inspection(core.store, core.topicName(), current),
  };
}

/**
 * The inspector's live socket. The Worker checked the caller's inspect scope before forwarding and
 * says when the token expires (INSPECTOR_EXPIRES_HEADER): the socket is closed then (1008 "token
 * expired"), as a subscriber's lease ends with its token. At most MAX_INSPECTORS_PER_TOPIC at once.
 */
export function acceptInspector(core: TopicCore, request: Request): Response {
  const max = core.config.maxInspectorsPerTopic;
  if (core.sockets.inspectorCount() >= max) {
    core.log("inspector.refused", { inspectors: max }, "warn");
    return outcomeResponse(403, "too-costly", `this topic already has ${max} live inspector sockets (MAX_INSPECTORS_PER_TOPIC)`);
  }
  const raw = request.headers.get(INSPECTOR_EXPIRES_HEADER);
  const expiresAt = raw ? Number(raw) : undefined;
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  core.sockets.acceptInspector(server, expiresAt !== undefined && Number.isFinite(expiresAt) ? expiresAt : undefined);
  core.scheduleAlarm();
  return new Response(null, { status: 101, webSocket: client });
}

/** The frame that shows the inspector an accepted event. */
export function inspectorEvent(seq: number, acceptedAt: number, event: Notification): string {
  const frame: InspectorFrame = { type: "event", seq, acceptedAt: new Date(acceptedAt).toISOString(), event };
  return JSON.stringify(frame);
}

/** The frame that tells the inspector to read the subscribers again. */
export function subscribersChanged(): string {
  const frame: InspectorFrame = { type: "changed", what: "subscribers" };
  return JSON.stringify(frame);
}

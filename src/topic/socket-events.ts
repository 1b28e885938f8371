// What sockets send and how they close (the hibernation API's webSocketMessage, webSocketClose and
// webSocketError): acknowledgements from subscribers, `{seen}` answers from inspectors, frames too
// large, and closes, which end the subscription (spec note A39).
import type { Ack } from "../fhircast/wire";
import { outOfSync, receiveAnswer } from "./answers";
import type { TopicCore } from "./core";
import { closeSocket } from "./sockets";
import { removeSubscription } from "./subscription-end";

/** Largest frame a subscriber may send; acknowledgements are tiny. The socket is closed (1009) above it. */
export const MAX_FRAME_BYTES = 16_384;

/**
 * Acknowledgements `{id, status}` are the only frame subscribers send (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html). `status` may be a
 * number, a string or absent (success). Anything else is ignored, never thrown on (OHIF, for one,
 * sends {"hub.channel.endpoint": …} after connecting).
 */
export function receiveFrame(core: TopicCore, ws: WebSocket, message: string | ArrayBuffer): void {
  if (frameBytes(message) > MAX_FRAME_BYTES) {
    refuseFrame(core, ws);
    return;
  }
  if (typeof message !== "string") return;
  if (core.sockets.noteInspectorSeen(ws, message)) return;
  if (!core.memory.hasStorage) return;
  const parsed = parseAck(message);
  if (!parsed) return;
  const att = core.sockets.attachment(ws);
  if (!att) return;
  receiveAnswer(core, att.sub, parsed);
}

/**
 * An oversized frame: the hub ends the subscription and closes with 1009. The subscription is
 * removed first, so the echoed close is not mistaken for the subscriber's abnormal close.
 */
function refuseFrame(core: TopicCore, ws: WebSocket): void {
  const att = core.sockets.attachment(ws);
  const row = att && core.memory.hasStorage ? core.store.subscription(att.sub) : undefined;
  if (row) {
    removeSubscription(core, row.id);
    core.log("frame.refused", { sub: row.id }, "warn");
  }
  closeSocket(ws, 1009, `frames over ${MAX_FRAME_BYTES} bytes are refused`);
}

/**
 * A socket that closed ends its subscription (spec note A39). A close by the subscriber with a code other than
 * 1000/1001 is a SyncError (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html); closes the hub started are not.
 */
export function dropSocket(core: TopicCore, ws: WebSocket, code: number): void {
  const { store, sockets } = core;
  if (sockets.isInspector(ws)) {
    sockets.forgetInspector(ws);
    reciprocateClose(ws, code);
    return;
  }
  const att = sockets.attachment(ws);
  if (!att || !core.memory.hasStorage) return;
  const row = store.subscription(att.sub);
  if (row && code !== 1000 && code !== 1001) {
    const pendingSeq = att.pending?.[0];
    const awaited = att.awaiting?.[0];
    const failed =
      (pendingSeq !== undefined ? store.eventBySeq(pendingSeq) : undefined) ??
      (awaited ? { id: awaited[0], name: awaited[1] } : undefined) ??
      store.lastEventOf(att.events);
    outOfSync(core, att.sub, { eventId: failed?.id ?? "none", eventName: failed?.name ?? "none" }, { kind: "closed", code }, false);
  }
  if (row) {
    removeSubscription(core, att.sub);
    core.log("disconnect", { sub: att.sub, code });
  } else {
    sockets.forget(att.sub);
  }
  reciprocateClose(ws, code);
}

/** Answers a close with the same code; 1005, 1006 and 1015 must never be sent in a close frame. */
function reciprocateClose(ws: WebSocket, code: number): void {
  if (code !== 1005 && code !== 1006 && code !== 1015) closeSocket(ws, code, "");
}

/** A frame's size in bytes, counted exactly only when it can matter (a UTF-8 character takes up to 3). */
function frameBytes(message: string | ArrayBuffer): number {
  if (typeof message !== "string") return message.byteLength;
  return message.length * 3 <= MAX_FRAME_BYTES ? message.length : new TextEncoder().encode(message).byteLength;
}

/** An acknowledgement `{id, status?}` (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html), or undefined for any other frame (ignored, never thrown). */
function parseAck(message: string): Ack | undefined {
  try {
    const v = JSON.parse(message) as { id?: unknown; status?: unknown };
    if (typeof v.id !== "string" || v.id === "") return undefined;
    if (v.status !== undefined && typeof v.status !== "number" && typeof v.status !== "string") return undefined;
    return { id: v.id, status: v.status as Ack["status"] };
  } catch {
    return undefined;
  }
}

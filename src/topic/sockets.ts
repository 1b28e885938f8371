// The topic object's connected subscribers: an in-memory index over hibernatable WebSockets, rebuilt
// from each socket's attachment when the object wakes. The attachment is what survives hibernation
// with the socket; this map saves deserializing it per frame. The changes every event makes (a seq
// now owed, an answer, the last open received) are written to the attachment together, at most
// ATTACHMENT_FLUSH_MS later, not one write per change (docs/decisions.md "Socket attachments").
import type { Denial } from "../fhircast/wire";

/** What each socket carries across hibernation (serializeAttachment, ≤ 16 KB). */
export interface SocketAttachment {
  /** Subscription id; also the socket's tag. */
  sub: string;
  /** Canonical event names the subscription was granted. */
  events: string[];
  name?: string;
  /** Event-log seqs delivered to this socket and not yet acknowledged (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html), oldest first. */
  pending?: number[];
  /** The frame size of each of `pending` (same order), for the SOCKET_BUFFER_BYTES budget. */
  pendingBytes?: number[];
  /**
   * Replayed and derived events delivered to this socket and not yet answered, oldest first: their id,
   * name, and when the answer is due. They are not (or not newly) in the event log, so `pending` cannot
   * hold them; they are judged exactly like live events (docs/decisions.md "Synchronization").
   */
  awaiting?: Awaited[];
  /** Consecutive hub-generated SyncErrors for missed acknowledgements (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html "unresponsive"). */
  misses?: number;
  /** Per anchor type, the id of the last open this socket received: derived opens are not repeated. */
  opened?: Record<string, string>;
  /** The last SyncError the hub raised about this subscriber, for the inspector. */
  lastSyncError?: { reason: string; at: string };
}

/** A replayed or derived event a socket owes an answer to: [id, event name, due (ms)]. Compact: it lives in the attachment. */
export type Awaited = [id: string, name: string, due: number];

/**
 * Most replayed and derived events a socket may owe answers to at once (each takes about 80 bytes of
 * its ≤ 16 KB attachment). A subscriber that falls this far behind is stalled, like one past MAX_PENDING_ACKS.
 */
export const MAX_AWAITED = 64;

/** Tag and attachment of the inspector's live sockets (not subscribers). */
export const INSPECTOR_TAG = "inspector";

/** What an inspector's live socket carries: `exp`, its token's expiry (ms), when the token has one. */
interface InspectorAttachment {
  inspector: true;
  exp?: number;
}

function inspectorAttachment(ws: WebSocket): InspectorAttachment | undefined {
  try {
    return (ws.deserializeAttachment() as InspectorAttachment | null) ?? undefined;
  } catch {
    return undefined;
  }
}

/** The anchor an open or close event concerns, to keep each socket's `opened` up to date. */
export interface AnchorChange {
  role: "open" | "close";
  type: string;
  id: string;
}

interface Entry {
  ws: WebSocket;
  att: SocketAttachment;
  events: Set<string>;
  /** The sum of `att.pendingBytes`: what the subscriber owes acknowledgements for, in bytes. */
  owed: number;
}

/** A subscriber the hub stopped sending to: `bytes` set when the byte budget (not the count) was exceeded. */
export interface Stalled {
  sub: string;
  pending: number;
  bytes?: number;
}

/** WebSocket close codes (RFC 6455) the hub uses; see docs/decisions.md. */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
} as const;

/**
 * Most unacknowledged events the hub tracks per socket. A subscriber that falls this far behind is
 * stalled: the hub stops buffering for it and disconnects it (with a SyncError).
 */
export const MAX_PENDING_ACKS = 256;

/**
 * What the runtime still holds unsent for a socket (`bufferedAmount`; 0 where a runtime lacks it).
 * workerd counts only its own queue, not what already went into TCP buffers or a proxy's.
 */
export function unsentBytes(ws: WebSocket): number {
  const n = (ws as { bufferedAmount?: number }).bufferedAmount;
  return typeof n === "number" && Number.isFinite(n) ? n : 0;
}

/**
 * Whether sending `bytes` more to a socket would exceed `budget`: its unacknowledged events (`owed`,
 * subscribers only) or what the runtime has not written yet. One frame always goes to a socket that
 * owes nothing, so an event larger than the budget still reaches a subscriber that keeps up.
 */
export function overBudget(owed: number, unsent: number, bytes: number, budget: number): boolean {
  return (owed > 0 && owed + bytes > budget) || (unsent > 0 && unsent + bytes > budget);
}

/**
 * How long an in-memory attachment change may wait before it is written. Two writes per recipient
 * and event (delivery, answer) were a measurable share of the server's CPU per event on a busy topic
 * (docs/performance.md "Socket attachments"); a pending write keeps the object awake (it is not
 * hibernated with work scheduled), so nothing is lost to hibernation.
 */
export const ATTACHMENT_FLUSH_MS = 25;

/** Close reasons are limited to 123 bytes by the protocol. */
export function closeReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  return bytes.length <= 123 ? reason : new TextDecoder().decode(bytes.slice(0, 120)).replace(/\uFFFD$/, "");
}

export class SocketIndex {
  private entries: Map<string, Entry> | undefined;
  private inspectorSockets: WebSocket[] | undefined;
  /**
   * Per inspector socket, the event frames it has not answered yet (seq → size). In memory only: after
   * a wake it starts again from nothing owed, which errs on the side of keeping a watcher.
   */
  private inspectorOwed = new WeakMap<WebSocket, { bySeq: Map<number, number>; total: number }>();

  /** `budget`: SOCKET_BUFFER_BYTES, the most a socket may owe before the hub stops sending to it. */
  constructor(
    private readonly ctx: DurableObjectState,
    private readonly budget: number = Infinity,
  ) {}

  /** The same entries by socket, so that an acknowledgement finds its subscriber in O(1). */
  private bySocket = new WeakMap<WebSocket, Entry>();
  /** Entries whose attachment changed in memory and is not written yet. */
  private dirty = new Set<Entry>();
  private flushScheduled = false;

  /** Marks an entry's attachment for the next flush, scheduling one when none is. */
  private changed(e: Entry): void {
    this.dirty.add(e);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // waitUntil: an eviction that drains in-flight work (the test runtime's) also waits for the write.
    this.ctx.waitUntil(new Promise<void>((resolve) => setTimeout(() => {
      this.flush();
      resolve();
    }, ATTACHMENT_FLUSH_MS)));
  }

  /** Writes every changed attachment now. */
  private flush(): void {
    this.flushScheduled = false;
    for (const e of this.dirty) write(e);
    this.dirty.clear();
  }

  /** Writes one entry's attachment now (and drops it from the pending writes). */
  private writeNow(e: Entry): void {
    this.dirty.delete(e);
    write(e);
  }

  private all(): Map<string, Entry> {
    if (!this.entries) {
      this.entries = new Map();
      for (const ws of this.ctx.getWebSockets()) {
        const att = ws.deserializeAttachment() as SocketAttachment | null;
        if (att?.sub) this.index({ ws, att, events: new Set(att.events), owed: sum(att.pendingBytes) });
      }
    }
    return this.entries;
  }

  private index(e: Entry): void {
    this.entries!.set(e.att.sub, e);
    this.bySocket.set(e.ws, e);
  }

  /** Accepts a socket for a subscription (hibernation API; tagged with the subscription id). */
  accept(ws: WebSocket, att: SocketAttachment): void {
    this.ctx.acceptWebSocket(ws, [att.sub]);
    ws.serializeAttachment(att);
    this.all();
    this.index({ ws, att, events: new Set(att.events), owed: sum(att.pendingBytes) });
  }

  /** Changes a connected subscription's events and name (re-subscribe), keeping its ack state. */
  update(sub: string, events: string[], name: string | undefined): void {
    const e = this.all().get(sub);
    if (!e) return;
    e.att = { ...e.att, events, ...(name ? { name } : {}) };
    e.events = new Set(events);
    this.writeNow(e);
  }

  get(sub: string): WebSocket | undefined {
    return this.all().get(sub)?.ws;
  }

  /** The in-memory attachment of a socket (falls back to the stored one for a socket not indexed). */
  attachment(ws: WebSocket): SocketAttachment | undefined {
    this.all();
    const e = this.bySocket.get(ws);
    if (e) return e.att;
    const att = ws.deserializeAttachment() as SocketAttachment | null;
    return att?.sub ? (this.all().get(att.sub)?.att ?? att) : undefined;
  }

  forget(sub: string): void {
    const e = this.all().get(sub);
    if (e) this.dirty.delete(e);
    this.all().delete(sub);
  }

  subscriptionIds(): string[] {
    return [...this.all().keys()];
  }

  /**
   * Sends one already-serialized frame to every socket subscribed to `eventName`, except `exclude`.
   * With `track`, records the event's seq as awaiting acknowledgement, and sends nothing to a socket
   * for which the frame would exceed the byte budget (SOCKET_BUFFER_BYTES: its unacknowledged events,
   * or what the runtime has not sent yet). Returns the count sent and the stalled subscriptions: over
   * the budget (not sent) or past MAX_PENDING_ACKS. Recipients' attachments are written by the next flush.
   */
  broadcast(
    eventName: string,
    frame: string,
    opts: { track?: number; exclude?: string; anchor?: AnchorChange } = {},
  ): { sent: number; stalled: Stalled[] } {
    let sent = 0;
    const stalled: Stalled[] = [];
    // Characters of the JSON frame: its bytes when ASCII (most of an event), an estimate otherwise.
    const bytes = frame.length;
    for (const [sub, e] of this.all()) {
      if (!e.events.has(eventName) || sub === opts.exclude) continue;
      if (opts.track !== undefined && overBudget(e.owed, unsentBytes(e.ws), bytes, this.budget)) {
        stalled.push({ sub, pending: e.att.pending?.length ?? 0, bytes: Math.max(e.owed, unsentBytes(e.ws)) + bytes });
        continue;
      }
      if (!sendFrame(e.ws, frame)) continue;
      sent++;
      let changed = false;
      if (opts.track !== undefined) {
        const pending = (e.att.pending ??= []);
        pending.push(opts.track);
        const sizes = (e.att.pendingBytes ??= []);
        // Seqs delivered before sizes were kept (an older version's attachment) count as 0 bytes.
        while (sizes.length < pending.length - 1) sizes.unshift(0);
        sizes.push(bytes);
        e.owed += bytes;
        changed = true;
        if (pending.length > MAX_PENDING_ACKS) stalled.push({ sub, pending: pending.length });
      }
      if (opts.anchor) changed = noteAnchor(e.att, opts.anchor) || changed;
      if (changed) this.changed(e);
    }
    return { sent, stalled };
  }

  /**
   * Sends a derived open to the sockets subscribed to it but not to the event that implied it, unless
   * their last open of that anchor type was for the same resource (no duplicates, fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html).
   */
  broadcastDerived(
    derived: { name: string; anchorType: string; id: string },
    frame: string,
    impliedBy: string,
    awaited: { id: string; due: number },
  ): { sent: number; stalled: string[] } {
    let sent = 0;
    const stalled: string[] = [];
    for (const [sub, e] of this.all()) {
      if (!e.events.has(derived.name) || e.events.has(impliedBy)) continue;
      if (e.att.opened?.[derived.anchorType] === derived.id) continue;
      if (!sendFrame(e.ws, frame)) continue;
      sent++;
      noteAnchor(e.att, { role: "open", type: derived.anchorType, id: derived.id });
      // Awaited like any event it receives (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html): a refusal or a silence is a SyncError.
      const list = (e.att.awaiting ??= []);
      list.push([awaited.id, derived.name, awaited.due]);
      if (list.length > MAX_AWAITED) stalled.push(sub);
      this.changed(e);
    }
    return { sent, stalled };
  }

  /**
   * Records opens replayed to a socket on connect, as if delivered live: their anchors, and the answers
   * now owed (`awaited`). Returns whether the socket now owes more than MAX_AWAITED (stalled).
   */
  noteReplayed(sub: string, anchors: AnchorChange[], awaited: Awaited[]): boolean {
    const e = this.all().get(sub);
    if (!e || anchors.length === 0) return false;
    for (const a of anchors) noteAnchor(e.att, a);
    if (awaited.length > 0) (e.att.awaiting ??= []).push(...awaited);
    this.writeNow(e);
    return (e.att.awaiting?.length ?? 0) > MAX_AWAITED;
  }

  /**
   * Records a subscriber's answer to a replayed or derived event `id`; returns that event's name, or
   * undefined when the socket owed no answer to it (so each is judged once, like `answer`).
   */
  answerAwaited(sub: string, id: string, success: boolean): string | undefined {
    const e = this.all().get(sub);
    const i = e?.att.awaiting?.findIndex((a) => a[0] === id) ?? -1;
    if (!e || i < 0) return undefined;
    const [[, name]] = e.att.awaiting!.splice(i, 1) as [Awaited];
    if (success) e.att.misses = 0;
    this.changed(e);
    return name;
  }

  /**
   * Replayed and derived events whose answer is overdue at `now`, per subscriber (each miss recorded
   * and the entry dropped), and when the next one falls due (undefined when none is awaited).
   */
  takeOverdueAwaited(now: number): { missed: { sub: string; id: string; name: string; due: number }[]; next: number | undefined } {
    const missed: { sub: string; id: string; name: string; due: number }[] = [];
    let next: number | undefined;
    for (const [sub, e] of this.all()) {
      const list = e.att.awaiting;
      if (!list || list.length === 0) continue;
      const keep: Awaited[] = [];
      for (const a of list) {
        if (a[2] > now) {
          keep.push(a);
          next = Math.min(next ?? Infinity, a[2]);
          continue;
        }
        e.att.misses = (e.att.misses ?? 0) + 1;
        missed.push({ sub, id: a[0], name: a[1], due: a[2] });
      }
      if (keep.length === list.length) continue;
      e.att.awaiting = keep;
      this.writeNow(e);
    }
    return { missed, next };
  }

  /**
   * Records a subscriber's answer to event `seq`; returns false when that event was not awaiting an
   * answer from it (unknown, already answered, or never sent), so each event is judged once.
   */
  answer(sub: string, seq: number, success: boolean): boolean {
    const e = this.all().get(sub);
    const i = e?.att.pending?.indexOf(seq) ?? -1;
    if (!e || i < 0) return false;
    e.att.pending!.splice(i, 1);
    settle(e, i);
    if (success) e.att.misses = 0;
    this.changed(e);
    return true;
  }

  /** Subscriptions still awaiting an answer to `seq`; the miss is recorded and the seq dropped. */
  takeMissed(seq: number): { sub: string; misses: number }[] {
    const out: { sub: string; misses: number }[] = [];
    for (const [sub, e] of this.all()) {
      const i = e.att.pending?.indexOf(seq) ?? -1;
      if (i < 0) continue;
      e.att.pending!.splice(i, 1);
      settle(e, i);
      e.att.misses = (e.att.misses ?? 0) + 1;
      this.writeNow(e);
      out.push({ sub, misses: e.att.misses });
    }
    return out;
  }

  /** A subscriber's count of consecutive missed answers (0 when unknown). */
  misses(sub: string): number {
    return this.all().get(sub)?.att.misses ?? 0;
  }

  /** Every subscriber's attachment, for the inspector. */
  attachments(): SocketAttachment[] {
    return [...this.all().values()].map((e) => e.att);
  }

  noteSyncError(sub: string, reason: string, at: string): void {
    const e = this.all().get(sub);
    if (!e) return;
    e.att.lastSyncError = { reason, at };
    this.writeNow(e);
  }

  // ---- the inspector's live sockets ----------------------------------------------------------
  // Each carries its token's expiry in its attachment (it survives hibernation); the topic's alarm
  // and every send check it, so a live socket never outlives its token (docs/decisions.md).
  private inspectors(): WebSocket[] {
    return (this.inspectorSockets ??= this.ctx.getWebSockets(INSPECTOR_TAG));
  }
  acceptInspector(ws: WebSocket, expiresAt: number | undefined): void {
    this.ctx.acceptWebSocket(ws, [INSPECTOR_TAG]);
    const att: InspectorAttachment = { inspector: true, ...(expiresAt !== undefined ? { exp: expiresAt } : {}) };
    ws.serializeAttachment(att);
    this.inspectors().push(ws);
  }
  isInspector(ws: WebSocket): boolean {
    return inspectorAttachment(ws)?.inspector === true;
  }
  forgetInspector(ws: WebSocket): void {
    this.inspectorSockets = this.inspectors().filter((w) => w !== ws);
    this.inspectorOwed.delete(ws);
  }
  /**
   * An inspector's answer `{seen}` (InspectorSeen): every event frame up to that seq was read. Returns
   * false for a socket that is not a live inspector (then the frame is a subscriber's), cheaply.
   */
  noteInspectorSeen(ws: WebSocket, message: string): boolean {
    const list = this.inspectors();
    if (list.length === 0 || !list.includes(ws)) return false;
    const seen = parseSeen(message);
    const owed = this.inspectorOwed.get(ws);
    if (seen === undefined || !owed) return true;
    for (const [seq, bytes] of owed.bySeq) {
      if (seq > seen) break;
      owed.bySeq.delete(seq);
      owed.total -= bytes;
    }
    return true;
  }
  /** How many live inspector sockets the topic has (MAX_INSPECTORS_PER_TOPIC caps it). */
  inspectorCount(): number {
    return this.inspectors().length;
  }
  /** The earliest token expiry among the live inspector sockets, for the topic's alarm. */
  nextInspectorExpiry(): number | undefined {
    let next: number | undefined;
    for (const ws of this.inspectors()) {
      const exp = inspectorAttachment(ws)?.exp;
      if (exp !== undefined && (next === undefined || exp < next)) next = exp;
    }
    return next;
  }
  /** Closes (1008 "token expired") and forgets every inspector socket whose token expired by `now`. */
  expireInspectors(now: number): number {
    const expired = this.inspectors().filter((ws) => (inspectorAttachment(ws)?.exp ?? Infinity) <= now);
    for (const ws of expired) {
      this.forgetInspector(ws);
      closeSocket(ws, CLOSE.policy, "token expired");
    }
    return expired.length;
  }
  /**
   * Sends a frame to every inspector socket (usually none: then this costs one array check). A socket
   * whose token expired is closed instead, even if the alarm that would close it has not run yet. An
   * event frame (`seq`) is owed an answer; one that would take an inspector's unanswered event frames
   * (or what the runtime has not sent) over the byte budget is not sent, and the socket is closed.
   */
  toInspectors(frame: () => string, seq?: number): void {
    if (this.inspectors().length === 0) return;
    this.expireInspectors(Date.now());
    const list = this.inspectors();
    if (list.length === 0) return;
    const f = frame();
    for (const ws of list) {
      let owed = this.inspectorOwed.get(ws);
      if (seq !== undefined && overBudget(owed?.total ?? 0, unsentBytes(ws), f.length, this.budget)) {
        this.forgetInspector(ws);
        closeSocket(ws, CLOSE.policy, "stopped reading: over SOCKET_BUFFER_BYTES unanswered");
        continue;
      }
      if (!sendFrame(ws, f) || seq === undefined) continue;
      if (!owed) this.inspectorOwed.set(ws, (owed = { bySeq: new Map(), total: 0 }));
      owed.bySeq.set(seq, f.length);
      owed.total += f.length;
    }
  }
}

/** An inspector's `{seen: seq}` (InspectorSeen), or undefined for anything else (ignored, never thrown). */
function parseSeen(message: string): number | undefined {
  try {
    const v = JSON.parse(message) as { seen?: unknown };
    return typeof v.seen === "number" && Number.isInteger(v.seen) ? v.seen : undefined;
  } catch {
    return undefined;
  }
}

function sum(values: number[] | undefined): number {
  return (values ?? []).reduce((a, b) => a + b, 0);
}

/** Drops the size of the `i`th pending event (answered or missed) from what the subscriber owes. */
function settle(e: Entry, i: number): void {
  const [bytes] = e.att.pendingBytes?.splice(i, 1) ?? [];
  e.owed = Math.max(0, e.owed - (bytes ?? 0));
}

/** Updates `att.opened` for an open or close it received; returns whether anything changed. */
function noteAnchor(att: SocketAttachment, a: AnchorChange): boolean {
  if (a.role === "open") {
    if (att.opened?.[a.type] === a.id) return false;
    (att.opened ??= {})[a.type] = a.id;
    return true;
  }
  if (att.opened?.[a.type] !== a.id) return false;
  delete att.opened[a.type];
  return true;
}

/** Writes an entry's attachment; a socket that has closed meanwhile has nothing left to keep. */
function write(e: Entry): void {
  try {
    e.ws.serializeAttachment(e.att);
  } catch {
    // closed
  }
}

/** Sends a text frame; a socket that is already closing is skipped, never thrown on. */
export function sendFrame(ws: WebSocket, frame: string): boolean {
  try {
    ws.send(frame);
    return true;
  } catch {
    return false;
  }
}

/** Closes a socket, tolerating one that is already closed. */
export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, closeReason(reason));
  } catch {
    // already closed
  }
}

/**
 * The one way a socket is refused or ended with a reason (fhircast.hl7.org/STU3/2-4-Subscribing.html): the denial frame, then the
 * close with `code` (1000 after an unsubscribe or an expiry, 1008 for a refused endpoint).
 */
export function denyAndClose(ws: WebSocket, denial: Denial, code: number): void {
  sendFrame(ws, JSON.stringify(denial));
  closeSocket(ws, code, denial["hub.reason"] ?? "");
}

/** An upgrade answered with a refusal: the socket is accepted only to carry the denial and its close (1008). */
export function refusedUpgrade(denial: Denial): Response {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  denyAndClose(server, denial, CLOSE.policy);
  return new Response(null, { status: 101, webSocket: client });
}

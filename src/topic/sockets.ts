// The topic object's connected subscribers: an in-memory index over hibernatable WebSockets, rebuilt
// from each socket's attachment when the object wakes (the attachment is the truth, not this map).

/** What each socket carries across hibernation (serializeAttachment, ≤ 16 KB). */
export interface SocketAttachment {
  /** Subscription id; also the socket's tag. */
  sub: string;
  /** Canonical event names the subscription was granted. */
  events: string[];
  name?: string;
}

interface Entry {
  ws: WebSocket;
  att: SocketAttachment;
  events: Set<string>;
}

/** WebSocket close codes (RFC 6455) the hub uses; see docs/decisions.md. */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
} as const;

/** Close reasons are limited to 123 bytes by the protocol. */
export function closeReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  return bytes.length <= 123 ? reason : new TextDecoder().decode(bytes.slice(0, 120)).replace(/\uFFFD$/, "");
}

export class SocketIndex {
  private entries: Map<string, Entry> | undefined;

  constructor(private readonly ctx: DurableObjectState) {}

  private all(): Map<string, Entry> {
    if (!this.entries) {
      this.entries = new Map();
      for (const ws of this.ctx.getWebSockets()) {
        const att = ws.deserializeAttachment() as SocketAttachment | null;
        if (att?.sub) this.entries.set(att.sub, { ws, att, events: new Set(att.events) });
      }
    }
    return this.entries;
  }

  /** Accepts a socket for a subscription (hibernation API; tagged with the subscription id). */
  accept(ws: WebSocket, att: SocketAttachment): void {
    this.ctx.acceptWebSocket(ws, [att.sub]);
    ws.serializeAttachment(att);
    this.all().set(att.sub, { ws, att, events: new Set(att.events) });
  }

  /** Changes a connected subscription's events (re-subscribe). */
  update(att: SocketAttachment): void {
    const e = this.all().get(att.sub);
    if (!e) return;
    e.ws.serializeAttachment(att);
    e.att = att;
    e.events = new Set(att.events);
  }

  get(sub: string): WebSocket | undefined {
    return this.all().get(sub)?.ws;
  }

  attachment(ws: WebSocket): SocketAttachment | undefined {
    const att = ws.deserializeAttachment() as SocketAttachment | null;
    return att?.sub ? att : undefined;
  }

  forget(sub: string): void {
    this.all().delete(sub);
  }

  has(sub: string): boolean {
    return this.all().has(sub);
  }

  subscriptionIds(): string[] {
    return [...this.all().keys()];
  }

  /** Sends one already-serialized frame to every socket subscribed to `eventName`; returns the count. */
  broadcast(eventName: string, frame: string): number {
    let n = 0;
    for (const e of this.all().values()) {
      if (!e.events.has(eventName)) continue;
      if (sendFrame(e.ws, frame)) n++;
    }
    return n;
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

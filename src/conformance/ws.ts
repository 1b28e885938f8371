// WebSocket helper of the conformance kit: a subscriber's socket with a queue of parsed frames,
// automatic acknowledgements (optional) and bounded waits. Uses the WebSocket constructor it is given
// (the CLI passes the `ws` package's on Node 20, which has no global one) or the global WebSocket.
import { isObject as isFrameObject } from "./http.ts";
import { brief, fail, rootCause, TransportError } from "./outcome.ts";

/** A WHATWG-style WebSocket constructor: the global one, or the `ws` package's (same event API). */
export type WebSocketConstructor = new (url: string) => WebSocket;

// readyState values (WHATWG and `ws` alike), not read from the global WebSocket, which may not exist.
const OPEN = 1;
const CONNECTING = 0;
const CLOSING = 2;

/** Abnormal closure (RFC 6455 §7.4.1): the connection dropped without a close frame. */
const ABNORMAL = 1006;

export interface Frame {
  /** Parsed JSON, or undefined when the frame was not JSON text. */
  json: unknown;
  raw: string;
  binary: boolean;
  at: number;
}

export interface AckPolicy {
  /** Acknowledge every notification as it arrives (default true). */
  auto: boolean;
  /** The `status` to send; `undefined` omits it. */
  status?: number | string;
}

export class HubSocket {
  readonly url: string;
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  /** When the close event fired (the closing handshake and the TCP connection are done), ms. */
  closedAt: number | undefined;
  /** Whether the opening handshake completed. */
  opened = false;
  /** The cause of the socket's error event, when the implementation gives one (`ws` does: ECONNREFUSED …). */
  error: { message: string; code?: string } | undefined;
  ack: AckPolicy = { auto: true, status: 200 };
  private readonly ws: WebSocket;
  private waiters: (() => void)[] = [];
  private closeCalled = false;

  constructor(url: string, webSocket: WebSocketConstructor | undefined = globalThis.WebSocket) {
    this.url = url;
    if (!webSocket) throw new Error("this runtime has no global WebSocket: pass KitOptions.webSocket (e.g. the ws package's)");
    this.ws = new webSocket(url);
    this.ws.addEventListener("open", () => {
      this.opened = true;
      this.wake();
    });
    this.ws.addEventListener("message", (e: MessageEvent) => {
      const binary = typeof e.data !== "string";
      const raw = typeof e.data === "string" ? e.data : "<binary frame>";
      let json: unknown;
      try {
        json = binary ? undefined : (JSON.parse(raw) as unknown);
      } catch {
        json = undefined;
      }
      this.frames.push({ json, raw, binary, at: Date.now() });
      if (this.ack.auto && isFrameObject(json) && typeof json.id === "string" && isFrameObject(json.event)) {
        this.sendAck(json.id, this.ack.status);
      }
      this.wake();
    });
    this.ws.addEventListener("close", (e: CloseEvent) => {
      this.closed = { code: e.code, reason: e.reason };
      this.closedAt = Date.now();
      this.wake();
    });
    this.ws.addEventListener("error", (e: Event) => {
      const cause = rootCause((e as Event & { error?: unknown }).error ?? (e as Event & { message?: unknown }).message);
      if (cause.message || cause.code) this.error = cause;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `cond` holds or `timeoutMs` passes (re-checked on every event and every 50 ms). */
  async until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return true;
  }

  /**
   * Resolves once open; throws a TransportError if the handshake does not complete (the runner then
   * tells a refused endpoint, a failed check, from a hub that is gone).
   */
  async waitOpen(timeoutMs: number): Promise<void> {
    await this.until(() => this.opened || this.closed !== undefined, timeoutMs);
    if (!this.opened) {
      const why = this.closed ? ` (closed ${this.closed.code} ${this.closed.reason})`.replace(/ \)$/, ")") : ` within ${timeoutMs} ms`;
      throw new TransportError(`WebSocket ${this.url} did not open${why}${this.describeError()}`, this.error?.code ?? (this.closed ? undefined : "TIMEOUT"));
    }
  }

  /** The error event's cause, for messages: " (connect ECONNREFUSED 127.0.0.1:8787)", or "". */
  private describeError(): string {
    return this.error?.message ? `: ${this.error.message}` : "";
  }

  /** JSON frames received so far. */
  get messages(): unknown[] {
    return this.frames.map((f) => f.json);
  }

  /** Event notifications (frames with `event`) received so far. */
  get notifications(): Record<string, any>[] {
    return this.frames.map((f) => f.json).filter((j): j is Record<string, any> => isFrameObject(j) && isFrameObject(j.event));
  }

  find(pred: (frame: Record<string, any>) => boolean, from = 0): Record<string, any> | undefined {
    for (const f of this.frames.slice(from)) if (isFrameObject(f.json) && pred(f.json)) return f.json;
    return undefined;
  }

  /** Waits for a JSON frame matching `pred` (searching from frame index `from`). */
  async waitFor(pred: (frame: Record<string, any>) => boolean, timeoutMs: number, what: string, from = 0): Promise<Record<string, any>> {
    let found: Record<string, any> | undefined;
    await this.until(() => (found = this.find(pred, from)) !== undefined || this.closed !== undefined, timeoutMs);
    found ??= this.find(pred, from);
    if (!found) {
      const state = this.closed ? `socket closed (${this.closed.code} ${this.closed.reason})` : `nothing within ${timeoutMs} ms`;
      const message = `expected ${what}: ${state}; frames received: ${brief(this.messages, 600)}`;
      // A connection that dropped without a close frame may be a hub that is gone: the runner asks.
      if (this.closed?.code === ABNORMAL) throw new TransportError(`${message}${this.describeError()}`, this.error?.code);
      fail(message);
    }
    return found;
  }

  /** The first frame (the confirmation or a denial). */
  async first(timeoutMs: number): Promise<Record<string, any>> {
    return this.waitFor(() => true, timeoutMs, "a first frame (subscription confirmation)");
  }

  /** Waits for the event notification with id `id`. */
  waitEvent(id: string, timeoutMs: number, what = `the event with id ${id}`): Promise<Record<string, any>> {
    return this.waitFor((f) => isFrameObject(f.event) && f.id === id, timeoutMs, what);
  }

  /**
   * Whether the hub has closed the connection: the close event, or the hub's close frame (the socket
   * went to CLOSING without this side calling close(); the TCP teardown may follow much later).
   */
  get closedByPeer(): boolean {
    return this.closed !== undefined || (!this.closeCalled && this.ws.readyState === CLOSING);
  }

  /**
   * Waits until the hub closes the connection (close event or close frame, see closedByPeer); returns
   * the code and reason (code 0 while only the close frame is known), or undefined on timeout.
   */
  async waitClose(timeoutMs: number): Promise<{ code: number; reason: string } | undefined> {
    await this.until(() => this.closedByPeer, timeoutMs);
    if (this.closed) return this.closed;
    return this.closedByPeer ? { code: 0, reason: "close frame received, TCP connection not yet closed" } : undefined;
  }

  /** How the connection ended, for notes. */
  describeClose(c: { code: number; reason: string }): string {
    return c.code === 0 ? "sent its close frame (TCP teardown still pending)" : `closed with ${c.code}${c.reason ? ` "${c.reason}"` : ""}`;
  }

  sendAck(id: string, status?: number | string): void {
    this.send(status === undefined ? { id } : { id, status });
  }

  send(data: unknown): void {
    if (this.ws.readyState === OPEN) this.ws.send(typeof data === "string" ? data : JSON.stringify(data));
  }

  close(code = 1000, reason = ""): void {
    this.closeCalled = true;
    if (this.ws.readyState === OPEN || this.ws.readyState === CONNECTING) {
      try {
        this.ws.close(code, reason);
      } catch {
        // already closing
      }
    }
  }
}

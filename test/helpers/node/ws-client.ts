// A plain WebSocket client (Node 24's global WebSocket) with a frame queue; every wait has a timeout.
/** A WebSocket client (Node's global WebSocket) with a queue of parsed frames and a close promise. */
export class WsClient {
  readonly frames: any[] = [];
  closed: { code: number; reason: string } | undefined;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e: MessageEvent) => {
      const data = typeof e.data === "string" ? e.data : Buffer.from(e.data as ArrayBuffer).toString("utf8");
      let frame: unknown;
      try {
        frame = JSON.parse(data);
      } catch {
        frame = { unparsable: data };
      }
      this.frames.push(frame);
      this.wake();
    });
    ws.addEventListener("close", (e: CloseEvent) => {
      this.closed = { code: e.code, reason: e.reason };
      this.wake();
    });
  }

  private wake(): void {
    this.waiters.splice(0).forEach((w) => w());
  }

  private async waitFor(cond: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  /** Opens a connection to a `hub.channel.endpoint`; resolves once open. */
  static async connect(url: string, timeoutMs = 10_000): Promise<WsClient> {
    const ws = new WebSocket(url);
    const client = new WsClient(ws);
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => {
        ws.close();
        rej(new Error(`WebSocket ${url} did not open within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.addEventListener("open", () => {
        clearTimeout(t);
        res();
      });
      ws.addEventListener("error", () => {
        clearTimeout(t);
        rej(new Error(`WebSocket ${url} failed to open`));
      });
    });
    return client;
  }

  /** Waits until `n` frames have arrived in total; returns the first `n`. */
  async waitFrames(n: number, timeoutMs = 10_000): Promise<any[]> {
    await this.waitFor(
      () => this.frames.length >= n || this.closed !== undefined,
      timeoutMs,
      () => `${this.frames.length}/${n} frames: ${JSON.stringify(this.frames)}`,
    );
    if (this.frames.length < n) {
      throw new Error(`socket closed (${this.closed!.code} ${this.closed!.reason}) with ${this.frames.length}/${n} frames: ${JSON.stringify(this.frames)}`);
    }
    return this.frames.slice(0, n);
  }

  /** Waits for the socket to close; returns its code and reason. */
  async waitClose(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    await this.waitFor(() => this.closed !== undefined, timeoutMs, () => "waiting for close");
    return this.closed!;
  }

  /** Acknowledges a received event (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html: `{id, status: "200"}`). */
  ack(eventId: string, status = "200"): void {
    this.send({ id: eventId, status });
  }

  send(data: unknown): void {
    this.ws.send(typeof data === "string" ? data : JSON.stringify(data));
  }

  close(code = 1000, reason = ""): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
  }
}

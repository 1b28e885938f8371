// A small fake FHIRcast hub for testing the conformance kit itself (not a hub): a Node http server on
// 127.0.0.1 that serves a well-known document, accepts subscriptions (202 with an endpoint nobody
// serves) and publishes, and after `dieAfter` requests dies as a crashed hub does: it stops listening
// and drops every open connection, so later connects are refused (ECONNREFUSED).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface FakeHubOptions {
  /** Requests answered before the hub dies (default: never dies). */
  dieAfter?: number;
}

export class FakeHub {
  /** Requests received, as "METHOD /path". */
  readonly requests: string[] = [];
  /** Resolves when the hub has died (stopped listening and dropped its connections). */
  readonly died: Promise<void>;
  private readonly sockets = new Set<Socket>();
  private markDied!: () => void;
  private dead = false;

  private readonly server: Server;
  readonly origin: string;
  private readonly dieAfter: number;

  private constructor(server: Server, origin: string, dieAfter: number) {
    this.server = server;
    this.origin = origin;
    this.dieAfter = dieAfter;
    this.died = new Promise((r) => (this.markDied = r));
    server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
    });
    server.on("request", (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
  }

  /** The hub.url the kit is given. */
  get hubUrl(): string {
    return `${this.origin}/api/hub`;
  }

  static async start(opts: FakeHubOptions = {}): Promise<FakeHub> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === "string") throw new Error("could not read the fake hub's port");
    return new FakeHub(server, `http://127.0.0.1:${addr.port}`, opts.dieAfter ?? Infinity);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.dead) {
      req.socket.destroy();
      return;
    }
    const path = new URL(req.url ?? "/", this.origin).pathname;
    this.requests.push(`${req.method} ${path}`);
    req.resume();
    req.once("end", () => {
      if (path === "/api/hub/.well-known/fhircast-configuration") {
        json(res, 200, { eventsSupported: ["Patient-open", "Patient-close"], websocketSupport: true, fhircastVersion: "STU3" });
      } else if (req.method === "POST" && path === "/api/hub") {
        json(res, 202, { "hub.channel.endpoint": `ws://127.0.0.1:1/${crypto.randomUUID()}` });
      } else {
        json(res, 404, { error: "not found" });
      }
      if (this.requests.length >= this.dieAfter) this.die();
    });
  }

  /** Stops listening and drops every connection, as a crashed process would. */
  die(): void {
    if (this.dead) return;
    this.dead = true;
    this.server.close(() => this.markDied());
    // After the response is written: the last answer reaches the kit, nothing after it does.
    setImmediate(() => {
      for (const s of this.sockets) s.destroy();
    });
  }

  async stop(): Promise<void> {
    this.die();
    await this.died;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

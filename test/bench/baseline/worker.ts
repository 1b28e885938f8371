// Baseline for the benchmark: per topic one Durable Object that accepts WebSockets (hibernation API)
// and, per POST, writes the body to storage once and sends it to every socket of the topic.
import { DurableObject } from "cloudflare:workers";

interface Env {
  ROOM: DurableObjectNamespace<Room>;
}

export class Room extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)");
  }

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade") === "websocket") {
      const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
      this.ctx.acceptWebSocket(server);
      return new Response(null, { status: 101, webSocket: client });
    }
    const body = await request.text();
    this.ctx.storage.sql.exec("INSERT INTO events (body) VALUES (?)", body);
    for (const ws of this.ctx.getWebSockets()) ws.send(body);
    return new Response(null, { status: 202 });
  }

  override async webSocketMessage(): Promise<void> {
    // Acknowledgements arrive here and are ignored: the baseline has no protocol.
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    if (code !== 1005 && code !== 1006) ws.close(code, "");
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const [, kind, topic] = new URL(request.url).pathname.split("/");
    if (kind === "health") return new Response("ok");
    if (!topic || (kind !== "ws" && kind !== "publish")) return new Response("not found", { status: 404 });
    return env.ROOM.get(env.ROOM.idFromName(topic)).fetch(request);
  },
} satisfies ExportedHandler<Env>;

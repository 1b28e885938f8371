// Helpers for tests that run inside workerd: drive the Worker through its real fetch handler and hold
// real WebSockets to it. Every wait has a timeout.
import { exports } from "cloudflare:workers";

export const ORIGIN = "http://hub.test";
export const HUB = `${ORIGIN}/api/hub`;

let counter = 0;
/** A topic unique to the calling test. */
export function uniqueTopic(label = "t"): string {
  return `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
}

export function hubFetch(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(path.startsWith("http") ? path : `${ORIGIN}${path}`, init));
}

export function form(params: Record<string, string>): RequestInit {
  return {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params).toString(),
  };
}

export function subscribeForm(topic: string, events: string, extra: Record<string, string> = {}): RequestInit {
  return form({ "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": topic, "hub.events": events, ...extra });
}

export async function subscribe(topic: string, events: string, extra: Record<string, string> = {}): Promise<string> {
  const res = await hubFetch("/api/hub", subscribeForm(topic, events, extra));
  if (res.status !== 202) throw new Error(`subscribe failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { "hub.channel.endpoint": string };
  return body["hub.channel.endpoint"];
}

export async function unsubscribe(topic: string, endpoint: string): Promise<Response> {
  return hubFetch("/api/hub", form({ "hub.channel.type": "websocket", "hub.mode": "unsubscribe", "hub.topic": topic, "hub.channel.endpoint": endpoint }));
}

export function publishInit(body: unknown, contentType = "application/json"): RequestInit {
  return { method: "POST", headers: { "Content-Type": contentType }, body: JSON.stringify(body) };
}

export async function publish(body: unknown, path = "/api/hub"): Promise<Response> {
  return hubFetch(path, publishInit(body));
}

export async function currentContext(topic: string): Promise<Record<string, unknown>> {
  const res = await hubFetch(`/api/hub/${encodeURIComponent(topic)}`);
  if (res.status !== 200) throw new Error(`get context failed: ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

/** A client-side WebSocket with a queue of received frames and a close promise. */
export class Client {
  readonly frames: unknown[] = [];
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | undefined;
  private closeWaiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      this.frames.push(JSON.parse(e.data as string));
      this.waiters.splice(0).forEach((w) => w());
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.closeWaiters.splice(0).forEach((w) => w());
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  /** Waits until `count` frames have arrived in total, returning them. */
  async waitFrames(count: number, timeoutMs = 5000): Promise<unknown[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < count) {
      if (this.closed && this.frames.length < count) throw new Error(`socket closed (${this.closed.code}) with ${this.frames.length}/${count} frames`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out with ${this.frames.length}/${count} frames: ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.frames.slice(0, count);
  }

  /** The next frame after the ones already seen by index `seen`. */
  async frame(index: number, timeoutMs = 5000): Promise<any> {
    return (await this.waitFrames(index + 1, timeoutMs))[index];
  }

  async waitClose(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    if (this.closed) return this.closed;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("timed out waiting for close")), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
    return this.closed!;
  }

  /** Asserts nothing more arrives within `ms` beyond `count` frames. */
  async quiet(count: number, ms = 300): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    if (this.frames.length !== count) throw new Error(`expected ${count} frames, got ${this.frames.length}: ${JSON.stringify(this.frames.slice(count))}`);
  }

  send(data: unknown): void {
    this.ws.send(typeof data === "string" ? data : JSON.stringify(data));
  }

  close(code = 1000, reason = ""): void {
    this.ws.close(code, reason);
  }
}

/** Opens a WebSocket to an endpoint through the Worker. */
export async function connect(endpoint: string): Promise<Client> {
  const url = endpoint.replace(/^ws/, "http");
  const res = await hubFetch(url, { headers: { Upgrade: "websocket" } });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status}`);
  const ws = res.webSocket;
  const client = new Client(ws);
  ws.accept();
  return client;
}

/** Subscribe, connect, and wait for the confirmation frame (plus `replay` replayed events). */
export async function subscriber(topic: string, events: string, extra: Record<string, string> = {}, replay = 0) {
  const endpoint = await subscribe(topic, events, extra);
  const client = await connect(endpoint);
  await client.waitFrames(1 + replay);
  return { endpoint, client };
}

// ---- event fixtures, modeled on the spec's examples ------------------------------------------------

export function patient(id: string) {
  return { resourceType: "Patient", id, identifier: [{ system: "urn:oid:2.16.840.1.113883.19.5", value: `mrn-${id}` }] };
}

export function event(topic: string, name: string, context: unknown[], extra: Record<string, unknown> = {}) {
  return {
    timestamp: new Date().toISOString(),
    id: crypto.randomUUID(),
    event: { "hub.topic": topic, "hub.event": name, context, ...extra },
  };
}

export function patientOpen(topic: string, id = "p1") {
  return event(topic, "Patient-open", [{ key: "patient", resource: patient(id) }]);
}
export function patientClose(topic: string, id = "p1") {
  return event(topic, "Patient-close", [{ key: "patient", resource: patient(id) }]);
}
export function reportOpen(topic: string, reportId = "r1", patientId = "p1") {
  return event(topic, "DiagnosticReport-open", [
    { key: "report", resource: { resourceType: "DiagnosticReport", id: reportId, status: "unknown", subject: { reference: `Patient/${patientId}` } } },
    { key: "patient", resource: patient(patientId) },
  ]);
}

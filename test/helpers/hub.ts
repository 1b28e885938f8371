// Helpers for tests that run inside workerd: drive the Worker through its real fetch handler and hold
// real WebSockets to it. Every wait has a timeout.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { importJWK, SignJWT } from "jose";
import { DEV_AUDIENCE, DEV_ISSUER } from "../../src/auth/dev-issuer";
import { expect } from "vitest";
import { event } from "./fixtures";

export const ORIGIN = "http://hub.test";
export const HUB = `${ORIGIN}/api/hub`;

let counter = 0;
/** A topic unique to the calling test. */
export function uniqueTopic(label = "t"): string {
  return `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Signs a real JWT with the hub's development issuer key (the key the hub verifies dev tokens with):
 * by default unbound to any topic, every FHIRcast scope, client "test-client", valid for two days (longer than any lease).
 */
export async function mintToken(claims: Record<string, unknown> = {}, opts: { expiresIn?: number; alg?: string; issuer?: string; audience?: string } = {}): Promise<string> {
  const keys = await env.ISSUER.get(env.ISSUER.idFromName("dev-issuer")).keys();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: "fhircast/*.*", client_id: "test-client", ...claims })
    .setProtectedHeader({ alg: opts.alg ?? "ES256", kid: keys.kid })
    .setIssuer(opts.issuer ?? DEV_ISSUER)
    .setAudience(opts.audience ?? DEV_AUDIENCE)
    .setSubject(String(claims.client_id ?? "test-client"))
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.expiresIn ?? 172_800))
    .sign(await importJWK(keys.privateJwk, "ES256"));
}

let defaultToken: Promise<string> | undefined;

/**
 * Calls the Worker's real fetch handler. Requests carry the default test token unless they set their
 * own Authorization header (or an empty one, `Authorization: ""`, to send none).
 */
export async function hubFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  // The default token outlives HUB_LEASE_MAX_SECONDS, so leases are the hub's own (not capped by the token).
  if (!headers.has("Authorization")) headers.set("Authorization", `Bearer ${await (defaultToken ??= mintToken({}, { expiresIn: 7 * 86400 }))}`);
  else if (headers.get("Authorization") === "") headers.delete("Authorization");
  return exports.default.fetch(new Request(path.startsWith("http") ? path : `${ORIGIN}${path}`, { ...init, headers }));
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

/** The topic's Durable Object, for `cloudflare:test` helpers such as `evictDurableObject`. */
export function topicStub(topic: string) {
  return env.TOPIC.get(env.TOPIC.idFromName(topic));
}

/** The OperationOutcome of a refused publish: its status and the first issue's code and diagnostics. */
export async function refusal(res: Response): Promise<{ status: number; contentType: string | null; code: string; diagnostics: string }> {
  const body = (await res.json()) as { resourceType: string; issue: { code: string; diagnostics: string }[] };
  if (body.resourceType !== "OperationOutcome" || body.issue.length !== 1) throw new Error(`not a one-issue OperationOutcome: ${JSON.stringify(body)}`);
  return { status: res.status, contentType: res.headers.get("Content-Type"), code: body.issue[0]!.code, diagnostics: body.issue[0]!.diagnostics };
}

export async function currentContext(topic: string): Promise<Record<string, unknown>> {
  const res = await hubFetch(`/api/hub/${encodeURIComponent(topic)}`);
  if (res.status !== 200) throw new Error(`get context failed: ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

// ---- responses ---------------------------------------------------------------------------------

/** Asserts a plain-text refusal (subscribe/unsubscribe, fhircast.hl7.org/STU3/2-4-Subscribing.html) whose body names `needles`. */
export async function expectText(res: Response, status: number, ...needles: (string | RegExp)[]): Promise<string> {
  const body = await res.text();
  expect({ status: res.status, body }).toMatchObject({ status });
  expect(res.headers.get("Content-Type") ?? "").toMatch(/^text\/plain/);
  for (const n of needles) expect(body).toMatch(n);
  return body;
}

/** Asserts an OperationOutcome refusal (JSON APIs) whose diagnostics name `needles`. */
export async function expectOutcome(res: Response, status: number, ...needles: (string | RegExp)[]): Promise<string> {
  const text = await res.text();
  expect({ status: res.status, body: text }).toMatchObject({ status });
  expect(res.headers.get("Content-Type") ?? "").toMatch(/^application\/fhir\+json/);
  const body = JSON.parse(text) as { resourceType: string; issue: { severity: string; code: string; diagnostics: string }[] };
  expect(body.resourceType).toBe("OperationOutcome");
  expect(body.issue).toHaveLength(1);
  expect(body.issue[0]!.severity).toBe("error");
  for (const n of needles) expect(body.issue[0]!.diagnostics).toMatch(n);
  return body.issue[0]!.diagnostics;
}

// ---- the topic's Durable Object (alarms and deadlines; topicStub is above) -------------------------

/** Runs one SQL statement inside the topic's object and returns its rows. */
export function topicSql<T extends Record<string, SqlStorageValue>>(topic: string, query: string, ...params: SqlStorageValue[]): Promise<T[]> {
  return runInDurableObject(topicStub(topic), (_instance, state) => state.storage.sql.exec<T>(query, ...params).toArray());
}

/** Makes every deadline of `kind` due now and runs the object's alarm; returns whether an alarm ran. */
export async function fireDeadlines(topic: string, kind: string): Promise<boolean> {
  await topicSql(topic, `UPDATE deadlines SET due = 0 WHERE kind = ?`, kind);
  return runDurableObjectAlarm(topicStub(topic));
}

/**
 * Lets the acknowledgement timeout pass for everything the topic awaits, then runs its alarm: live
 * events were accepted long ago (the log's accepted_at), and the replayed and derived events each
 * socket owes an answer to fell due long ago (their due time in the object's socket attachments).
 */
export async function expireAnswers(topic: string): Promise<void> {
  await runInDurableObject(topicStub(topic), (instance, state) => {
    state.storage.sql.exec(`UPDATE deadlines SET due = 0 WHERE kind = 'ack'`);
    state.storage.sql.exec(`UPDATE events SET accepted_at = 0`);
    // The object's in-memory index of its sockets is what it judges by (written to the attachments).
    const sockets = (instance as unknown as { sockets: { attachments(): { awaiting?: [string, string, number][] }[] } }).sockets;
    for (const att of sockets.attachments()) for (const a of att.awaiting ?? []) a[2] = 0;
  });
  await runDurableObjectAlarm(topicStub(topic));
}

/** A client-side WebSocket with a queue of received frames and a close promise. */
export class Client {
  readonly frames: unknown[] = [];
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | undefined;
  private closeWaiters: (() => void)[] = [];

  /**
   * `ack`: how the client answers event notifications, as real apps do (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html): a status to send
   * (default 200), or null to stay silent (for tests of missed acknowledgements).
   */
  constructor(readonly ws: WebSocket, public ack: number | string | null = 200) {
    ws.addEventListener("message", (e) => {
      let frame: { id?: string; event?: unknown };
      try {
        frame = JSON.parse(e.data as string) as { id?: string; event?: unknown };
      } catch {
        frame = { raw: e.data } as never; // e.g. the "pong" keep-alive answer
      }
      this.frames.push(frame);
      if (this.ack !== null && typeof frame.id === "string" && frame.event) {
        try {
          ws.send(JSON.stringify({ id: frame.id, status: this.ack }));
        } catch {
          // closing
        }
      }
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
export async function connect(endpoint: string, ack: number | string | null = 200): Promise<Client> {
  const url = endpoint.replace(/^ws/, "http");
  const res = await hubFetch(url, { headers: { Upgrade: "websocket" } });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status}`);
  const ws = res.webSocket;
  const client = new Client(ws, ack);
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

// ---- event fixtures: one set for every tier (test/helpers/fixtures.ts) ----------------------------

export * from "./fixtures";

/** The event as the hub distributes an open: the request, plus the hub's `context.versionId`. */
export function asDistributedOpen(ev: ReturnType<typeof event>, versionId: unknown = expect.any(String)) {
  return { ...ev, event: { ...ev.event, "context.versionId": versionId } };
}

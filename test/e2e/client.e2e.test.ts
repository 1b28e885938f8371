// End to end: the subscriber client (src/client) against the hub on plain workerd
// (test/helpers/node/workerd-hub.ts: the bundle `wrangler deploy` uploads, `npm start`'s settings):
// subscribe and receive with automatic acknowledgements, refusal (409 → the hub's SyncError) and 202
// + the app's own SyncError, publish with local validation, content sharing with a version conflict
// and recovery, close (unsubscribe + 1000), the browser bundle, and, last, a server restart the
// client recovers from by itself (re-subscribe, replay, reported gap). Every wait has a timeout.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClientEventMap, EventValidationError, FhircastClient, type FhircastClientOptions, type SocketLike } from "../../src/client";
import { devToken, patient, removeDir, ROOT, tempStateDir, uniqueTopic, type WorkerdServer, WsClient } from "../helpers/server";
import { startWorkerdHub } from "../helpers/node/workerd-hub.ts";
import { waitUntil } from "../helpers/until";

let dir: string;
let server: WorkerdServer | undefined;
const clients: FhircastClient[] = [];
const sockets: WsClient[] = [];

function hub(): WorkerdServer {
  if (!server) throw new Error("server is not running");
  return server;
}

beforeAll(async () => {
  dir = await tempStateDir("fhircast-client-e2e");
  server = await startWorkerdHub({ persistTo: dir });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => withTimeout(c.close(), 5000, "close").catch(() => undefined)));
  for (const s of sockets) s.close();
  await server?.stop();
  server = undefined;
  if (dir) await removeDir(dir);
}, 60_000);

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms))),
  ]);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Name = keyof ClientEventMap;
type Entry = { [K in Name]: { type: K; payload: ClientEventMap[K]; seq: number } }[Name];

/** Records everything a client reports, in order, and waits (with a timeout) for what is expected. */
class Recorder {
  readonly entries: Entry[] = [];
  private seq = 0;
  private waiters: (() => void)[] = [];

  constructor(client: FhircastClient) {
    const names: Name[] = ["connect", "confirmed", "event", "syncerror", "denied", "disconnect", "reconnect", "reconnected", "resync", "close", "error"];
    for (const type of names) {
      client.on(type, (payload: unknown) => {
        this.entries.push({ type, payload, seq: this.seq++ } as Entry);
        this.waiters.splice(0).forEach((w) => w());
        return undefined;
      });
    }
  }

  all<K extends Name>(type: K): { payload: ClientEventMap[K]; seq: number }[] {
    return this.entries.filter((e) => e.type === type) as unknown as { payload: ClientEventMap[K]; seq: number }[];
  }

  async waitFor<K extends Name>(type: K, pred: (p: ClientEventMap[K]) => boolean = () => true, timeoutMs = 10_000): Promise<{ payload: ClientEventMap[K]; seq: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.all(type).find((e) => pred(e.payload));
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.entries.map((e) => e.type + (e.type === "event" ? `:${(e.payload as ClientEventMap["event"]).name}` : "")).join(", ");
        throw new Error(`timed out after ${timeoutMs} ms waiting for "${type}" (seen: ${seen})`);
      }
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }
}

interface Made {
  client: FhircastClient;
  rec: Recorder;
  /** Every frame the client sent on its sockets (acknowledgements). */
  sent: string[];
  /** Close events of the client's sockets, as the platform WebSocket reported them. */
  closes: { code: number; reason: string }[];
  /** Number of HTTP requests the client made. */
  requests: () => number;
}

async function make(topic: string, events: string[], opts: Partial<FhircastClientOptions> & { clientId?: string } = {}): Promise<Made> {
  const token = await devToken(hub().origin, topic, "fhircast/*.read fhircast/*.write", opts.clientId ?? "client-e2e");
  const sent: string[] = [];
  const closes: { code: number; reason: string }[] = [];
  let requests = 0;
  const client = new FhircastClient({
    // A restarted hub comes back on the same port, so hub.url stays valid.
    hubUrl: hub().hubUrl,
    topic,
    events,
    token: async () => token ?? "",
    reconnect: { initialDelayMs: 200, maxDelayMs: 1500 },
    timeoutMs: 10_000,
    fetch: (input, init) => {
      requests++;
      return fetch(input, init);
    },
    webSocket: (url) => {
      const ws = new WebSocket(url);
      ws.addEventListener("close", (e) => closes.push({ code: e.code, reason: e.reason }));
      const send = ws.send.bind(ws);
      ws.send = (data: string) => {
        sent.push(data);
        send(data);
      };
      return ws as unknown as SocketLike;
    },
    ...opts,
  });
  clients.push(client);
  return { client, rec: new Recorder(client), sent, closes, requests: () => requests };
}

const report = (id: string, patientId: string) => ({ resourceType: "DiagnosticReport", id, status: "unknown", subject: { reference: `Patient/${patientId}` } });
const observation = (id: string, text: string) => ({ resourceType: "Observation", id, status: "preliminary", code: { text } });

describe("FhircastClient against the hub on workerd", () => {
  it("discovers, subscribes, receives typed events and acknowledges each with 200", async () => {
    const topic = uniqueTopic("client-recv");
    const viewer = await make(topic, ["Patient-open", "Patient-close"], { subscriberName: "Viewer" });
    const confirmation = await viewer.client.connect();
    expect(confirmation).toEqual({ "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open,Patient-close", "hub.lease_seconds": expect.any(Number) });
    expect(viewer.client.state).toBe("connected");
    expect(viewer.client.grantedEvents).toEqual(["Patient-open", "Patient-close"]);
    expect(viewer.client.configuration?.fhircastVersion).toBe("3.0.0");
    expect(viewer.client.endpoint).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/ws\//);
    await viewer.rec.waitFor("connect");
    await viewer.rec.waitFor("confirmed", (c) => !c.reconnect && !c.renewal);

    const publisher = await make(topic, ["Patient-open"]);
    const sent = await publisher.client.publish("Patient-open", { patient: patient("p-recv") });
    expect(sent.status).toBe(202);

    const { payload: ev } = await viewer.rec.waitFor("event", (e) => e.id === sent.id);
    expect(ev.name).toBe("Patient-open");
    expect(ev.role).toBe("open");
    expect(ev.anchor).toBe("Patient/p-recv");
    expect(ev.timestamp).toBe(sent.notification.timestamp);
    expect(ev.context).toEqual([{ key: "patient", resource: patient("p-recv") }]);
    expect(typeof ev.versionId).toBe("string");
    expect(viewer.client.versions.get("Patient/p-recv")).toBe(ev.versionId);

    // The acknowledgement went out on the socket: {id, status: 200}.
    await waitUntil(() => viewer.sent.some((s) => s === JSON.stringify({ id: sent.id, status: 200 })), 5000, "ack sent", 25);
    const close = await publisher.client.publish("Patient-close", { patient: patient("p-recv") });
    const { payload: closed } = await viewer.rec.waitFor("event", (e) => e.id === close.id);
    expect(closed.role).toBe("close");
    expect(viewer.client.versions.get("Patient/p-recv")).toBeUndefined();
    expect(viewer.rec.all("error")).toEqual([]);
  });

  it("refuses an event with 409: a second client subscribed to SyncError sees the hub's SyncError", async () => {
    const topic = uniqueTopic("client-refuse");
    const refuser = await make(topic, ["Patient-open"], { subscriberName: "Refusing Viewer", clientId: "refuser" });
    refuser.client.on("event", (e) => (e.name === "Patient-open" ? 409 : undefined));
    const watcher = await make(topic, ["SyncError", "Patient-open"], { subscriberName: "Watcher", clientId: "watcher" });
    await Promise.all([refuser.client.connect(), watcher.client.connect()]);

    const publisher = await make(topic, ["Patient-open"], { clientId: "publisher" });
    const sent = await publisher.client.publish("Patient-open", [{ key: "patient", resource: patient("p-refuse") }]);

    await waitUntil(() => refuser.sent.includes(JSON.stringify({ id: sent.id, status: 409 })), 5000, "409 ack sent", 25);
    const { payload: se } = await watcher.rec.waitFor("syncerror", (s) => s.failedEventId === sent.id);
    expect(se.failedEventName).toBe("Patient-open");
    expect(se.subscriberName).toBe("Refusing Viewer");
    expect(se.issueCode).toBe("processing");
    expect(se.event.name).toBe("SyncError");
    // The SyncError is also an ordinary (acknowledged) event for the watcher.
    await watcher.rec.waitFor("event", (e) => e.name === "SyncError" && e.id === se.event.id);
  });

  it("acknowledges 202, then reports its own SyncError with sendSyncError", async () => {
    const topic = uniqueTopic("client-202");
    const slow = await make(topic, ["Patient-open"], { subscriberName: "Slow Dictation", clientId: "slow" });
    slow.client.on("event", (e) => {
      if (e.name !== "Patient-open") return undefined;
      setTimeout(() => void slow.client.sendSyncError(e, "Slow Dictation could not switch patient: unsaved dictation"), 100);
      return 202;
    });
    const watcher = await make(topic, ["SyncError"], { clientId: "watcher" });
    await Promise.all([slow.client.connect(), watcher.client.connect()]);
    const publisher = await make(topic, ["Patient-open"], { clientId: "publisher" });
    const sent = await publisher.client.publish("Patient-open", { patient: patient("p-202") });

    await waitUntil(() => slow.sent.includes(JSON.stringify({ id: sent.id, status: 202 })), 5000, "202 ack sent", 25);
    const { payload: se } = await watcher.rec.waitFor("syncerror", (s) => s.failedEventId === sent.id);
    expect(se.subscriberName).toBe("Slow Dictation");
    expect(se.failedEventName).toBe("Patient-open");
    expect(se.diagnostics).toMatch(/unsaved dictation/);
  });

  it("publishes typed events, refuses invalid ones locally (no request), and reads the current context", async () => {
    const topic = uniqueTopic("client-pub");
    const app = await make(topic, ["Patient-open", "Encounter-open"]);
    await app.client.connect();
    const before = app.requests();

    // Invalid events fail with the hub's own validation message, before any request.
    await expect(app.client.publish("Patient-open", {})).rejects.toMatchObject({ name: "EventValidationError", status: 400 });
    const err = await app.client.publish("Encounter-open", { encounter: { resourceType: "Encounter", id: "e1", status: "in-progress" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventValidationError);
    expect((err as EventValidationError).detail).toBe('event.context: Encounter-open requires key "patient"');
    await expect(app.client.publish("Patient-explode", { patient: patient("x") })).rejects.toMatchObject({ code: "not-supported" });
    await expect(app.client.publish("Patient-open", { patient: { resourceType: "Practitioner", id: "x" } })).rejects.toBeInstanceOf(EventValidationError);
    expect(app.requests()).toBe(before);

    // Publishing: the hub echoes it to the publisher (subscribed), with the same id.
    const encounter = { resourceType: "Encounter", id: "enc-1", status: "in-progress", subject: { reference: "Patient/p-pub" } };
    const sent = await app.client.publish("encounter-OPEN", { encounter, patient: patient("p-pub") });
    expect(sent.eventName).toBe("Encounter-open");
    expect(app.requests()).toBe(before + 1);
    const { payload: echo } = await app.rec.waitFor("event", (e) => e.id === sent.id);
    expect(echo.anchor).toBe("Encounter/enc-1");

    const cc = await app.client.getContext();
    expect(cc["context.type"]).toBe("Encounter");
    expect(cc["context.versionId"]).toBe(echo.versionId);
    expect(cc.context).toEqual(expect.arrayContaining([{ key: "encounter", resource: encounter }, { key: "patient", resource: patient("p-pub") }]));
  });

  it("content sharing: an update on a stale version gets 409, the client resyncs, and its retry succeeds", async () => {
    const topic = uniqueTopic("client-content");
    const anchor = "DiagnosticReport/r-content";
    // The first app follows updates (its versions follow the hub's); the second only opens and closes.
    const first = await make(topic, ["DiagnosticReport-open", "DiagnosticReport-update", "DiagnosticReport-close"], { clientId: "first" });
    const second = await make(topic, ["DiagnosticReport-open", "DiagnosticReport-close"], { clientId: "second" });
    await Promise.all([first.client.connect(), second.client.connect()]);

    const open = await first.client.publish("DiagnosticReport-open", { report: report("r-content", "p-content"), patient: patient("p-content") });
    const { payload: o1 } = await first.rec.waitFor("event", (e) => e.id === open.id);
    await second.rec.waitFor("event", (e) => e.id === open.id);
    const v0 = o1.versionId!;
    expect(first.client.versions.get(anchor)).toBe(v0);
    expect(second.client.versions.get(anchor)).toBe(v0);

    // The first app updates; its own echo moves its version on.
    const a = await first.client.update(anchor, { put: [observation("obs-a", "from first")] }, { patient: "Patient/p-content" });
    expect(a.accepted).toBe(true);
    const { payload: echoA } = await first.rec.waitFor("event", (e) => e.id === (a.accepted ? a.id : ""));
    expect(echoA.priorVersionId).toBe(v0);
    const v1 = echoA.versionId!;
    expect(first.client.versions.get(anchor)).toBe(v1);

    // The second app still holds v0: refused with 409, then resynced from GET current context.
    expect(second.client.versions.get(anchor)).toBe(v0);
    const b = await second.client.update(anchor, { put: [observation("obs-b", "from second")] });
    expect(b.accepted).toBe(false);
    if (b.accepted) throw new Error("unreachable");
    expect(b.status).toBe(409);
    expect(b.basedOn).toBe(v0);
    expect(b.versionId).toBe(v1);
    expect(b.error.detail).toMatch(/versionId/);
    const { payload: resync } = await second.rec.waitFor("resync");
    expect(resync).toMatchObject({ cause: "conflict", anchor, versionId: v1 });
    expect(second.client.versions.get(anchor)).toBe(v1);

    // The retry goes against v1 and is accepted; the first app sees it based on v1.
    const retry = await second.client.update(anchor, { put: [observation("obs-b", "from second")] });
    expect(retry.accepted).toBe(true);
    if (!retry.accepted) throw new Error("unreachable");
    expect(retry.basedOn).toBe(v1);
    const { payload: echoB } = await first.rec.waitFor("event", (e) => e.id === retry.id);
    expect(echoB.priorVersionId).toBe(v1);
    expect(first.client.versions.get(anchor)).toBe(echoB.versionId);

    const cc = await second.client.getContext();
    expect(cc["context.versionId"]).toBe(echoB.versionId);
    const content = cc.context.find((e) => e.key === "content")!.resource as { entry: { resource: { id: string } }[] };
    expect(content.entry.map((e) => e.resource.id).sort()).toEqual(["obs-a", "obs-b"]);
    expect(second.client.versions.get(anchor)).toBe(echoB.versionId);
  });

  it("close() unsubscribes over HTTP and closes the socket with 1000; later events are not received", async () => {
    const topic = uniqueTopic("client-close");
    const leaving = await make(topic, ["Patient-open"], { clientId: "leaving" });
    const staying = await make(topic, ["Patient-open"], { clientId: "staying" });
    await Promise.all([leaving.client.connect(), staying.client.connect()]);
    const endpoint = leaving.client.endpoint!;

    const closed = await withTimeout(leaving.client.close(), 10_000, "close");
    expect(closed.code).toBe(1000);
    expect(leaving.sent.filter((f) => f !== "ping")).toEqual([]); // nothing but acks is ever sent; none were due
    expect(leaving.client.state).toBe("closed");
    expect((await leaving.rec.waitFor("close")).payload.code).toBe(1000);
    // An unsubscribe is not a denial for the application, nor a disconnect to recover from.
    expect(leaving.rec.all("denied")).toEqual([]);
    expect(leaving.rec.all("disconnect")).toEqual([]);

    const sent = await staying.client.publish("Patient-open", { patient: patient("p-after-close") });
    await staying.rec.waitFor("event", (e) => e.id === sent.id);
    await sleep(500);
    expect(leaving.rec.all("event").filter((e) => e.payload.id === sent.id)).toEqual([]);

    // The subscription is gone at the hub: its endpoint is denied (never reused).
    const stale = await WsClient.connect(endpoint);
    sockets.push(stale);
    const [denial] = await stale.waitFrames(1);
    expect(denial["hub.mode"]).toBe("denied");
    expect((await stale.waitClose()).code).toBe(1008);
    // The platform socket's own close event is not awaited: workerd keeps the TCP connection of a
    // hibernatable socket open for ~10 s or more after the close handshake (docs/decisions.md), so
    // its timing is the runtime's. What the hub sent is checked above (close() resolved with 1000).
    expect(leaving.closes.every((c) => c.code === 1000)).toBe(true);
    expect(leaving.rec.all("reconnect")).toEqual([]);
  });

  it("bundles for browsers into one self-contained ES module that works as the source does", async () => {
    const out = join(await mkdtemp(join(tmpdir(), "fhircast-client-bundle-")), "fhircast-client.js");
    try {
      const result = await build({ entryPoints: [join(ROOT, "src/client/index.ts")], bundle: true, format: "esm", outfile: out, logLevel: "silent", metafile: true });
      expect(result.errors).toEqual([]);
      const code = await import("node:fs/promises").then((fs) => fs.readFile(out, "utf8"));
      expect(code).not.toMatch(/^\s*import\s/m);
      expect(code).not.toMatch(/\brequire\(/);
      const mod = (await import(pathToFileURL(out).href)) as typeof import("../../src/client");
      const topic = uniqueTopic("client-bundle");
      const token = await devToken(hub().origin, topic);
      const client = new mod.FhircastClient({ hubUrl: hub().hubUrl, topic, events: ["Patient-open"], token });
      const seen = client.next("event", (e) => e.anchor === "Patient/p-bundle", 10_000);
      await client.connect();
      await client.publish("Patient-open", { patient: patient("p-bundle") });
      await seen;
      expect((await withTimeout(client.close(), 10_000, "close")).code).toBe(1000);
    } finally {
      await removeDir(join(out, ".."));
    }
  });

  // Last: it restarts the server.
  it("re-subscribes by itself after the server restarts, gets the replayed current context and reports the gap", async () => {
    const topic = uniqueTopic("client-restart");
    const app = await make(topic, ["Patient-open", "Patient-close"], { subscriberName: "Resilient Viewer", clientId: "resilient" });
    await app.client.connect();
    const firstEndpoint = app.client.endpoint;
    const open = await app.client.publish("Patient-open", { patient: patient("p-restart") });
    const { payload: live } = await app.rec.waitFor("event", (e) => e.id === open.id);

    const port = hub().port;
    await hub().stop();
    server = undefined;
    const { payload: down } = await app.rec.waitFor("disconnect", () => true, 15_000);
    expect(down.code).not.toBe(1000);
    expect(app.client.state).toBe("reconnecting");
    await app.rec.waitFor("reconnect", (r) => r.attempt >= 2, 15_000); // it keeps trying while the hub is down
    const attemptsWhileDown = app.rec.all("reconnect").map((r) => r.payload.delayMs);
    expect(Math.max(...attemptsWhileDown)).toBeLessThanOrEqual(1500); // bounded backoff

    server = await startWorkerdHub({ persistTo: dir, port });
    const back = await app.rec.waitFor("reconnected", () => true, 30_000);
    expect(back.payload.downMs).toBeGreaterThan(0);
    expect(back.payload.downMs).toBeLessThanOrEqual(Date.now() - down.at);
    expect(back.payload.disconnectedAt).toBe(down.at);
    expect(back.payload.attempts).toBeGreaterThanOrEqual(1);
    expect(app.client.state).toBe("connected");
    expect(app.client.endpoint).not.toBe(firstEndpoint);
    const confirmed = app.rec.all("confirmed").at(-1)!;
    expect(confirmed.payload.reconnect).toBe(true);

    // The replay of current context follows the report of the gap: same id, timestamp and version.
    const replay = await app.rec.waitFor("event", (e) => e.id === open.id && e !== live, 10_000);
    expect(replay.seq).toBeGreaterThan(back.seq);
    expect(replay.payload.timestamp).toBe(open.notification.timestamp);
    expect(replay.payload.versionId).toBe(live.versionId);
    expect(app.client.versions.get("Patient/p-restart")).toBe(live.versionId);

    // Live events flow again on the new subscription.
    const close = await app.client.publish("Patient-close", { patient: patient("p-restart") });
    await app.rec.waitFor("event", (e) => e.id === close.id);
  }, 120_000);
});

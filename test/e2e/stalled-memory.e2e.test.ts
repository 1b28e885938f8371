// Subscribers that stop reading must not pin the server's memory (issue 20, finding 2), against the
// real local server (wrangler dev). Ten raw-TCP subscribers complete the handshake and never read
// again; ten events of 900 KB are published. The hub sends a subscriber no more than
// SOCKET_BUFFER_BYTES of unacknowledged events: the next one is not sent, the subscription ends as
// stalled (SyncError, denial, close). workerd's RSS is printed at the start, at the peak and after the
// stalled subscriptions ended; it must be back within 20% of the start within 30 s. What each stalled
// socket was sent is counted by reading it afterwards: at most the budget plus one event.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { event, HubServer, patient, publish, removeDir, subscribe, tempStateDir, uniqueTopic, WsClient } from "../helpers/server";
import { sleep, stalledSocket, until, workerdRssMiB } from "./support/reliability";

const CLIENTS = 10;
const EVENTS = 10;
const EVENT_BYTES = 900_000;
const BUDGET = 2 * 1024 * 1024;

let dir: string;
let server: HubServer | undefined;
const hub = () => {
  if (!server) throw new Error("server is not running");
  return server;
};

beforeAll(async () => {
  dir = await tempStateDir("fhircast-stalled-memory");
  // ACK_TIMEOUT_SECONDS 5: without the budget, the stalled ones would be cut by the ack timeout only.
  server = await HubServer.start({
    persistTo: dir,
    vars: { AUTH_MODE: "open", ACK_TIMEOUT_SECONDS: "5", SOCKET_BUFFER_BYTES: String(BUDGET), LOG_LEVEL: "warn" },
  });
});
afterAll(async () => {
  await server?.stop();
  if (dir) await removeDir(dir);
});

/** A Patient-open of about EVENT_BYTES (the patient's narrative). */
function bigOpen(topic: string, i: number) {
  const p = { ...patient(`p${i}`), text: { status: "generated", div: `<div>${"x".repeat(EVENT_BYTES)}</div>` } };
  return event(topic, "Patient-open", [{ key: "patient", resource: p }]);
}

/** A subscriber that reads and acknowledges everything; returns the events (and SyncErrors) it got. */
async function reader(topic: string, events: string) {
  const client = await WsClient.connect(await subscribe(hub().hubUrl, topic, events));
  await client.waitFrames(1);
  const ids: string[] = [];
  client.ws.addEventListener("message", (e: MessageEvent) => {
    const f = JSON.parse(String(e.data)) as { id?: string; event?: { "hub.event": string } };
    if (f.id && f.event) {
      ids.push(f.id);
      client.ack(f.id);
    }
  });
  return { client, ids };
}

/** Publishes `count` events, each once the reading subscriber has received the previous one. */
async function publishAll(topic: string, r: { ids: string[] }, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const ev = bigOpen(topic, i);
    expect((await publish(hub().hubUrl, ev, { timeoutMs: 30_000 })).status).toBe(202);
    expect(await until(() => r.ids.includes(ev.id), 30_000, 20)).toBe(true);
  }
}

describe("subscribers that stop reading", () => {
  it(`${CLIENTS} stalled subscribers × ${EVENTS} events of 900 KB: each is sent at most SOCKET_BUFFER_BYTES + one event, then ended; RSS back within 20% of its start within 30 s`, async () => {
    // Warm-up, so that the start is the server's steady state for 900 KB events, not a cold heap.
    const warm = uniqueTopic("mem-warm");
    const warmReader = await reader(warm, "Patient-open");
    await publishAll(warm, warmReader, 3);
    warmReader.client.close();

    const topic = uniqueTopic("mem");
    const healthy = await reader(topic, "Patient-open,SyncError");
    const stalled = await Promise.all(Array.from({ length: CLIENTS }, async () => stalledSocket(await subscribe(hub().hubUrl, topic, "Patient-open"))));
    const start = await workerdRssMiB(hub());
    console.log(`[stalled-memory] warmed up, ${CLIENTS} stalled subscribers connected`);
    let peak = start;
    const t0 = performance.now();
    const at = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

    for (let i = 0; i < EVENTS; i++) {
      const ev = bigOpen(topic, i);
      expect((await publish(hub().hubUrl, ev, { timeoutMs: 30_000 })).status).toBe(202);
      expect(await until(() => healthy.ids.includes(ev.id), 30_000, 20)).toBe(true);
      peak = Math.max(peak, await workerdRssMiB(hub()));
    }
    console.log(`[stalled-memory] published ${EVENTS} events`);
    // The subscriber that keeps up got every event; one SyncError per stalled subscriber, for stalling.
    expect(await until(() => healthy.client.frames.filter((f) => f.event?.["hub.event"] === "SyncError").length >= CLIENTS, 20_000, 50)).toBe(true);
    const ended = performance.now();
    const syncErrors = healthy.client.frames.filter((f) => f.event?.["hub.event"] === "SyncError");
    const diagnostics = syncErrors.map((f) => f.event.context.find((c: any) => c.key === "operationoutcome").resource.issue[0].diagnostics as string);

    // Memory: back within 20% of the start (or never above it) within 30 s of the last one ending.
    let after = await workerdRssMiB(hub());
    while (after > start * 1.2 && performance.now() - ended < 30_000) {
      await sleep(500);
      after = await workerdRssMiB(hub());
    }
    console.log(
      `[stalled-memory] workerd RSS: start ${start} MiB, peak ${peak} MiB (+${(peak - start).toFixed(1)}), ` +
        `${after} MiB ${((performance.now() - ended) / 1000).toFixed(1)} s after the stalled subscriptions ended (${at()} into the run); ` +
        `SOCKET_BUFFER_BYTES ${BUDGET}, ${CLIENTS} stalled × ${EVENTS} events of ${EVENT_BYTES} B`,
    );

    // What each stalled socket was sent: read it now, up to the hub's denial.
    const received = await Promise.all(
      stalled.map(async ({ socket, destroy }) => {
        let bytes = 0;
        let tail = "";
        socket.on("data", (d: Buffer) => {
          bytes += d.length;
          tail = (tail + d.toString("latin1")).slice(-4096);
        });
        socket.resume();
        const denied = await until(() => tail.includes(`"hub.mode":"denied"`), 20_000, 20);
        destroy();
        return { bytes, denied };
      }),
    );
    console.log(`[stalled-memory] bytes each stalled socket was sent: ${received.map((r) => r.bytes).join(", ")}`);
    expect(diagnostics.every((d) => /stopped reading .*over SOCKET_BUFFER_BYTES/.test(d)), diagnostics[0]).toBe(true);
    expect(healthy.client.frames.filter((f) => f.event?.["hub.event"] === "Patient-open")).toHaveLength(EVENTS);
    expect(after).toBeLessThanOrEqual(start * 1.2);
    for (const r of received) {
      expect(r.denied).toBe(true);
      expect(r.bytes).toBeLessThanOrEqual(BUDGET + EVENT_BYTES + 4096);
    }
    healthy.client.close();
  });
});

// `npm run bench`: the hub (wrangler dev, as `npm start` runs it) against a bare Durable Object
// broadcast (test/bench/baseline), same client, same machine, alternating. Prints every figure beside
// the baseline's with the ratio, and writes Markdown, JSON and an SVG plot. Loopback only, bounded.
//   npm run bench                      full run, results in docs/benchmarks/
//   npm run bench -- --smoke --out DIR  a few events, for CI (checks that it works, not timings)
//   npm run bench -- --runtime plain --only throughput   a part, printed only (files with --out DIR)
//     --runtime: wrangler | plain; --only: comma-separated latency, throughput, memory, soak;
//     --ns: comma-separated subscriber counts for the latency figure (default 1,10,100,1000)
//     --rounds: measured throughput rounds per target (default 6), for a tighter estimate
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { spawn, spawnSync } from "node:child_process";
import { devToken, freePort, HubServer, removeDir, ROOT, tempStateDir, WorkerdServer } from "../helpers/server.ts";
import { latencyPlot } from "./plot.ts";

const args = process.argv.slice(2);
const SMOKE = args.includes("--smoke");
const OUT = args.includes("--out") ? args[args.indexOf("--out") + 1]! : join(ROOT, "docs", "benchmarks");
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const RUNTIMES = option("--runtime")?.split(",") ?? ["wrangler", "plain"];
const ONLY = option("--only")?.split(",") ?? ["latency", "throughput", "memory", "soak"];
/** A partial run prints its figures but writes files only where --out says. */
const WRITE = args.includes("--out") || (option("--runtime") === undefined && option("--only") === undefined);

const CONFIG = SMOKE
  ? { ns: [1, 3], events: 4, eventsAt1000: 4, warmup: 1, throughputSeconds: 0.5, throughputRounds: 1, topics: 4, perTopic: 2, idleSubs: 10, idleTopics: 10 }
  : { ns: [1, 10, 100, 1000], events: 1000, eventsAt1000: 200, warmup: 20, throughputSeconds: 4, throughputRounds: 6, topics: 100, perTopic: 5, idleSubs: 1000, idleTopics: 1000 };
/** Soak: rounds of subscribe → connect → one event → close cycles over 50 topics (plain workerd). */
const SOAK = SMOKE ? { rounds: 2, cycles: 5 } : { rounds: 16, cycles: 200 };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, SMOKE ? Math.min(ms, 100) : ms));

// ---- statistics ------------------------------------------------------------------------------------

interface Dist {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  n: number;
}
function dist(samples: number[]): Dist {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
  return { p50: q(50), p95: q(95), p99: q(99), max: s[s.length - 1] ?? NaN, n: s.length };
}

// ---- subscribers -------------------------------------------------------------------------------------

/**
 * One subscriber socket: records the ids of the events it received, in order, and acks each. The
 * listener is attached before the socket opens: the hub's first frames can arrive with the handshake.
 */
class Sub {
  readonly received: string[] = [];
  readonly ws: WebSocket;
  /** Close code and reason, once closed; frames that were neither an event nor the confirmation. */
  closed: string | undefined;
  readonly other: string[] = [];
  /** Resolves when the socket is open and, with `confirmed`, when the first (confirmation) frame came. */
  readonly ready: Promise<void>;

  constructor(url: string, deflate: boolean, confirmed: boolean, onEvent: (id: string) => void) {
    this.ws = new WebSocket(url, { perMessageDeflate: deflate });
    let markReady!: () => void;
    let fail!: (e: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      fail = reject;
    });
    const t = setTimeout(() => fail(new Error(`connect timeout ${url}`)), 15_000);
    const done = () => {
      clearTimeout(t);
      markReady();
    };
    this.ws.once("error", (e) => fail(e));
    this.ws.once("close", (code, reason) => (this.closed = `${code} ${reason.toString()}`));
    if (!confirmed) this.ws.once("open", done);
    this.ws.on("message", (data) => {
      const text = data.toString();
      if (text[0] !== "{") return;
      const frame = JSON.parse(text) as { id?: string; event?: unknown; "hub.mode"?: string };
      if (frame["hub.mode"] === "subscribe") return done();
      if (typeof frame.id !== "string" || !frame.event) {
        this.other.push(text.slice(0, 300));
        return;
      }
      this.received.push(frame.id);
      // Acknowledge as a real application does (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html); the baseline ignores it.
      this.ws.send(JSON.stringify({ id: frame.id, status: 200 }));
      onEvent(frame.id);
    });
  }
  close(): void {
    this.ws.terminate();
  }
}

/** Waits for every delivery of each event id; resolves with the time the last one arrived. */
class Deliveries {
  private waiting = new Map<string, { left: number; done: (t: number) => void }>();
  onEvent = (id: string): void => {
    const w = this.waiting.get(id);
    if (!w) return;
    if (--w.left === 0) {
      this.waiting.delete(id);
      w.done(performance.now());
    }
  };
  expect(id: string, count: number, timeoutMs = 30_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`event ${id}: not delivered to all ${count} subscribers within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        left: count,
        done: (at) => {
          clearTimeout(t);
          resolve(at);
        },
      });
    });
  }
}

// ---- the two targets ----------------------------------------------------------------------------------

function patientOpen(topic: string, i: number) {
  return {
    timestamp: new Date().toISOString(),
    id: crypto.randomUUID(),
    event: {
      "hub.topic": topic,
      "hub.event": "Patient-open",
      context: [{
        key: "patient",
        resource: {
          resourceType: "Patient",
          id: `pat-${i}`,
          identifier: [{ type: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0203", code: "MR" }] }, system: "urn:oid:1.2.36.146.595.217.0.1", value: String(100000 + i) }],
          name: [{ family: "Everywoman", given: ["Eve"] }],
          gender: "female",
          birthDate: "1955-01-06",
        },
      }],
    },
  };
}

/** What the figures need of a running server: wrangler dev (HubServer) or plain workerd. */
interface Server {
  origin: string;
  hubUrl: string;
  port: number;
  workerdRss(): Promise<number>;
  /** CPU time (ms) the server's processes have used so far. */
  cpuMs(): Promise<number>;
}

interface Target {
  name: "hub" | "baseline";
  server: Server;
  /** Prepares a topic (tokens) and returns a publisher for it. */
  topic(topic: string): Promise<{ publish(body: unknown): Promise<number>; subscribe(deflate: boolean, onEvent: (id: string) => void): Promise<Sub> }>;
}

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

function hubTarget(server: Server): Target {
  return {
    name: "hub",
    server,
    async topic(topic) {
      const token = await devToken(server.origin, topic, "fhircast/*.read fhircast/*.write", "bench");
      const auth: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
      return {
        async publish(body) {
          const res = await fetch(server.hubUrl, { method: "POST", headers: { "Content-Type": "application/json", ...auth }, body: JSON.stringify(body) });
          await res.arrayBuffer();
          return res.status;
        },
        async subscribe(deflate, onEvent) {
          const res = await fetch(server.hubUrl, {
            method: "POST",
            headers: { "Content-Type": "application/x-www-form-urlencoded", ...auth },
            body: new URLSearchParams({ "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open", "subscriber.name": "bench" }),
          });
          if (res.status !== 202) throw new Error(`subscribe ${res.status} ${await res.text()}`);
          const endpoint = ((await res.json()) as Record<string, string>)["hub.channel.endpoint"]!;
          // The confirmation frame comes first; wait for it so the subscription is live.
          const sub = new Sub(endpoint, deflate, true, onEvent);
          await sub.ready;
          return sub;
        },
      };
    },
  };
}

function baselineTarget(server: Server): Target {
  return {
    name: "baseline",
    server,
    async topic(topic) {
      return {
        async publish(body) {
          const res = await fetch(`${server.origin}/publish/${topic}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
          await res.arrayBuffer();
          return res.status;
        },
        async subscribe(deflate, onEvent) {
          const sub = new Sub(`ws://127.0.0.1:${server.port}/ws/${topic}`, deflate, false, onEvent);
          await sub.ready;
          return sub;
        },
      };
    },
  };
}

// ---- figures -------------------------------------------------------------------------------------------

interface Loss {
  subscribers: number;
  events: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
}

function checkDelivery(subs: Sub[], expected: string[], ordered: boolean): Loss {
  const loss: Loss = { subscribers: subs.length, events: expected.length, lost: 0, duplicated: 0, outOfOrder: 0 };
  const want = new Set(expected);
  const reference = subs[0]?.received.filter((id) => want.has(id)) ?? [];
  for (const s of subs) {
    const got = s.received.filter((id) => want.has(id));
    const unique = new Set(got);
    loss.duplicated += got.length - unique.size;
    loss.lost += expected.filter((id) => !unique.has(id)).length;
    const order = ordered ? expected : reference;
    if (got.join() !== order.filter((id) => unique.has(id)).join()) loss.outOfOrder++;
  }
  return loss;
}

let topicCounter = 0;
const newTopic = (label: string) => `bench-${label}-${Date.now().toString(36)}-${topicCounter++}`;

interface LatencyFigure {
  runtime: string;
  n: number;
  delivered: Record<string, Dist>;
  accepted: Record<string, Dist>;
  loss: Record<string, Loss>;
}

/** Figures 1, 2, 5: publish → delivered to all N, publish → 202, loss and order; alternating targets. */
async function latency(targets: Target[], n: number, runtime: string): Promise<LatencyFigure> {
  const setups = await Promise.all(targets.map(async (t) => {
    const topic = newTopic(`lat${n}-${t.name}`);
    const api = await t.topic(topic);
    const deliveries = new Deliveries();
    const subs: Sub[] = [];
    await pool(Array.from({ length: n }, (_, i) => i), 25, async () => {
      subs.push(await api.subscribe(false, deliveries.onEvent));
    });
    return { t, topic, api, deliveries, subs, delivered: [] as number[], accepted: [] as number[], sent: [] as string[] };
  }));
  // 1000 samples per target make p99 the 10th slowest, not the 2nd; N = 1000 keeps 200 (each takes ~0.1 s).
  const total = CONFIG.warmup + (n >= 1000 ? CONFIG.eventsAt1000 : CONFIG.events);
  for (let i = 0; i < total; i++) {
    const order = i % 2 === 0 ? setups : [...setups].reverse();
    for (const s of order) {
      const body = patientOpen(s.topic, i);
      const all = s.deliveries.expect(body.id, n);
      const t0 = performance.now();
      const status = await s.api.publish(body);
      const t202 = performance.now();
      if (status !== 202) throw new Error(`${s.t.name}: publish answered ${status}`);
      const tAll = await all.catch((e: Error) => {
        const missing = s.subs.filter((x) => !x.received.includes(body.id));
        throw new Error(`${s.t.name}, N = ${n}: ${e.message}; ${missing.length} without it: ${missing.map((x) => `closed ${x.closed ?? "no"}, other frames ${JSON.stringify(x.other)}`).join("; ")}`);
      });
      s.sent.push(body.id);
      if (i >= CONFIG.warmup) {
        s.accepted.push(t202 - t0);
        s.delivered.push(tAll - t0);
      }
    }
  }
  await sleep(200);
  const figure: LatencyFigure = { runtime, n, delivered: {}, accepted: {}, loss: {} };
  for (const s of setups) {
    figure.delivered[s.t.name] = dist(s.delivered);
    figure.accepted[s.t.name] = dist(s.accepted);
    figure.loss[s.t.name] = checkDelivery(s.subs, s.sent, true);
    s.subs.forEach((x) => x.close());
  }
  return figure;
}

interface ThroughputFigure {
  label: string;
  eventsPerSecond: Record<string, number>;
  /** Events/s of each round, in the order run: the spread shows how much the machine drifted. */
  rounds: Record<string, number[]>;
  /**
   * Server CPU (ms, user + system of the server's processes) per event over the measured rounds: what
   * each event costs, which the machine's drift moves far less than events/s.
   */
  serverCpuPerEvent: Record<string, number>;
  /** The benchmark client's own CPU per event (publishers and subscribers, one Node process). */
  clientCpuPerEvent: Record<string, number>;
  loss: Record<string, Loss>;
}

/** Figure 3: sustained events/s (fully delivered), `topics` × `perTopic`, concurrent publishers. */
async function throughput(targets: Target[], topics: number, perTopic: number, concurrency: number, runtime: string): Promise<ThroughputFigure> {
  const label = `${runtime}: ${topics} topic${topics > 1 ? "s" : ""} × ${perTopic} subscribers, ${concurrency} publishers`;
  const figure: ThroughputFigure = { label, eventsPerSecond: {}, rounds: {}, serverCpuPerEvent: {}, clientCpuPerEvent: {}, loss: {} };
  const rates = figure.rounds;
  const spent: Record<string, { events: number; server: number; client: number }> = {};
  const rounds = Number(option("--rounds") ?? CONFIG.throughputRounds);
  // Short rounds in the order A B B A A B …: this machine's speed drifts by ±15 % over tens of seconds,
  // and alternating often spreads that drift over both targets. Round -1 warms both up and is not
  // counted: run alone (`--only throughput`), the first target otherwise met a cold isolate (its
  // first round: 379 events/s against 531–793 for its other five, in one run).
  // A smoke run skips the warm-up round: it checks that the figure is produced, not its value.
  for (let round = SMOKE ? 0 : -1; round < rounds; round++) {
    for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
      const deliveries = new Deliveries();
      const rooms = await Promise.all(Array.from({ length: topics }, async () => {
        const topic = newTopic(`tp-${t.name}`);
        const api = await t.topic(topic);
        const subs: Sub[] = [];
        for (let i = 0; i < perTopic; i++) subs.push(await api.subscribe(false, deliveries.onEvent));
        return { topic, api, subs, sent: [] as string[] };
      }));
      let done = 0;
      let i = 0;
      const server0 = await t.server.cpuMs();
      const client0 = process.cpuUsage();
      const start = performance.now();
      // The round's time starts after the CPU readings (reading /proc can take longer than a smoke
      // round of 0.5 s on a busy machine), and every publisher sends at least one event, so a round
      // always measures something.
      const deadline = start + CONFIG.throughputSeconds * 1000;
      await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
        do {
          const room = rooms[(w + i++) % rooms.length]!;
          const body = patientOpen(room.topic, i);
          const all = deliveries.expect(body.id, perTopic);
          const status = await room.api.publish(body);
          if (status !== 202) throw new Error(`${t.name}: publish answered ${status}`);
          room.sent.push(body.id);
          await all;
          done++;
        } while (performance.now() < deadline);
      }));
      const seconds = (performance.now() - start) / 1000;
      const client = process.cpuUsage(client0);
      const server = (await t.server.cpuMs()) - server0;
      if (round >= 0) {
        (rates[t.name] ??= []).push(done / seconds);
        const s = (spent[t.name] ??= { events: 0, server: 0, client: 0 });
        s.events += done;
        s.server += server;
        s.client += (client.user + client.system) / 1000;
      }
      await sleep(200);
      const loss = rooms.map((r) => checkDelivery(r.subs, r.sent, false));
      const sum = loss.reduce((a, b) => ({ subscribers: a.subscribers + b.subscribers, events: a.events + b.events, lost: a.lost + b.lost, duplicated: a.duplicated + b.duplicated, outOfOrder: a.outOfOrder + b.outOfOrder }));
      const prev = figure.loss[t.name];
      figure.loss[t.name] = prev ? { subscribers: prev.subscribers, events: prev.events + sum.events, lost: prev.lost + sum.lost, duplicated: prev.duplicated + sum.duplicated, outOfOrder: prev.outOfOrder + sum.outOfOrder } : sum;
      rooms.forEach((r) => r.subs.forEach((s) => s.close()));
      await sleep(500);
    }
  }
  for (const [name, r] of Object.entries(rates)) figure.eventsPerSecond[name] = r.reduce((a, b) => a + b, 0) / r.length;
  for (const [name, s] of Object.entries(spent)) {
    figure.serverCpuPerEvent[name] = s.server / s.events;
    figure.clientCpuPerEvent[name] = s.client / s.events;
  }
  return figure;
}

interface MemoryFigure {
  label: string;
  bytesPer: Record<string, number>;
}

/**
 * Figure 4: RSS delta of the server process per idle subscriber (with and without deflate offered),
 * measured twice: right after connecting, and again once every subscriber has received (and answered)
 * one event. The runtime's state per socket grows once the socket has carried traffic; idle
 * subscribers of a topic in use have, so the second row is what a deployment holds.
 */
async function memorySubscribers(targets: Target[], count: number, deflate: boolean, runtime: string): Promise<MemoryFigure[]> {
  const offer = `client ${deflate ? "offers" : "does not offer"} permessage-deflate`;
  const idle: MemoryFigure = { label: `${runtime}: per idle subscriber (${count}, ${offer})`, bytesPer: {} };
  const afterOne: MemoryFigure = { label: `${runtime}: per idle subscriber after one event (${count}, ${offer})`, bytesPer: {} };
  for (const t of targets) {
    await sleep(1000);
    const before = await t.server.workerdRss();
    const topic = newTopic(`mem-${t.name}`);
    const api = await t.topic(topic);
    const deliveries = new Deliveries();
    const subs: Sub[] = [];
    await pool(Array.from({ length: count }, (_, i) => i), 25, async () => {
      subs.push(await api.subscribe(deflate, deliveries.onEvent));
    });
    await sleep(1500);
    idle.bytesPer[t.name] = ((await t.server.workerdRss()) - before) / count;
    const body = patientOpen(topic, 0);
    const got = deliveries.expect(body.id, count);
    if ((await api.publish(body)) !== 202) throw new Error(`${t.name}: publish refused`);
    await got;
    await sleep(1500);
    afterOne.bytesPer[t.name] = ((await t.server.workerdRss()) - before) / count;
    subs.forEach((s) => s.close());
  }
  return [idle, afterOne];
}

/** Figure 4: RSS delta per topic that holds a context (one event each, no subscribers). */
async function memoryTopics(targets: Target[], count: number, runtime: string): Promise<MemoryFigure> {
  const figure: MemoryFigure = { label: `${runtime}: per topic (${count} topics holding one event)`, bytesPer: {} };
  for (const t of targets) {
    await sleep(1000);
    const before = await t.server.workerdRss();
    await pool(Array.from({ length: count }, (_, i) => i), 25, async (i) => {
      const topic = newTopic(`memt-${t.name}`);
      const api = await t.topic(topic);
      const status = await api.publish(patientOpen(topic, i));
      if (status !== 202) throw new Error(`${t.name}: publish answered ${status}`);
    });
    await sleep(1500);
    const after = await t.server.workerdRss();
    figure.bytesPer[t.name] = (after - before) / count;
  }
  return figure;
}

interface SoakFigure {
  label: string;
  /** RSS (MiB) before, then after each round. */
  rssMiB: Record<string, number[]>;
}

/**
 * Memory under churn: RSS after each round of subscribe → connect → publish → receive → close cycles.
 * A leak grows without end; V8's heap grows to a plateau and stays there.
 */
async function soak(targets: Target[]): Promise<SoakFigure> {
  const figure: SoakFigure = { label: `plain workerd: RSS after each round of ${SOAK.cycles} subscribe/connect/publish/close cycles over 50 topics`, rssMiB: {} };
  for (const t of targets) {
    const series = [(await t.server.workerdRss()) / 2 ** 20];
    const apis = new Map<string, Awaited<ReturnType<Target["topic"]>>>();
    for (let r = 0; r < SOAK.rounds; r++) {
      for (let i = 0; i < SOAK.cycles; i++) {
        const topic = `soak-${t.name}-${i % 50}`;
        let api = apis.get(topic);
        if (!api) apis.set(topic, (api = await t.topic(topic)));
        const deliveries = new Deliveries();
        const sub = await api.subscribe(false, deliveries.onEvent);
        const body = patientOpen(topic, i);
        const got = deliveries.expect(body.id, 1);
        if ((await api.publish(body)) !== 202) throw new Error(`${t.name}: soak publish refused`);
        await got;
        sub.ws.close(1000);
      }
      await sleep(500);
      series.push((await t.server.workerdRss()) / 2 ** 20);
    }
    figure.rssMiB[t.name] = series;
    console.log(`soak ${t.name}: ${series.map((v) => v.toFixed(0)).join(" → ")} MiB`);
  }
  return figure;
}

/**
 * Figure 4 with fresh processes for every figure: RSS never shrinks once the heap has grown, so a
 * delta measured after other work would only show what that work left free.
 */
async function memoryFigures(runtime: Runtime): Promise<MemoryFigure[]> {
  const out: MemoryFigure[] = [];
  for (const deflate of [false, true]) out.push(...(await fresh(runtime, (t) => memorySubscribers(t, CONFIG.idleSubs, deflate, runtime.name))));
  out.push(await fresh(runtime, (t) => memoryTopics(t, CONFIG.idleTopics, runtime.name)));
  for (const f of out) console.log(`memory ${f.label}: hub ${kb(f.bytesPer.hub)} KB | baseline ${kb(f.bytesPer.baseline)} KB`);
  return out;
}

/** A way to run the hub and the baseline; each start gives fresh processes on fresh storage. */
interface Runtime {
  name: string;
  start(): Promise<{ targets: Target[]; stop(): Promise<void> }>;
}

/** As `npm start` runs it: wrangler dev (workerd behind wrangler's local proxy). */
const wranglerDev: Runtime = {
  name: "wrangler dev",
  async start() {
    const dirs = await Promise.all([tempStateDir("bench-hub"), tempStateDir("bench-base")]);
    const [hub, base] = await Promise.all([
      HubServer.start({ persistTo: dirs[0], vars: { LOG_LEVEL: "silent" } }),
      HubServer.start({ persistTo: dirs[1], config: join(ROOT, "test", "bench", "baseline", "wrangler.toml") }),
    ]);
    return {
      targets: [hubTarget(hub), baselineTarget(base)],
      async stop() {
        await Promise.all([hub.stop(), base.stop()]);
        await Promise.all(dirs.map((d) => removeDir(d)));
      },
    };
  },
};

/** Runs `node src/selfhost/build.mjs out [config]` (a wrangler dry-run bundle, seconds of CPU). */
function selfhostBuild(out: string, config?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "src", "selfhost", "build.mjs"), out, ...(config ? [config] : [])], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`self-host build failed: ${stderr}`))));
  });
}

/**
 * Plain workerd: the self-host build of each (`src/selfhost/build.mjs`), no proxy in front. Both
 * builds run at once; `ready` resolves when they are done. A full run awaits it before measuring
 * anything; a smoke run lets them build while the wrangler dev figures run (they take ~8 s each).
 */
function plainWorkerd(): Runtime & { ready: Promise<void>; dispose(): Promise<void> } {
  const builds = Promise.all([tempStateDir("bench-hub-build"), tempStateDir("bench-base-build")]);
  const ready = builds.then(([hub, base]) => Promise.all([selfhostBuild(hub), selfhostBuild(base, join(ROOT, "test", "bench", "baseline", "wrangler.toml"))])).then(() => undefined);
  ready.catch(() => undefined); // awaited (and reported) where it is used
  return {
    name: "plain workerd",
    ready,
    async start() {
      await ready;
      const [hubBuild, baseBuild] = await builds;
      const stores = await Promise.all([tempStateDir("bench-hub-store"), tempStateDir("bench-base-store")]);
      const hub = await WorkerdServer.start(join(hubBuild, "config.capnp"), stores[0], await freePort(), { AUTH_MODE: "dev", LOG_LEVEL: "silent" });
      const base = await WorkerdServer.start(join(baseBuild, "config.capnp"), stores[1], await freePort(), {});
      return {
        targets: [hubTarget(hub), baselineTarget(base)],
        async stop() {
          await Promise.all([hub.stop(), base.stop()]);
          await Promise.all(stores.map((d) => removeDir(d)));
        },
      };
    },
    async dispose() {
      await ready.catch(() => undefined);
      await Promise.all((await builds).map((d) => removeDir(d)));
    },
  };
}

/**
 * The smoke run checks that every figure is produced, not what it reads: one pair of servers per
 * runtime serves all of that runtime's figures (a full run starts 5–6 pairs, one per figure), and
 * `stopShared` stops them. Server starts were most of the smoke run's time.
 */
const shared = new Map<Runtime, Promise<{ targets: Target[]; stop(): Promise<void> }>>();
async function stopShared(): Promise<void> {
  const envs = [...shared.values()];
  shared.clear();
  // A failed start is reported where it was awaited.
  await Promise.all(envs.map((e) => e.then((env) => env.stop(), () => undefined)));
}

/** Runs `fn` on freshly started servers of `runtime`, then stops them (smoke: on the shared pair). */
async function fresh<T>(runtime: Runtime, fn: (targets: Target[]) => Promise<T>): Promise<T> {
  if (SMOKE) {
    let env = shared.get(runtime);
    if (!env) shared.set(runtime, (env = runtime.start()));
    return fn((await env).targets);
  }
  const env = await runtime.start();
  try {
    return await fn(env.targets);
  } finally {
    await env.stop();
  }
}

// ---- report -------------------------------------------------------------------------------------------------

const ms = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? "–" : v.toFixed(2));
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? `${(a / b).toFixed(2)}×` : "–");
const kb = (v: number | undefined) => (v === undefined ? "–" : (v / 1024).toFixed(1));

function markdown(r: Results): string {
  const lines: string[] = [];
  lines.push(`Machine: ${r.machine}. Command: \`${r.command}\`. ${r.date}.`, "");
  lines.push("**Publish → delivered to all N subscribers** (ms; subscribers acknowledge every event)", "");
  lines.push("| runtime | N | hub p50 | p95 | p99 | max | baseline p50 | p95 | p99 | max | p50 ratio | p99 ratio |", "|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const f of r.latency) {
    const h = f.delivered.hub!, b = f.delivered.baseline!;
    lines.push(`| ${f.runtime} | ${f.n} | ${ms(h.p50)} | ${ms(h.p95)} | ${ms(h.p99)} | ${ms(h.max)} | ${ms(b.p50)} | ${ms(b.p95)} | ${ms(b.p99)} | ${ms(b.max)} | ${ratio(h.p50, b.p50)} | ${ratio(h.p99, b.p99)} |`);
  }
  lines.push("", "**Publish → 202 returned** (ms)", "");
  lines.push("| runtime | N | hub p50 | p95 | p99 | max | baseline p50 | p95 | p99 | max | p50 ratio |", "|---|---|---|---|---|---|---|---|---|---|---|");
  for (const f of r.latency) {
    const h = f.accepted.hub!, b = f.accepted.baseline!;
    lines.push(`| ${f.runtime} | ${f.n} | ${ms(h.p50)} | ${ms(h.p95)} | ${ms(h.p99)} | ${ms(h.max)} | ${ms(b.p50)} | ${ms(b.p95)} | ${ms(b.p99)} | ${ms(b.max)} | ${ratio(h.p50, b.p50)} |`);
  }
  lines.push("", "**Sustained throughput** (events/s fully delivered)", "", "| workload | hub | baseline | ratio |", "|---|---|---|---|");
  for (const f of r.throughput) lines.push(`| ${f.label} | ${f.eventsPerSecond.hub!.toFixed(0)} | ${f.eventsPerSecond.baseline!.toFixed(0)} | ${(f.eventsPerSecond.hub! / f.eventsPerSecond.baseline!).toFixed(2)} |`);
  lines.push("", "**CPU per event during the throughput rounds** (ms; server: the server's processes, user + system; client: the benchmark's Node process)", "");
  lines.push("| workload | server hub | server baseline | ratio | client hub | client baseline |", "|---|---|---|---|---|---|");
  for (const f of r.throughput) {
    const sh = f.serverCpuPerEvent.hub, sb = f.serverCpuPerEvent.baseline;
    lines.push(`| ${f.label} | ${ms(sh)} | ${ms(sb)} | ${ratio(sh, sb)} | ${ms(f.clientCpuPerEvent.hub)} | ${ms(f.clientCpuPerEvent.baseline)} |`);
  }
  lines.push("", "**Memory of the server process** (RSS delta, KB)", "", "| what | hub | baseline |", "|---|---|---|");
  for (const f of r.memory) lines.push(`| ${f.label} | ${kb(f.bytesPer.hub)} | ${kb(f.bytesPer.baseline)} |`);
  if (r.soak) {
    lines.push("", `**Memory under churn** (${r.soak.label}; MiB, before and after each round)`, "");
    for (const [t, series] of Object.entries(r.soak.rssMiB)) lines.push(`- ${t}: ${series.map((v) => v.toFixed(0)).join(" → ")}`);
  }
  lines.push("", "**Loss and order** (every subscriber got every event exactly once, in order)", "", "| run | target | subscribers | events | lost | duplicated | subscribers out of order |", "|---|---|---|---|---|---|---|");
  const lossRows = [...r.latency.map((f) => [`${f.runtime}: latency N=${f.n}`, f.loss] as const), ...r.throughput.map((f) => [f.label, f.loss] as const)];
  for (const [label, loss] of lossRows) {
    for (const [t, l] of Object.entries(loss)) lines.push(`| ${label} | ${t} | ${l.subscribers} | ${l.events} | ${l.lost} | ${l.duplicated} | ${l.outOfOrder} |`);
  }
  return `${lines.join("\n")}\n`;
}

interface Results {
  date: string;
  machine: string;
  command: string;
  smoke: boolean;
  latency: LatencyFigure[];
  throughput: ThroughputFigure[];
  memory: MemoryFigure[];
  soak?: SoakFigure;
}

/** Figures 1–4 on one runtime, hub and baseline alternating. */
async function figures(runtime: Runtime, results: Results): Promise<void> {
  if (ONLY.includes("latency")) await fresh(runtime, async (targets) => {
    for (const n of option("--ns")?.split(",").map(Number) ?? CONFIG.ns) {
      const f = await latency(targets, n, runtime.name);
      results.latency.push(f);
      console.log(`${runtime.name}: latency N=${n}: hub p50 ${ms(f.delivered.hub!.p50)} p99 ${ms(f.delivered.hub!.p99)} | baseline p50 ${ms(f.delivered.baseline!.p50)} p99 ${ms(f.delivered.baseline!.p99)} ms`);
    }
  });
  if (ONLY.includes("throughput")) await fresh(runtime, async (targets) => {
    for (const [topics, perTopic, conc] of [[1, 10, 8], [CONFIG.topics, CONFIG.perTopic, 32]] as const) {
      const f = await throughput(targets, topics, perTopic, conc, runtime.name);
      results.throughput.push(f);
      const rounds = (t: string) => f.rounds[t]!.map((v) => v.toFixed(0)).join(" ");
      console.log(`throughput ${f.label}: hub ${f.eventsPerSecond.hub!.toFixed(0)}/s (rounds ${rounds("hub")}) | baseline ${f.eventsPerSecond.baseline!.toFixed(0)}/s (rounds ${rounds("baseline")})`);
      console.log(`  server CPU per event: hub ${ms(f.serverCpuPerEvent.hub)} ms | baseline ${ms(f.serverCpuPerEvent.baseline)} ms (${ratio(f.serverCpuPerEvent.hub, f.serverCpuPerEvent.baseline)}); client: hub ${ms(f.clientCpuPerEvent.hub)} | baseline ${ms(f.clientCpuPerEvent.baseline)} ms`);
    }
  });
  if (ONLY.includes("memory")) results.memory.push(...(await memoryFigures(runtime)));
}

async function main(): Promise<void> {
  const results: Results = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; workerd ${workerdVersion()}`,
    command: SMOKE ? "npm run bench -- --smoke" : "npm run bench",
    smoke: SMOKE,
    latency: [],
    throughput: [],
    memory: [],
  };
  const plain = plainWorkerd();
  try {
    if (!SMOKE) await plain.ready;
    try {
      if (RUNTIMES.includes("wrangler")) await figures(wranglerDev, results);
    } finally {
      await stopShared();
    }
    if (RUNTIMES.includes("plain")) await figures(plain, results);
    if (RUNTIMES.includes("plain") && ONLY.includes("soak")) results.soak = await fresh(plain, (t) => soak(t));
  } finally {
    await stopShared();
    await plain.dispose();
  }
  const md = markdown(results);
  console.log(`\n${md}`);
  if (!WRITE) return;
  await mkdir(join(OUT, "results"), { recursive: true });
  await writeFile(join(OUT, "results", "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(OUT, "results", "latest.md"), md);
  for (const runtime of [wranglerDev.name, plain.name]) {
    const points = results.latency.filter((f) => f.runtime === runtime).map((f) => ({ n: f.n, hub: f.delivered.hub!, baseline: f.delivered.baseline! }));
    await writeFile(join(OUT, `latency-${runtime.replace(/\s+/g, "-")}.svg`), latencyPlot(points, runtime));
  }
  console.log(`results written to ${OUT}`);
}

function workerdVersion(): string {
  const r = spawnSync(join(ROOT, "node_modules", ".bin", "workerd"), ["--version"], { encoding: "utf8" });
  return r.stdout.trim().replace(/^workerd\s*/, "") || "unknown";
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);

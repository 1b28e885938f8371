// `npm run bench:probes`: where the memory per socket and per topic object goes in workerd, measured
// on small Workers of our own (no hub code but its schema's text), one fresh workerd process per
// probe: the RSS delta of the server process after opening COUNT sockets or waking COUNT objects,
// divided by COUNT. It explains the memory figures of `npm run bench` (docs/performance.md "Where the
// memory goes"). Loopback only.
//   npm run bench:probes               1000 sockets / objects per probe
//   npm run bench:probes -- --smoke    10 of each (it checks that every probe runs, nothing else)
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import WebSocket from "ws";
import { CURRENT, META } from "../../src/topic/tables.ts";
import { freePort, removeDir, tempStateDir, WorkerdServer } from "../helpers/server.ts";

const SMOKE = process.argv.includes("--smoke");
const COUNT = SMOKE ? 10 : 1000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, SMOKE ? 50 : ms));

/**
 * A module with the Durable Object class `Room` (body `roomBody`) and a Worker that hands every request
 * to the object named by `?t=` (default `x`), or, with `workerSockets`, accepts `/ws` sockets itself.
 */
function worker(roomBody: string, workerSockets = false): string {
  return `import { DurableObject } from "cloudflare:workers";
const BODY = "x".repeat(800);
export class Room extends DurableObject {
${roomBody}
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    ${workerSockets ? `if (url.pathname.startsWith("/ws")) {
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      (globalThis.kept ??= []).push(server);
      return new Response(null, { status: 101, webSocket: client });
    }` : ""}
    return env.ROOM.get(env.ROOM.idFromName(url.searchParams.get("t") ?? "x")).fetch(request);
  },
};`;
}

const accept = (extra: string) => `  async fetch(request) {
    const [client, server] = Object.values(new WebSocketPair());
    const id = crypto.randomUUID();
${extra}
    return new Response(null, { status: 101, webSocket: client });
  }`;

// The hub's tables, as a fresh topic object creates them (its only hub import: the schema's text).
const HUB_TABLES = [META, ...CURRENT];
const hubTables = `this.ctx.storage.transactionSync(() => { for (const s of ${JSON.stringify(HUB_TABLES)}) this.ctx.storage.sql.exec(s); });
    this.ctx.storage.sql.exec("INSERT INTO events (id, name, accepted_at, body) VALUES (?, ?, ?, ?)", "id", "Patient-open", Date.now(), BODY);`;
const hubWrites = `const sql = this.ctx.storage.sql;
    sql.exec("INSERT INTO contexts (anchor, anchor_type, open_event, version_id, opened_seq) VALUES (?, ?, ?, ?, ?)", "Patient/1", "Patient", BODY, "v1", 1);
    sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", "current", "Patient/1");
    sql.exec("INSERT OR REPLACE INTO deadlines (kind, ref, due) VALUES (?, ?, ?)", "idle", "", Date.now() + 3600000);`;
const topic = (body: string) => `  async alarm() {}
  async fetch() {
    ${body}
    return new Response("ok");
  }`;

interface Probe {
  kind: "socket" | "topic";
  name: string;
  source: string;
}

const PROBES: Probe[] = [
  { kind: "socket", name: "a Worker accepts the socket itself (no Durable Object)", source: worker("", true) },
  { kind: "socket", name: "a Durable Object accepts it, hibernation API (the baseline)", source: worker(accept("    this.ctx.acceptWebSocket(server);")) },
  { kind: "socket", name: "… and sends one 200-byte frame on accept", source: worker(accept(`    this.ctx.acceptWebSocket(server);
    server.send(JSON.stringify({ "hub.mode": "subscribe", "hub.topic": "t".repeat(40), "hub.events": "Patient-open", pad: "p".repeat(120) }));`)) },
  { kind: "socket", name: "… and a tag, an attachment and a subscription row written and updated (the hub's connect)", source: worker(`  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec(${JSON.stringify(CURRENT.find((ddl) => ddl.includes("TABLE IF NOT EXISTS subscriptions")))});
  }
${accept(`    const sql = this.ctx.storage.sql;
    sql.exec("INSERT INTO subscriptions (id, secret_hash, events, name, lease_seconds, created_at) VALUES (?, ?, ?, ?, ?, ?)", id, id + "h", "Patient-open", "probe", 3600, Date.now());
    await new Promise((r) => setTimeout(r, 1));
    sql.exec("UPDATE subscriptions SET connected_at = ?, expires_at = ? WHERE id = ?", Date.now(), Date.now() + 3600000, id);
    this.ctx.acceptWebSocket(server, [id]);
    server.serializeAttachment({ sub: id, events: ["Patient-open"], name: "probe" });
    server.send(JSON.stringify({ "hub.mode": "subscribe", "hub.topic": "t".repeat(40), "hub.events": "Patient-open", pad: "p".repeat(120) }));`)}`) },
  { kind: "topic", name: "one table, one row (the baseline)", source: worker(topic(`this.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)");
    this.ctx.storage.sql.exec("INSERT INTO events (body) VALUES (?)", BODY);`)) },
  { kind: "topic", name: "the hub's six tables, one event row", source: worker(topic(hubTables)) },
  { kind: "topic", name: "… and an open context, the current anchor and a deadline", source: worker(topic(`${hubTables}\n    ${hubWrites}`)) },
  { kind: "topic", name: "… and an alarm set", source: worker(topic(`${hubTables}\n    ${hubWrites}\n    await this.ctx.storage.setAlarm(Date.now() + 3600000);`)) },
  { kind: "topic", name: "… and 20 more distinct SELECT statements, each run once", source: worker(topic(`${hubTables}\n    ${hubWrites}
    await this.ctx.storage.setAlarm(Date.now() + 3600000);
    for (let k = 0; k < 20; k++) this.ctx.storage.sql.exec(\`SELECT e.seq, e.id, c.anchor FROM events e LEFT JOIN contexts c ON c.opened_seq = e.seq WHERE e.seq > \${k} ORDER BY e.seq DESC LIMIT 5\`).toArray();`)) },
];

function config(): string {
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .main), (name = "do-storage", disk = (path = "/tmp", writable = true))],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);
const main :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "2026-10-01",
  compatibilityFlags = ["no_web_socket_compression"],
  bindings = [(name = "ROOM", durableObjectNamespace = (className = "Room"))],
  durableObjectNamespaces = [(className = "Room", uniqueKey = "probe-Room", enableSql = true)],
  durableObjectStorage = (localDisk = "do-storage"),
);
`;
}

async function pool(count: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) await fn(next++);
  }));
}

/** RSS delta per socket or object, in KB, in a fresh workerd running `probe`. */
async function measure(probe: Probe): Promise<number> {
  const dir = await tempStateDir("fhircast-probe");
  await mkdir(join(dir, "storage"));
  await writeFile(join(dir, "worker.js"), probe.source);
  await writeFile(join(dir, "config.capnp"), config());
  const server = await WorkerdServer.start(join(dir, "config.capnp"), join(dir, "storage"), await freePort(), {});
  const sockets: WebSocket[] = [];
  try {
    await sleep(1000);
    const before = await server.workerdRss();
    await pool(COUNT, 25, async (i) => {
      if (probe.kind === "topic") {
        const res = await fetch(`${server.origin}/do?t=probe-${i}`);
        if (res.status !== 200) throw new Error(`${probe.name}: ${res.status} ${await res.text()}\n${server.output.slice(-2000)}`);
        return;
      }
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, { perMessageDeflate: false });
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      sockets.push(ws);
    });
    await sleep(1500);
    return ((await server.workerdRss()) - before) / COUNT / 1024;
  } finally {
    sockets.forEach((s) => s.terminate());
    await server.stop("SIGKILL");
    await removeDir(dir);
  }
}

console.log(`memory probes: RSS delta of workerd per ${COUNT} sockets or objects (KB each)\n`);
for (const kind of ["socket", "topic"] as const) {
  console.log(`| per ${kind === "socket" ? "socket" : "object (topic)"} | KB |`);
  console.log("|---|---|");
  for (const probe of PROBES.filter((p) => p.kind === kind)) console.log(`| ${probe.name} | ${(await measure(probe)).toFixed(1)} |`);
  console.log("");
}

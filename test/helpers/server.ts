// Node-side helpers for the end-to-end tests: start the real local server exactly as `npm start`
// does (wrangler dev on 127.0.0.1, state persisted on disk), stop or kill it, and a plain WebSocket
// client (Node 24's global WebSocket) with a frame queue. Every wait has a timeout. Node only: this
// file is type-checked by test/e2e/tsconfig.json, not by the Workers tsconfig.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root (where package.json and wrangler.toml live). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");
const BIN = join(ROOT, "node_modules", ".bin");

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A free loopback port: bind port 0, read the port the OS chose, release it. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        reject(new Error("could not read the bound port"));
        return;
      }
      const { port } = addr;
      srv.close(() => resolvePort(port));
    });
  });
}

/**
 * The environment `npm start` gives wrangler: the `NAME=value` assignments before `wrangler` in
 * package.json's start script (e.g. X_LOCAL_OBSERVABILITY=false), so the tests run what it runs.
 */
export function startScriptEnv(): Record<string, string> {
  const script = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start;
  const prefix = script.slice(0, script.indexOf("wrangler "));
  return Object.fromEntries([...prefix.matchAll(/\b([A-Z][A-Z0-9_]*)=(\S*)/g)].map((m) => [m[1]!, m[2]!]));
}

/** A fresh temporary directory for `--persist-to`; remove it with `removeDir` when done. */
export function tempStateDir(label = "fhircast-e2e"): Promise<string> {
  return mkdtemp(join(tmpdir(), `${label}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export interface ServerOptions {
  /** Directory for Durable Object state; pass the same one to a later start to keep state. */
  persistTo: string;
  /** Extra `--var KEY:VALUE` settings (wrangler.toml [vars] overrides). */
  vars?: Record<string, string>;
  /** Port to listen on (a restart passes the previous one, as `npm start` would); default: a free one. */
  port?: number;
  /** How long to wait for GET /health to answer (default 60 s). */
  startTimeoutMs?: number;
  /** Another wrangler configuration (the benchmark's baseline); default: the hub's wrangler.toml. */
  config?: string;
  /** A wrangler.toml environment (`--env production`); default: the top level, as `npm start`. */
  env?: string;
}

const running = new Set<HubServer>();
// Never leave a wrangler/workerd behind, even when a test run is interrupted.
process.once("exit", () => {
  for (const s of running) s.signalGroup("SIGKILL");
});

/** A running `wrangler dev` (and its workerd children), in its own process group. */
export class HubServer {
  /** Everything the server printed (stdout and stderr), for diagnostics. */
  output = "";
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private hasExited = false;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly persistTo: string,
  ) {
    this.exited = new Promise((res) => {
      child.once("exit", (code, signal) => {
        this.hasExited = true;
        res({ code, signal });
      });
    });
    child.stdout?.on("data", (d: Buffer) => this.append(d));
    child.stderr?.on("data", (d: Buffer) => this.append(d));
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get hubUrl(): string {
    return `${this.origin}/api/hub`;
  }

  private append(d: Buffer): void {
    this.output += d.toString("utf8");
    if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    if (process.env.E2E_SERVER_LOG) process.stderr.write(d);
  }

  /** Starts the server as `npm start` does, on a free loopback port, and waits until it answers. */
  static async start(opts: ServerOptions): Promise<HubServer> {
    const port = opts.port ?? (await freePort());
    const inspectorPort = await freePort();
    const args = [
      "dev",
      "--ip", "127.0.0.1",
      "--port", String(port),
      "--persist-to", opts.persistTo,
      "--show-interactive-dev-session=false",
      "--inspector-port", String(inspectorPort),
    ];
    for (const [k, v] of Object.entries(opts.vars ?? {})) args.push("--var", `${k}:${v}`);
    if (opts.config) args.push("--config", opts.config);
    if (opts.env) args.push("--env", opts.env);
    const child = spawn(WRANGLER, args, {
      cwd: ROOT,
      // Own process group, so stop() reaches workerd too.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        ...startScriptEnv(),
        // The Node that runs the tests (24) and the project's bin dir come first, as under npm scripts.
        PATH: [dirname(process.execPath), BIN, process.env.PATH ?? ""].join(":"),
        CI: "true",
        WRANGLER_SEND_METRICS: "false",
        NO_COLOR: "1",
        FORCE_COLOR: "0",
      },
    });
    const server = new HubServer(child, port, opts.persistTo);
    running.add(server);
    try {
      await server.waitHealthy(opts.startTimeoutMs ?? 60_000);
    } catch (e) {
      await server.kill();
      throw new Error(`${(e as Error).message}\n--- wrangler output ---\n${server.output.slice(-4000)}`);
    }
    return server;
  }

  /** Polls GET /health until it answers 200. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "no answer yet";
    while (Date.now() < deadline) {
      if (this.hasExited) throw new Error(`wrangler exited before answering on ${this.origin}`);
      try {
        const res = await fetch(`${this.origin}/health`, { signal: AbortSignal.timeout(2000) });
        const text = await res.text();
        if (res.status === 200) return;
        last = `${res.status} ${text.slice(0, 200)}`;
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(150);
    }
    throw new Error(`server on ${this.origin} did not answer GET /health within ${timeoutMs} ms (last: ${last})`);
  }

  /** The processes of this server's group (wrangler and workerd), from Linux /proc. */
  private async processes(): Promise<{ pid: string; command: string; cpuMs: number }[]> {
    const { readdir } = await import("node:fs/promises");
    const out: { pid: string; command: string; cpuMs: number }[] = [];
    for (const pid of await readdir("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      const stat = await procStat(pid);
      if (stat && stat.group === this.child.pid) out.push({ pid, command: stat.command, cpuMs: stat.cpuMs });
    }
    return out;
  }

  /** Resident memory (bytes) of the workerd processes of this server, for benchmarks. */
  async workerdRss(): Promise<number> {
    let total = 0;
    for (const p of await this.processes()) if (p.command.startsWith("workerd")) total += await procRss(p.pid);
    return total;
  }

  /**
   * CPU time (user + system, ms) used so far by every process of this server's group: wrangler's
   * local proxy and workerd, everything that serves a request under `wrangler dev`. For benchmarks.
   */
  async cpuMs(): Promise<number> {
    return (await this.processes()).reduce((sum, p) => sum + p.cpuMs, 0);
  }

  /** Sends a signal to the whole process group (wrangler and workerd). */
  signalGroup(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // already gone
    }
  }

  private async waitGroupGone(timeoutMs: number): Promise<boolean> {
    const pid = this.child.pid;
    if (pid === undefined) return true;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        process.kill(-pid, 0); // throws ESRCH once no process of the group is left
      } catch {
        return true;
      }
      if (Date.now() >= deadline) return false;
      await sleep(50);
    }
  }

  /** Graceful stop: SIGTERM to the group, SIGKILL after `graceMs` if anything is left. */
  async stop(graceMs = 5000): Promise<void> {
    this.signalGroup("SIGTERM");
    const gone = await this.waitGroupGone(graceMs);
    if (!gone) this.signalGroup("SIGKILL");
    await this.finish();
  }

  /** Crash: SIGKILL to the whole group at once, no chance to flush anything. */
  async kill(): Promise<void> {
    this.signalGroup("SIGKILL");
    await this.finish();
  }

  private async finish(): Promise<void> {
    const gone = await this.waitGroupGone(10_000);
    await Promise.race([this.exited, sleep(10_000)]);
    running.delete(this);
    if (!gone) throw new Error(`process group ${this.child.pid} still alive after SIGKILL`);
  }
}

// ---- plain workerd (the self-host build) ---------------------------------------------------------------

const WORKERD = join(ROOT, "node_modules", ".bin", "workerd");

/**
 * One `workerd serve config.capnp` (a `npm run build:selfhost` output) in its own process group:
 * the self-hosting tests and the benchmark's plain-runtime memory figures use it.
 */
export class WorkerdServer {
  output = "";
  private exited: Promise<void>;
  private constructor(readonly child: ChildProcess, readonly port: number) {
    this.exited = new Promise((res) => child.once("exit", () => res()));
    child.stdout?.on("data", (d: Buffer) => (this.output += d.toString("utf8")));
    child.stderr?.on("data", (d: Buffer) => (this.output += d.toString("utf8")));
  }
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get hubUrl(): string {
    return `${this.origin}/api/hub`;
  }

  static async start(config: string, storage: string, port: number, settings: Record<string, string>): Promise<WorkerdServer> {
    const env: Record<string, string> = {};
    // Only what the test sets: no hub setting leaks in from the environment running the tests.
    for (const k of ["PATH", "HOME", "TMPDIR", "LANG"]) if (process.env[k] !== undefined) env[k] = process.env[k]!;
    const child = spawn(WORKERD, ["serve", config, "--directory-path", `do-storage=${storage}`, "--socket-addr", `http=127.0.0.1:${port}`], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...env, ...settings },
    });
    const w = new WorkerdServer(child, port);
    runningWorkerd.add(w);
    const deadline = Date.now() + 30_000;
    let last = "";
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break;
      try {
        const res = await fetch(`${w.origin}/health`, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) return w;
        last = String(res.status);
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(100);
    }
    await w.stop("SIGKILL");
    throw new Error(`workerd did not answer /health (${last})\n${w.output.slice(-3000)}`);
  }

  /** CPU time (user + system, ms) the workerd process has used so far. For benchmarks. */
  async cpuMs(): Promise<number> {
    return (await procStat(String(this.child.pid)))?.cpuMs ?? 0;
  }

  /** Resident memory (bytes) of the workerd process. */
  async workerdRss(): Promise<number> {
    return procRss(String(this.child.pid));
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      // already gone
    }
    const t = setTimeout(() => {
      try {
        process.kill(-this.child.pid!, "SIGKILL");
      } catch {
        // gone
      }
    }, 5000);
    await this.exited;
    clearTimeout(t);
    runningWorkerd.delete(this);
  }
}
const runningWorkerd = new Set<WorkerdServer>();
process.once("exit", () => {
  for (const w of runningWorkerd) {
    try {
      process.kill(-w.child.pid!, "SIGKILL");
    } catch {
      // gone
    }
  }
});


// ---- HTTP helpers ---------------------------------------------------------------------------------

/** fetch with a timeout (every wait has one). */
export function http(url: string, init: RequestInit = {}, timeoutMs = 10_000): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
}

// ---- WebSocket client -----------------------------------------------------------------------------

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

  /** Acknowledges a received event (FHIRcast 3.0.0 §2.5: `{id, status: "200"}`). */
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

// ---- FHIRcast request helpers ----------------------------------------------------------------------

let counter = 0;
/** A topic unique to the calling test. */
export function uniqueTopic(label = "e2e"): string {
  return `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * An access token for `topic` from the hub's development issuer (`POST /auth/token`, client
 * credentials), as an application gets one from `npm start`'s default AUTH_MODE=dev. Undefined when
 * the hub runs without that issuer (404): requests then go without Authorization.
 */
export async function devToken(origin: string, topic: string, scope = "fhircast/*.read fhircast/*.write", clientId = "e2e-app"): Promise<string | undefined> {
  const res = await http(`${origin}/auth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, scope, "hub.topic": topic }).toString(),
  });
  const text = await res.text();
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`POST /auth/token: expected 200, got ${res.status} ${text}`);
  return (JSON.parse(text) as { access_token: string }).access_token;
}

function authHeader(token: string | undefined): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Subscribes with a form POST, as curl would; returns the endpoint (throws on anything but 202). */
export async function subscribe(hubUrl: string, topic: string, events: string, opts: { token?: string; extra?: Record<string, string> } = {}): Promise<string> {
  const res = await http(hubUrl, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", ...authHeader(opts.token) },
    body: new URLSearchParams({ "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": topic, "hub.events": events, ...opts.extra }).toString(),
  });
  const text = await res.text();
  if (res.status !== 202) throw new Error(`subscribe: expected 202, got ${res.status} ${text}`);
  return (JSON.parse(text) as { "hub.channel.endpoint": string })["hub.channel.endpoint"];
}

/** Publishes a JSON event; returns the response (the caller checks the status). */
export function publish(hubUrl: string, body: unknown, opts: { token?: string; timeoutMs?: number } = {}): Promise<Response> {
  return http(
    hubUrl,
    { method: "POST", headers: { "Content-Type": "application/json", ...authHeader(opts.token) }, body: JSON.stringify(body) },
    opts.timeoutMs,
  );
}

/** GET {hub.url}/{topic}. */
export async function currentContext(hubUrl: string, topic: string, opts: { token?: string } = {}): Promise<any> {
  const res = await http(`${hubUrl}/${encodeURIComponent(topic)}`, { headers: authHeader(opts.token) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`get context: expected 200, got ${res.status} ${text}`);
  return JSON.parse(text);
}

/** The event fixtures the workers tests use too (test/helpers/fixtures.ts). */
export { event, patient } from "./fixtures.ts";

/** USER_HZ, the unit of CPU times in /proc (`getconf CLK_TCK`): 100 on Linux. */
const CLOCK_TICKS = 100;

/** A process's command, group and CPU time (user + system, ms) from /proc/<pid>/stat; undefined once it is gone. */
async function procStat(pid: string): Promise<{ command: string; group: number; cpuMs: number } | undefined> {
  const { readFile } = await import("node:fs/promises");
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the command: state(0) ppid(1) pgrp(2) … utime(11) stime(12), in clock ticks.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { command: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), group: Number(fields[2]), cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}

/** A process's resident memory (bytes) from /proc/<pid>/status; 0 once it is gone. */
async function procRss(pid: string): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1];
    return Number(kb ?? 0) * 1024;
  } catch {
    return 0;
  }
}

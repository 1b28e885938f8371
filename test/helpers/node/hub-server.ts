// The real local server exactly as `npm start` runs it: wrangler dev on 127.0.0.1, state persisted
// on disk, in its own process group; start, stop (SIGTERM) or kill (SIGKILL) it, read its processes.
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { BIN, freePort, ROOT, sleep, startScriptEnv } from "./paths.ts";
import { procRss, procStat } from "./proc.ts";

const WRANGLER = join(BIN, "wrangler");

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

  /** Polls GET /health until the hub answers: 200, or 503 "refused" (its settings make it refuse work). */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "no answer yet";
    while (Date.now() < deadline) {
      if (this.hasExited) throw new Error(`wrangler exited before answering on ${this.origin}`);
      try {
        const res = await fetch(`${this.origin}/health`, { signal: AbortSignal.timeout(2000) });
        const text = await res.text();
        if (res.status === 200 || (res.status === 503 && text.includes('"refused"'))) return;
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
    // The bound's timer is cleared: a pending one kept the process that stopped the server (Vitest's
    // own, for the shared hub) alive for 10 s.
    let bound: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.exited, new Promise((r) => (bound = setTimeout(r, 10_000)))]);
    clearTimeout(bound);
    running.delete(this);
    if (!gone) throw new Error(`process group ${this.child.pid} still alive after SIGKILL`);
  }
}

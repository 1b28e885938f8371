// Plain workerd serving a self-host build (`npm run build:selfhost`), in its own process group.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { BIN, sleep } from "./paths.ts";
import { procRss, procStat } from "./proc.ts";

const WORKERD = join(BIN, "workerd");

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
        // 503 "refused": up, but its settings make it refuse work (what some tests start on purpose).
        if (res.status === 200 || (res.status === 503 && (await res.text()).includes('"refused"'))) return w;
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

  /** Crash: SIGKILL, no chance to flush anything. */
  kill(): Promise<void> {
    return this.stop("SIGKILL");
  }

  /**
   * Stops workerd with `signal`, SIGKILL after 5 s if it is still running. The default is SIGINT
   * (Ctrl-C): workerd ends at once. On SIGTERM it waits for its open connections to end, and it
   * holds a WebSocket's ~10 s after its close, so with subscribers about SIGTERM means the 5 s and
   * then SIGKILL (a test of SIGTERM itself passes it).
   */
  async stop(signal: NodeJS.Signals = "SIGINT"): Promise<void> {
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

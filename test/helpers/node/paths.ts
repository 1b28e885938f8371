// Where things are and scratch space: the project root, free loopback ports, temporary directories,
// and the environment `npm start` gives wrangler.
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root (where package.json and wrangler.toml live). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
/** The project's node_modules/.bin (wrangler, workerd, esbuild). */
export const BIN = join(ROOT, "node_modules", ".bin");

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The ports servers listen on: below the kernel's ephemeral range (where port 0 binds and every
 * outgoing connection takes its local port), so no client socket of the run can take a stopped
 * server's port before its restart on the same port (`npm start` restarts there). An occasional
 * "Address already in use" at such a restart, while other files held thousands of connections,
 * fits that cause.
 */
function listenRange(): [number, number] {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (low > 12_000) return [10_000, low - 1];
  } catch {
    // not Linux: the range below is outside every usual default ephemeral range
  }
  return [20_000, 32_767];
}

/** Claims are files in this folder, one per port; a claim older than an hour is a finished run's. */
const CLAIMS = join(tmpdir(), "fhircast-test-ports");
const CLAIM_MS = 3_600_000;

/** Claims `port` for this process, across the run's processes (test files run in several). */
function claim(port: number): boolean {
  const file = join(CLAIMS, String(port));
  try {
    writeFileSync(file, String(process.pid), { flag: "wx" });
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < CLAIM_MS) return false;
      writeFileSync(file, String(process.pid)); // a stale claim
      return true;
    } catch {
      return false;
    }
  }
}

/** Whether `port` can be bound on loopback now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/**
 * A free loopback port for a server: picked at random below the ephemeral range (listenRange),
 * claimed so that no other process of the run picks it, and checked to be bindable.
 */
export async function freePort(): Promise<number> {
  mkdirSync(CLAIMS, { recursive: true });
  const [low, high] = listenRange();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (claim(port) && (await bindable(port))) return port;
  }
  throw new Error(`no free port in ${low}–${high} after 200 attempts`);
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

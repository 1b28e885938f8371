// Where things are and scratch space: the project root, free loopback ports, temporary directories,
// and the environment `npm start` gives wrangler.
import { readFileSync } from "node:fs";
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

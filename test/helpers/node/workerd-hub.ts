// The hub on plain workerd, with the settings `npm start` runs (wrangler.toml's top-level [vars])
// and the bundle `wrangler deploy` uploads, for the e2e files that test the hub's behaviour rather
// than what `npm start` gives a developer: kill -9 durability, the client's reconnection, heartbeats,
// load, stalled sockets, SMART launch. A start costs ~0.2 s of CPU, against ~4.3 s for `wrangler dev`
// (its CLI, esbuild, and a proxy workerd in front of the hub's), on a 2-core machine where `npm test`
// is bound by CPU (docs/decisions.md "Test run time"). The files about `npm start` itself (hub,
// inspector, ops, first-hour, the shared hub), the benchmark, and stalled-memory (its RSS bound was
// set on wrangler dev's processes) keep `wrangler dev` (test/helpers/node/hub-server.ts).
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { inject } from "vitest";
import { waitUntil } from "../until.ts";
import { runCommand } from "./command.ts";
import { freePort, ROOT } from "./paths.ts";
import { WorkerdServer } from "./workerd-server.ts";

export interface WorkerdHubOptions {
  /** Directory for Durable Object state; pass the same one to a later start to keep state. */
  persistTo: string;
  /** Settings over wrangler.toml's top-level [vars], as `wrangler dev --var` would give them. */
  vars?: Record<string, string>;
  /** Port to listen on (a restart passes the previous one); default: a free one. */
  port?: number;
}

/** What test/helpers/node/build-workerd-hub.mjs writes to hub.json. */
export interface WorkerdHubBuild {
  /** The bundle, as `wrangler deploy` uploads it. */
  module: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
  durableObjects: { name: string; className: string }[];
  /** The [assets] directory, which the Worker serves through its PUBLIC_FILES binding on workerd. */
  publicFiles: string;
  /** wrangler.toml's top-level [vars]. */
  vars: Record<string, string>;
}

let build: Promise<WorkerdHubBuild> | undefined;

/** The run's build (test/helpers/node/build-workerd-hub.mjs): made by the first file to ask, awaited by the others. */
function hubBuild(): Promise<WorkerdHubBuild> {
  return (build ??= (async () => {
    const dir = inject("workerdHubDir");
    if (!dir) throw new Error("no workerd hub directory: list test/helpers/node/workerd-hub-setup.ts in this project's globalSetup (vitest.config.ts)");
    const out = join(dir, "build");
    const done = join(out, "hub.json");
    const failed = join(dir, "build-error.txt");
    let mine = true;
    try {
      await mkdir(out); // atomic: exactly one process of the run builds
    } catch {
      mine = false;
    }
    if (mine) {
      const run = await runCommand(process.execPath, [join(ROOT, "test", "helpers", "node", "build-workerd-hub.mjs"), out], { cwd: ROOT, timeoutMs: 120_000 }).catch(
        (e: Error) => ({ code: 1, stdout: "", stderr: e.message }),
      );
      if (run.code !== 0) await writeFile(failed, `${run.stdout}${run.stderr}`);
    }
    await waitUntil(() => existsSync(done) || existsSync(failed), 120_000, `the workerd hub's build in ${out}`, 100);
    if (existsSync(failed)) throw new Error(`the workerd hub's build failed:\n${await readFile(failed, "utf8")}`);
    return JSON.parse(await readFile(done, "utf8")) as WorkerdHubBuild;
  })());
}

/**
 * A workerd configuration for one start: the settings as text bindings (wrangler.toml's [vars] under
 * `vars`, as `wrangler dev --var` gives them), Durable Objects stored (SQLite) under the directory
 * given at start, loopback and private addresses reachable (the tests' authorization servers).
 */
function capnp(b: WorkerdHubBuild, settings: Record<string, string>): string {
  const str = (s: string) => JSON.stringify(s); // a Cap'n Proto text literal (same escapes as JSON)
  const bindings = [
    ...b.durableObjects.map((d) => `(name = ${str(d.name)}, durableObjectNamespace = (className = ${str(d.className)}))`),
    ...Object.entries(settings).map(([k, v]) => `(name = ${str(k)}, text = ${str(v)})`),
    `(name = "PUBLIC_FILES", service = "public-files")`,
  ];
  const classes = [...new Set(b.durableObjects.map((d) => d.className))];
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "hub", worker = .hub),
    (name = "do-storage", disk = (path = "/nonexistent", writable = true)),
    (name = "internet", network = (allow = ["public", "private", "local"])),
    (name = "public-files", disk = (path = ${str(b.publicFiles)}, writable = false)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "hub")],
);
const hub :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed ${str(basename(b.module))})],
  compatibilityDate = ${str(b.compatibilityDate)},
  compatibilityFlags = [${b.compatibilityFlags.map(str).join(", ")}],
  bindings = [${bindings.join(", ")}],
  durableObjectNamespaces = [${classes.map((c) => `(className = ${str(c)}, uniqueKey = ${str(`fhircast-hub-${c}`)}, enableSql = true)`).join(", ")}],
  durableObjectStorage = (localDisk = "do-storage"),
);
`;
}

/** Starts the hub on plain workerd and waits until it answers GET /health. stop() is SIGINT (Ctrl-C), kill() SIGKILL. */
export async function startWorkerdHub(opts: WorkerdHubOptions): Promise<WorkerdServer> {
  const b = await hubBuild();
  // Beside the bundle, which the configuration embeds by a relative name.
  const config = join(dirname(b.module), `hub-${randomUUID()}.capnp`);
  await writeFile(config, capnp(b, { ...b.vars, ...opts.vars }));
  return WorkerdServer.start(config, opts.persistTo, opts.port ?? (await freePort()), {});
}

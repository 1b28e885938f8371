#!/usr/bin/env node
// The hub for tests that run it on plain workerd (test/helpers/node/workerd-hub.ts), built once per
// test run into the directory given: the bundle `wrangler deploy` uploads (`wrangler deploy --dry-run
// --outdir`), and hub.json, what a workerd configuration needs from wrangler.toml (its compatibility
// settings, Durable Objects, static files, and the top-level [vars] that `npm start` runs with).
// hub.json is written last: its presence means done. Each start writes its own configuration with
// its own settings (the product's self-host build, src/selfhost/build.mjs, fixes them at build time).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { unstable_readConfig } from "wrangler";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const OUT = resolve(process.argv[2] ?? "");
if (!process.argv[2]) throw new Error("usage: build-workerd-hub.mjs <output directory>");
mkdirSync(OUT, { recursive: true });

const config = unstable_readConfig({ config: join(ROOT, "wrangler.toml") }, { hideWarnings: true });
const built = spawnSync(join(ROOT, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--outdir", OUT], {
  cwd: ROOT,
  encoding: "utf8",
  stdio: ["ignore", "pipe", "pipe"],
  env: { ...process.env, PATH: [dirname(process.execPath), join(ROOT, "node_modules", ".bin"), process.env.PATH ?? ""].join(":"), WRANGLER_SEND_METRICS: "false", CI: "true" },
});
if (built.status !== 0 || !existsSync(join(OUT, "worker.js"))) {
  process.stderr.write(`${built.stdout}${built.stderr}`);
  throw new Error(`wrangler deploy --dry-run failed (exit ${built.status})`);
}

const vars = Object.fromEntries(Object.entries(config.vars).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
/** @type {import("./workerd-hub.ts").WorkerdHubBuild} */
const build = {
  module: join(OUT, "worker.js"),
  compatibilityDate: config.compatibility_date,
  compatibilityFlags: config.compatibility_flags ?? [],
  durableObjects: config.durable_objects.bindings.map((b) => ({ name: b.name, className: b.class_name })),
  publicFiles: resolve(ROOT, config.assets.directory),
  vars,
};
writeFileSync(join(OUT, "hub.json"), JSON.stringify(build, null, 2));

#!/usr/bin/env node
// `npm run build:selfhost`: the hub for one server of your own, run by workerd (docs/operations.md
// "Self-hosting"). Writes, into dist/selfhost/ (or the directory given as the first argument):
//   worker.js      the same bundle `wrangler deploy` uploads (wrangler deploy --dry-run --outdir)
//   config.capnp   a workerd configuration: the Worker, both Durable Object classes (SQLite-backed)
//                  stored on local disk, the settings as bindings, one HTTP socket
//   public/        the inspector page and the browser client (src/public/), served by the Worker
//                  from a read-only disk service at /inspector/ and /fhircast-client.js, as [assets]
//                  serves them on the edge; SELFHOST_ASSETS=off leaves them out (then they are 404)
// `npm run selfhost` (src/selfhost/run.mjs) builds when needed and runs it on this machine.
// Run it with: node_modules/.bin/workerd serve dist/selfhost/config.capnp \
//                --directory-path do-storage=/var/lib/fhircast-hub --socket-addr http=127.0.0.1:8787
//
// Settings: the tunables of wrangler.toml's top-level [vars] become text bindings, fixed at build
// time. The per-site settings (SITE below: authentication, origins, the metrics secret) are read
// from the server's environment when workerd starts (systemd EnvironmentFile), so no secret is ever
// written into the build. An unset one is absent: AUTH_MODE unset means smart, which fails closed.
// HUB_ENV is fixed to "selfhost" in the build, never read from the environment: AUTH_MODE=open is
// refused (503) and AUTH_MODE=dev is said at error level at every start (src/config.ts).
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { unstable_readConfig } from "wrangler";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUT = resolve(ROOT, process.argv[2] ?? "dist/selfhost");
/** Another wrangler configuration may be built the same way (the benchmark's baseline does). */
const CONFIG = resolve(ROOT, process.argv[3] ?? "wrangler.toml");

/** Read from the environment of the workerd process, never baked in. */
const SITE = [
  "AUTH_MODE",
  "SMART_JWKS_URL",
  "SMART_ISSUER",
  "SMART_AUDIENCE",
  "AUTH_ALGORITHMS",
  "TOPIC_CLAIM",
  "TOPIC_BINDING",
  "JWKS_CACHE_SECONDS",
  "TOKEN_CACHE_SECONDS",
  "SMART_INTROSPECTION_URL",
  "INTROSPECTION_CLIENT_ID",
  "INTROSPECTION_CLIENT_SECRET",
  "INTROSPECT",
  "INTROSPECTION_TOPIC_MEMBER",
  "ALLOWED_ORIGINS",
  "PUBLIC_URL",
  "METRICS_TOKEN",
  "LOG_LEVEL",
];
/** Edge-only settings that mean nothing on one server. */
const EDGE_ONLY = ["DO_JURISDICTION", "DO_LOCATION_HINT"];
/** Fixed by the build, whatever wrangler.toml or the environment says. */
const FIXED = { HUB_ENV: "selfhost" };

/** The static files of src/public/ that the self-hosted hub serves (the rest of the hub is the Worker). */
const PUBLIC = ["inspector", "fhircast-client.js", "fhircast-client.js.map"];
const assetsSetting = (process.env.SELFHOST_ASSETS ?? "on").trim().toLowerCase();
if (!["on", "off"].includes(assetsSetting)) {
  console.error(`build:selfhost: SELFHOST_ASSETS must be "on" or "off", not "${process.env.SELFHOST_ASSETS}"`);
  process.exit(2);
}
const config = unstable_readConfig({ config: CONFIG }, { hideWarnings: true });
/** A configuration without [assets] (the benchmark's baseline) has no static files to serve. */
const withAssets = assetsSetting === "on" && typeof config.assets?.directory === "string";

// 1. The bundle, exactly as a deploy would build it (offline). Wrangler's own output is kept back:
// its table of the top-level [vars] (AUTH_MODE "dev", HUB_ENV "development") is not what the
// self-host build runs, and its warning about environments concerns deploys. Shown on failure only.
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const wrangler = join(ROOT, "node_modules", ".bin", "wrangler");
const built = spawnSync(wrangler, ["deploy", "--dry-run", "--outdir", OUT, "--config", CONFIG], {
  cwd: ROOT,
  encoding: "utf8",
  stdio: ["ignore", "pipe", "pipe"],
  env: {
    ...process.env,
    // The Node running this script first (npm scripts run the project's Node 24; wrangler needs ≥ 22).
    PATH: [dirname(process.execPath), join(ROOT, "node_modules", ".bin"), process.env.PATH ?? ""].join(":"),
    WRANGLER_SEND_METRICS: "false",
    CI: process.env.CI ?? "true",
  },
});
const mainModule = `${config.main ? config.main.split("/").pop().replace(/\.ts$/, "") : "worker"}.js`;
if (built.status !== 0 || !existsSync(join(OUT, mainModule))) {
  process.stderr.write(`${built.stdout ?? ""}${built.stderr ?? ""}`);
  console.error(`build:selfhost: wrangler deploy --dry-run failed (exit ${built.status})`);
  process.exit(1);
}
rmSync(join(OUT, "README.md"), { force: true });

// 2. The static files: copied, so that the build is self-contained (a server needs only dist/selfhost/).
const publicDir = withAssets ? resolve(dirname(CONFIG), config.assets.directory) : "";
const copied = [];
if (withAssets) {
  for (const name of PUBLIC) {
    if (!existsSync(join(publicDir, name))) continue;
    cpSync(join(publicDir, name), join(OUT, "public", name), { recursive: true });
    copied.push(name);
  }
  if (!copied.includes("fhircast-client.js")) {
    console.warn("build:selfhost: src/public/fhircast-client.js is missing (npm run build:client): /fhircast-client.js will be 404");
  }
}

// 3. The workerd configuration.
const str = (s) => JSON.stringify(String(s)); // a Cap'n Proto text literal (same escapes as JSON)
const bindings = [];
for (const { name, class_name } of config.durable_objects.bindings) {
  bindings.push(`(name = ${str(name)}, durableObjectNamespace = (className = ${str(class_name)}))`);
}
for (const [name, value] of Object.entries(config.vars)) {
  if (SITE.includes(name) || EDGE_ONLY.includes(name) || name in FIXED) continue;
  bindings.push(`(name = ${str(name)}, text = ${str(typeof value === "string" ? value : JSON.stringify(value))})`);
}
for (const [name, value] of Object.entries(FIXED)) bindings.push(`(name = ${str(name)}, text = ${str(value)})`);
for (const name of SITE) bindings.push(`(name = ${str(name)}, fromEnvironment = ${str(name)})`);
// The Worker answers /inspector/… and /fhircast-client.js from here (src/http/public-files.ts).
if (withAssets) bindings.push(`(name = "PUBLIC_FILES", service = "public-files")`);

// Storage keys stay fixed across builds: changing one orphans every stored topic.
const classes = [...new Set(config.durable_objects.bindings.map((b) => b.class_name))];
const namespaces = classes.map((c) => `(className = ${str(c)}, uniqueKey = ${str(`fhircast-hub-${c}`)}, enableSql = true)`);

const capnp = `# Generated by \`npm run build:selfhost\` from wrangler.toml; do not edit (rebuild instead).
# Serve: workerd serve config.capnp --directory-path do-storage=/var/lib/fhircast-hub \\
#                                   --socket-addr http=127.0.0.1:8787
# docs/operations.md "Self-hosting" explains every part.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "hub", worker = .hub),
    # Durable Object storage: one SQLite file per topic under <dir>/fhircast-hub-Topic/.
    # The path is a placeholder: pass --directory-path do-storage=<absolute path>.
    (name = "do-storage", disk = (path = "/var/lib/fhircast-hub", writable = true)),
    # Outbound fetches (the SMART JWKS): public and private addresses, TLS with the usual CAs.
    (name = "internet", network = (allow = ["public", "private"], tlsOptions = (trustBrowserCas = true))),${withAssets ? `
    # The inspector and the browser client (src/public/), read-only: this build's own copy. Moved the
    # build elsewhere? Pass --directory-path public-files=<absolute path of its public/ folder>.
    (name = "public-files", disk = (path = ${str(join(OUT, "public"))}, writable = false)),` : ""}
  ],
  sockets = [
    # Plain HTTP on loopback: put a TLS-terminating proxy in front (docs/operations.md).
    (name = "http", address = "127.0.0.1:8787", http = (), service = "hub"),
  ],
);

const hub :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed ${str(mainModule)})],
  compatibilityDate = ${str(config.compatibility_date)},
  compatibilityFlags = [${(config.compatibility_flags ?? []).map(str).join(", ")}],
  bindings = [
    ${bindings.join(",\n    ")},
  ],
  durableObjectNamespaces = [
    ${namespaces.join(",\n    ")},
  ],
  durableObjectStorage = (localDisk = "do-storage"),
);
`;
writeFileSync(join(OUT, "config.capnp"), capnp);

// What was built and what the build will read at start, instead of wrangler's table.
const shown = (p) => (relative(process.cwd(), p).startsWith("..") ? p : relative(process.cwd(), p) || ".");
const kib = Math.round(statSync(join(OUT, mainModule)).size / 1024);
console.log(`build:selfhost: wrote ${shown(join(OUT, mainModule))} (${kib} KiB) and ${shown(join(OUT, "config.capnp"))}`);
console.log(withAssets
  ? `build:selfhost: static files in ${shown(join(OUT, "public"))}: ${copied.join(", ")} (served at /inspector/ and /fhircast-client.js; SELFHOST_ASSETS=off leaves them out)`
  : `build:selfhost: no static files (${assetsSetting === "off" ? "SELFHOST_ASSETS=off" : `no [assets] in ${shown(CONFIG)}`}): /inspector/ and /fhircast-client.js are 404`);
console.log(`build:selfhost: fixed in the build: HUB_ENV=selfhost and the tunables of ${shown(CONFIG)} [vars] (limits, leases, timeouts)`);
console.log(`build:selfhost: read from the environment when workerd starts: ${SITE.join(", ")}; AUTH_MODE unset means smart, which needs the SMART_ settings (docs/operations.md)`);

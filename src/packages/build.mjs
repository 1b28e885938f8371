#!/usr/bin/env node
// Builds the two parts of this project that other projects install (docs/decisions.md "Packages"):
//
//   client       @fhircast-edge/client: src/client (and the FHIRcast model it uses, src/fhircast) as one
//                minified ES module with a source map and .d.ts types. The same bytes are the browser
//                bundle the hub serves at /fhircast-client.js (src/public/, which the inspector loads).
//   conformance  @fhircast-edge/conformance: the conformance kit (src/conformance) as one plain
//                JavaScript file for Node >= 20, `ws` bundled in, run by `npx fhircast-conformance`.
//
//   node src/packages/build.mjs [client|conformance|all] [--out <dir>] [--public] [--types]
//
// --out      where the packages' folders go (default dist/packages): <out>/client, <out>/conformance;
//            `npm pack <out>/client` then makes the tarball.
// --public   also copy the client bundle to src/public/ (only when it changed: a rewrite of an
//            unchanged file makes a running `wrangler dev` reload and drop its sockets).
// --types    also emit the client's .d.ts files (tsc, a few seconds); `all` always does.
//
// The client's minified size is printed, and the build fails above CLIENT_BUDGET_BYTES.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..", "..");

/** The client's budget (issue: a browser app should not pay for the hub's validator). */
export const CLIENT_BUDGET_BYTES = 40 * 1024;
/** The bundle's file name, in the package and as the hub serves it. */
export const CLIENT_BUNDLE = "fhircast-client.js";

const shown = (p) => relative(process.cwd(), p) || ".";

/** Copies the package's manifest and README from src/packages/<name>/ into `dir`. */
function copyManifest(name, dir) {
  for (const f of ["package.json", "README.md"]) copyFileSync(join(HERE, name, f), join(dir, f));
}

/** The client bundle: ESM, minified, platform APIs only (browsers, Node >= 22, Workers). */
export async function buildClient(outDir, { types = false, publicCopy = false } = {}) {
  const dir = join(outDir, "client");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const result = await build({
    entryPoints: [join(ROOT, "src/client/index.ts")],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    minify: true,
    sourcemap: true,
    // Error classes are matched by name (EventValidationError, HubError, DeniedError) in apps' catch blocks.
    keepNames: true,
    // Built in memory as if into dist/packages/client, wherever it goes: the source map's paths are
    // then the same for every --out, and so are the bytes copied to src/public/.
    outfile: join(ROOT, "dist/packages/client", CLIENT_BUNDLE),
    write: false,
    metafile: true,
    logLevel: "warning",
    legalComments: "none",
  });
  const foreign = Object.keys(result.metafile.inputs).filter((i) => i.includes("node_modules"));
  if (foreign.length > 0) throw new Error(`the client bundle pulls in ${foreign.length} files of packages, e.g. ${foreign.slice(0, 3).join(", ")}`);
  for (const f of result.outputFiles) writeFileSync(join(dir, basename(f.path)), f.contents);
  copyManifest("client", dir);
  const code = readFileSync(join(dir, CLIENT_BUNDLE));
  const size = { bytes: code.length, gzip: gzipSync(code).length };
  console.log(`build: ${shown(join(dir, CLIENT_BUNDLE))} ${(size.bytes / 1024).toFixed(1)} KB minified, ${(size.gzip / 1024).toFixed(1)} KB gzipped (budget ${CLIENT_BUDGET_BYTES / 1024} KB minified)`);
  if (size.bytes > CLIENT_BUDGET_BYTES) {
    throw new Error(`the client bundle is ${size.bytes} bytes, over its budget of ${CLIENT_BUDGET_BYTES}`);
  }
  if (types) emitClientTypes(dir);
  if (publicCopy) {
    for (const f of [CLIENT_BUNDLE, `${CLIENT_BUNDLE}.map`]) {
      const target = join(ROOT, "src/public", f);
      const next = readFileSync(join(dir, f));
      if (!existsSync(target) || !readFileSync(target).equals(next)) writeFileSync(target, next);
    }
  }
  return { dir, ...size };
}

/** The client's declarations (tsc), under <dir>/types, laid out as the sources are (client/, fhircast/). */
function emitClientTypes(dir) {
  const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
  const run = spawnSync(process.execPath, [tsc, "-p", join(HERE, "client/tsconfig.json"), "--outDir", join(dir, "types")], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (run.status !== 0) throw new Error(`emitting the client's types failed:\n${run.stdout}${run.stderr}`);
  // The sources import without extensions (moduleResolution "bundler"); an app type-checked with
  // moduleResolution "node16"/"nodenext" needs them in the declarations it reads.
  for (const file of readdirSync(join(dir, "types"), { recursive: true })) {
    if (!file.endsWith(".d.ts")) continue;
    const path = join(dir, "types", file);
    const text = readFileSync(path, "utf8");
    writeFileSync(path, text.replace(/(from\s+|import\()"(\.{1,2}\/[^"]+?)(?<!\.js)"/g, '$1"$2.js"'));
  }
}

/** The conformance kit: one ES module for Node >= 20 with everything (ws included) bundled. */
export async function buildConformance(outDir) {
  const dir = join(outDir, "conformance");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await build({
    entryPoints: [join(ROOT, "src/conformance/cli.ts")],
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outfile: join(dir, "cli.js"),
    logLevel: "warning",
    legalComments: "none",
    // ws is CommonJS and asks for its optional native helpers with require() inside try/catch:
    // give the ES module a real require, so that their absence is the quiet fallback ws expects.
    banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' },
    external: ["bufferutil", "utf-8-validate"],
  });
  copyManifest("conformance", dir);
  const bytes = readFileSync(join(dir, "cli.js")).length;
  console.log(`build: ${shown(join(dir, "cli.js"))} ${(bytes / 1024).toFixed(1)} KB (Node >= 20)`);
  return { dir, bytes };
}

async function main(argv) {
  const what = argv.find((a) => !a.startsWith("--")) ?? "all";
  if (!["client", "conformance", "all"].includes(what)) throw new Error(`unknown package "${what}" (client, conformance or all)`);
  const outAt = argv.indexOf("--out");
  const outDir = resolve(outAt >= 0 ? argv[outAt + 1] ?? "" : join(ROOT, "dist/packages"));
  if (what !== "conformance") {
    await buildClient(outDir, { types: what === "all" || argv.includes("--types"), publicCopy: argv.includes("--public") });
  }
  if (what !== "client") await buildConformance(outDir);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(`build: ${e.message}`);
    process.exit(1);
  });
}

#!/usr/bin/env node
// `npm run selfhost`: the self-host build (src/selfhost/build.mjs) run by workerd on this machine,
// in one command, for trying it before a server (docs/operations.md "Self-hosting"). Builds when the
// sources are newer than dist/selfhost/, listens on 127.0.0.1:$PORT (default 8787, as `npm start`:
// run one or the other, or set PORT), keeps state in $SELFHOST_STATE (default .selfhost/state),
// and prints hub.url, the inspector URL, the authentication mode and the state folder once it answers.
//
// AUTH_MODE: unset means dev here, the hub's own token issuer, because this command is for one's
// own machine; the hub says at error level at every start that anyone reaching it can mint tokens.
// smart needs at least SMART_ISSUER and SMART_AUDIENCE (the hub's own auth.refused line names anything
// else missing); open is refused by the self-host build.
// A mode that cannot run stops this command at once, with the reason, instead of a hub answering 503.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { printBanner, portFromEnv, relaySignals, waitHealthy } from "../dev/banner.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DIST = join(ROOT, "dist", "selfhost");
const CONFIG = join(DIST, "config.capnp");
const say = (line) => console.log(`selfhost: ${line}`);
const stop = (line) => {
  console.error(`selfhost: ${line}`);
  process.exit(2);
};

// 1. Settings, checked before anything starts.
const port = portFromEnv("selfhost", 8787);
const state = resolve(process.env.SELFHOST_STATE?.trim() || join(ROOT, ".selfhost", "state"));
const assets = (process.env.SELFHOST_ASSETS ?? "on").trim().toLowerCase();
if (!["on", "off"].includes(assets)) stop(`SELFHOST_ASSETS must be "on" or "off", not "${process.env.SELFHOST_ASSETS}"`);
const rawMode = process.env.AUTH_MODE?.trim().toLowerCase() ?? "";
const mode = rawMode === "" ? "dev" : rawMode;
if (mode === "open") {
  stop("AUTH_MODE=open is refused by the self-host build (HUB_ENV=selfhost): use AUTH_MODE=dev to try it here, smart on a server");
} else if (mode === "smart") {
  const missing = ["SMART_ISSUER", "SMART_AUDIENCE"].filter((n) => !process.env[n]?.trim());
  if (missing.length > 0) stop(`AUTH_MODE=smart needs ${missing.join(", ")} (your authorization server, docs/operations.md "Authentication settings"); or AUTH_MODE=dev to try the hub with its own issuer`);
} else if (mode !== "dev") {
  stop(`AUTH_MODE="${process.env.AUTH_MODE}" is not a mode: use dev (the hub's own token issuer, the default here) or smart (with SMART_ISSUER, SMART_AUDIENCE)`);
}

// 2. Build when needed: no build yet, another SELFHOST_ASSETS, or a source newer than the build.
function newest(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((n) => newest(join(path, n))));
}
function needsBuild() {
  if (!existsSync(CONFIG)) return "no build yet";
  if (readFileSync(CONFIG, "utf8").includes('"PUBLIC_FILES"') !== (assets === "on")) return `SELFHOST_ASSETS=${assets}`;
  const built = statSync(CONFIG).mtimeMs;
  const sources = [join(ROOT, "src"), join(ROOT, "wrangler.toml"), join(ROOT, "package.json")];
  return sources.some((p) => newest(p) > built) ? "sources changed" : undefined;
}
const why = needsBuild();
if (why) {
  say(`building dist/selfhost/ (${why})`);
  const npm = process.env.npm_execpath;
  const built = npm
    ? spawnSync(process.execPath, [npm, "run", "--silent", "build:selfhost"], { cwd: ROOT, stdio: "inherit" })
    : spawnSync("npm", ["run", "--silent", "build:selfhost"], { cwd: ROOT, stdio: "inherit" });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

// 3. Run workerd on loopback; the hub's own log lines (JSON) go to this console as they are.
mkdirSync(state, { recursive: true, mode: 0o700 });
const origin = `http://127.0.0.1:${port}`;
const workerd = spawn(
  join(ROOT, "node_modules", ".bin", "workerd"),
  ["serve", CONFIG, "--directory-path", `do-storage=${state}`, "--socket-addr", `http=127.0.0.1:${port}`],
  { cwd: ROOT, stdio: "inherit", env: { ...process.env, AUTH_MODE: mode } },
);
relaySignals(workerd);

if (await waitHealthy(origin, workerd, 60_000)) {
  printBanner("selfhost", [
    ["hub.url", `${origin}/api/hub`],
    ["inspector", assets === "on" ? `${origin}/inspector/` : "off (SELFHOST_ASSETS=off)"],
    ["auth", mode === "dev"
      ? `AUTH_MODE=dev${rawMode === "" ? " (unset: dev for this command)" : ""}: tokens from ${origin}/auth/token; anyone who reaches the hub can mint them, this machine only`
      : `AUTH_MODE=smart: tokens from ${process.env.SMART_ISSUER?.trim()}`],
    ["state", `${state} (SELFHOST_STATE)`],
    ["stop", "Ctrl-C"],
  ]);
} else if (workerd.exitCode === null && workerd.signalCode === null) {
  console.error(`selfhost: workerd did not answer ${origin}/health within 60 s; stopping it`);
  workerd.kill("SIGTERM");
}

// `npm start`: runs the command it is given (package.json: `wrangler dev …`) and, once the hub
// answers, prints its hub.url, the inspector URL, the authentication mode and where state lives;
// wrangler's own lines come first and stay as they are.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { printBanner, portFromEnv, relaySignals, waitHealthy } from "./banner.mjs";

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: node src/dev/start.mjs <command> [args…]");
  process.exit(2);
}
const port = portFromEnv("start", 8787);
const origin = `http://127.0.0.1:${port}`;
const child = spawn(command, args, { stdio: "inherit" });
relaySignals(child);

/** AUTH_MODE as wrangler dev runs it: wrangler.toml's "dev" unless .dev.vars overrides it. */
function authMode() {
  try {
    const line = readFileSync(".dev.vars", "utf8").split("\n").find((l) => /^\s*AUTH_MODE\s*=/.test(l));
    if (line) return { mode: line.split("=")[1].trim().replace(/^["']|["']$/g, ""), from: ".dev.vars" };
  } catch {
    // no .dev.vars
  }
  return { mode: "dev", from: "wrangler.toml" };
}

if (await waitHealthy(origin, child)) {
  const { mode, from } = authMode();
  printBanner("start", [
    ["hub.url", `${origin}/api/hub`],
    ["inspector", `${origin}/inspector/`],
    ["auth", mode === "dev"
      ? `AUTH_MODE=dev (${from}): the development issuer hands out tokens at ${origin}/auth/token`
      : `AUTH_MODE=${mode} (${from})`],
    ["state", ".wrangler/state (delete it to start afresh)"],
  ]);
}

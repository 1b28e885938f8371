// What a user who has run `npm install` and nothing else has: the system's PATH (no
// node_modules/.bin, so `node` is the system's Node, 20 on the test machine) and its npm. The tests
// that paste documented commands (first-hour) and install the packed packages (packages) run so.
import { spawnSync } from "node:child_process";

/** The PATH of a user who has run `npm install` and nothing else: no node_modules/.bin. */
export const SYSTEM_PATH = (process.env.PATH ?? "").split(":").filter((p) => p !== "" && !p.includes("node_modules")).join(":");

/** The system Node's version ("v20.20.2"), or "" when there is none. */
export const SYSTEM_NODE_VERSION = spawnSync("node", ["--version"], { env: { PATH: SYSTEM_PATH }, encoding: "utf8" }).stdout?.trim() ?? "";

/** The system Node's major version; 0 when there is none. */
export const SYSTEM_NODE_MAJOR = Number(/^v(\d+)/.exec(SYSTEM_NODE_VERSION)?.[1] ?? 0);

export const HAS_SYSTEM_NPM = spawnSync("npm", ["--version"], { env: { PATH: SYSTEM_PATH }, encoding: "utf8" }).status === 0;

/** The environment of a user's shell: the system PATH, HOME and the like, no setting from the test run. */
export function systemEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: SYSTEM_PATH, NO_COLOR: "1", FORCE_COLOR: "0", npm_config_update_notifier: "false" };
  for (const k of ["HOME", "TMPDIR", "LANG", "USER"]) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  return { ...env, ...extra };
}

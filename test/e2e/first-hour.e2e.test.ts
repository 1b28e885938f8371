// The first hour with the project: the commands README.md and docs/operations.md show, pasted into a
// shell as they are written (only the port, and the state folder, are changed so that tests never
// clash), with nothing but the system's Node on the PATH (Node 20 on the test machine): npm scripts
// and `npx node` must bring the project's own Node 24 themselves. `npm start` prints where the hub
// and its inspector are and no stack traces from wrangler's network calls (the machine may be
// offline); `npm run selfhost` builds and runs the self-host hub in one command, serves the
// inspector and the client bundle, and refuses a mode that cannot run before it starts.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { devToken, event, freePort, http, patient, publish, removeDir, ROOT, subscribe, tempStateDir, uniqueTopic, WorkerdServer, WsClient } from "../helpers/server";
import { HAS_SYSTEM_NPM, SYSTEM_NODE_VERSION, systemEnv as shellEnv } from "../helpers/node/system";
import { until } from "./support/reliability";

/** A pasted command: `bash -c <text>` in the project folder, in its own process group. */
class Shell {
  output = "";
  readonly exited: Promise<number | null>;
  /** How it ended: an exit code, or the signal that ended it. */
  ended: string | undefined;
  private constructor(readonly child: ChildProcess) {
    child.stdout?.on("data", (d: Buffer) => (this.output += d.toString("utf8")));
    child.stderr?.on("data", (d: Buffer) => (this.output += d.toString("utf8")));
    this.exited = new Promise((res) =>
      child.once("exit", (code, signal) => {
        this.ended = signal ?? String(code);
        res(code);
      }));
  }
  static run(text: string, extra: Record<string, string> = {}): Shell {
    const s = new Shell(spawn("bash", ["-c", text], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"], env: shellEnv(extra) }));
    shells.add(s);
    return s;
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  async waitFor(text: string, timeoutMs: number): Promise<void> {
    await until(() => this.output.includes(text) || !this.running, timeoutMs, 100);
    if (!this.output.includes(text)) throw new Error(`"${text}" not printed (exit ${this.child.exitCode})\n${this.output.slice(-4000)}`);
  }
  /** Signals the whole group (a terminal's Ctrl-C reaches every process of the foreground group). */
  async stop(signal: NodeJS.Signals = "SIGINT", timeoutMs = 15_000): Promise<string | undefined> {
    if (this.running) process.kill(-this.child.pid!, signal);
    const t = setTimeout(() => this.running && process.kill(-this.child.pid!, "SIGKILL"), timeoutMs);
    await this.exited;
    clearTimeout(t);
    shells.delete(this);
    return this.ended;
  }
}
const shells = new Set<Shell>();
const dirs: string[] = [];

afterAll(async () => {
  for (const s of [...shells]) await s.stop("SIGKILL");
  for (const d of dirs) await removeDir(d);
});

/** The shell code blocks of a Markdown file. */
function shBlocks(file: string): string[] {
  const md = readFileSync(join(ROOT, file), "utf8");
  return [...md.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** The line of a banner (`prefix: label  value`): its value. */
function bannerValue(output: string, prefix: string, label: string): string {
  const line = output.split("\n").find((l) => l.startsWith(`${prefix}: ${label} `));
  if (!line) throw new Error(`no "${prefix}: ${label}" line in\n${output.slice(-3000)}`);
  return line.slice(`${prefix}: ${label}`.length).trim();
}

/** A folder for state under .selfhost/ (where the documented commands keep it), removed afterwards. */
function localStateDir(): string {
  mkdirSync(join(ROOT, ".selfhost"), { recursive: true });
  const dir = mkdtempSync(join(ROOT, ".selfhost", "e2e-"));
  dirs.push(dir);
  return dir.slice(ROOT.length + 1);
}

describe.skipIf(!HAS_SYSTEM_NPM)(`README.md and docs/operations.md commands, pasted, with the system Node (${SYSTEM_NODE_VERSION}) on the PATH`, () => {
  it("every command that runs node goes through npm or npx, which run the project's Node (≥ 22); npm run conformance works", () => {
    for (const file of ["README.md", "docs/operations.md", "docs/client.md", "docs/conformance.md"]) {
      for (const block of shBlocks(file)) {
        for (const line of block.split("\n")) {
          expect(/(^|[\s;&|(])node\s/.test(line.replace(/npx node\s/g, "")), `${file}: ${line}`).toBe(false);
        }
      }
    }
    const npxNode = spawnSync("bash", ["-c", "npx node -p process.versions.node"], { cwd: ROOT, env: shellEnv(), encoding: "utf8" });
    expect(Number(npxNode.stdout.trim().split(".")[0]), npxNode.stderr).toBeGreaterThanOrEqual(22);
    const conformance = spawnSync("bash", ["-c", "npm run conformance -- --help"], { cwd: ROOT, env: shellEnv(), encoding: "utf8", timeout: 60_000 });
    expect(conformance.status, conformance.stderr).toBe(0);
    expect(conformance.stdout).toContain("fhircast-conformance");
  });

  it("npm start prints hub.url, the inspector URL, the auth mode and the state folder, and no wrangler network stack traces; README's client example runs with npx node", async () => {
    const block = shBlocks("README.md").find((b) => b.includes("npm install && npm start"))!;
    expect(block).toBeDefined();
    const port = await freePort();
    const start = Shell.run("npm start", { PORT: String(port) });
    await start.waitFor("start: state", 90_000);
    const origin = `http://127.0.0.1:${port}`;
    expect(bannerValue(start.output, "start", "hub.url")).toBe(`${origin}/api/hub`);
    expect(bannerValue(start.output, "start", "inspector")).toBe(`${origin}/inspector/`);
    expect(bannerValue(start.output, "start", "auth")).toContain("AUTH_MODE=dev");
    expect(bannerValue(start.output, "start", "state")).toContain(".wrangler/state");
    const page = await http(`${origin}/inspector/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<html");

    // README's client example, run as it says (`npx node app.mjs` in the project folder) against this hub.
    const app = /```js\n(\/\/ app\.mjs\n[\s\S]*?)```/.exec(readFileSync(join(ROOT, "README.md"), "utf8"))![1]!;
    const file = `app-e2e-${crypto.randomUUID().slice(0, 8)}.mjs`;
    writeFileSync(join(ROOT, file), app.replaceAll("127.0.0.1:8787", `127.0.0.1:${port}`));
    try {
      const run = spawnSync("bash", ["-c", `npx node ${file}`], { cwd: ROOT, env: shellEnv(), encoding: "utf8", timeout: 30_000 });
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toContain("event Patient-open");
      expect(run.stdout).toContain("closed 1000");
    } finally {
      rmSync(join(ROOT, file), { force: true });
    }

    // Offline, miniflare's Request.cf fetch printed a getaddrinfo trace at each start of the runtime.
    expect(start.output).not.toMatch(/ENOTFOUND|Unable to fetch|getaddrinfo|^\s+at /m);
    await start.stop("SIGINT");
    await expect(http(`${origin}/health`, {}, 2000)).rejects.toThrow();
  }, 120_000);

  it("docs/operations.md by hand: npm run build:selfhost, then workerd serve; the build says what it reads from the environment, not wrangler's table of [vars]", async () => {
    const block = shBlocks("docs/operations.md").find((b) => b.includes("node_modules/.bin/workerd serve dist/selfhost/config.capnp"))!;
    expect(block).toContain("npm run build:selfhost");
    const port = await freePort();
    const state = localStateDir();
    const text = block.replaceAll("127.0.0.1:8787", `127.0.0.1:${port}`).replaceAll(".selfhost/state", state);
    const shell = Shell.run(text);
    await until(async () => !shell.running || (await http(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200, () => false)), 90_000, 200);
    expect(shell.running, shell.output).toBe(true);
    expect(shell.output).toContain("build:selfhost: read from the environment when workerd starts: AUTH_MODE");
    expect(shell.output).not.toContain('AUTH_MODE ("dev")'); // wrangler's bindings table of the top-level [vars]
    expect(shell.output).not.toMatch(/environments are defined|WARNING/i);
    const page = await http(`http://127.0.0.1:${port}/inspector/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    await until(() => shell.output.includes('"msg":"auth.risk"'), 10_000, 100);
    await shell.stop("SIGTERM");
  }, 150_000);

  it("npm run selfhost runs the self-host hub in one command: banner, inspector and client bundle served, subscribe and publish; Ctrl-C stops it", async () => {
    expect(shBlocks("README.md").some((b) => /^npm run selfhost\s/m.test(b))).toBe(true);
    const port = await freePort();
    const state = await tempStateDir("fhircast-selfhost-run");
    dirs.push(state);
    const run = Shell.run("npm run selfhost", { PORT: String(port), SELFHOST_STATE: state });
    await run.waitFor("selfhost: stop", 120_000);
    const origin = `http://127.0.0.1:${port}`;
    expect(bannerValue(run.output, "selfhost", "hub.url")).toBe(`${origin}/api/hub`);
    expect(bannerValue(run.output, "selfhost", "inspector")).toBe(`${origin}/inspector/`);
    expect(bannerValue(run.output, "selfhost", "auth")).toMatch(/^AUTH_MODE=dev \(unset: dev for this command\)/);
    expect(bannerValue(run.output, "selfhost", "state")).toBe(`${state} (SELFHOST_STATE)`);
    expect(run.output).toContain('"msg":"auth.risk"'); // the hub's own error line for dev on a self-hosted hub

    const page = await http(`${origin}/inspector/`);
    expect([page.status, page.headers.get("content-type")]).toEqual([200, "text/html; charset=utf-8"]);
    expect(await page.text()).toContain("<html");
    expect((await http(`${origin}/inspector`, { redirect: "manual" })).headers.get("location")).toBe("/inspector/");
    const script = await http(`${origin}/inspector/inspector.js`);
    expect([script.status, script.headers.get("content-type")]).toEqual([200, "text/javascript; charset=utf-8"]);
    const bundle = await http(`${origin}/fhircast-client.js`);
    expect(bundle.status).toBe(200);
    expect(await bundle.text()).toContain("FhircastClient");
    for (const path of ["/inspector/missing.js", "/inspector/.hidden", "/inspector/%2e%2e/config.capnp", "/config.capnp", "/worker.js"]) {
      expect((await http(`${origin}${path}`)).status, path).toBe(404);
    }

    const topic = uniqueTopic("selfhost-run");
    const token = await devToken(origin, topic);
    expect(token).toBeTruthy();
    const ws = await WsClient.connect(await subscribe(`${origin}/api/hub`, topic, "Patient-open", { token }));
    try {
      expect((await ws.waitFrames(1))[0]).toMatchObject({ "hub.mode": "subscribe", "hub.topic": topic });
      const open = event(topic, "Patient-open", [{ key: "patient", resource: patient("run-1") }]);
      expect((await publish(`${origin}/api/hub`, open, { token })).status).toBe(202);
      expect((await ws.waitFrames(2))[1].id).toBe(open.id);
      ws.ack(open.id);
    } finally {
      ws.close();
    }
    // npm itself ends by the signal, as in a terminal; not killed after the 15 s grace.
    expect(await run.stop("SIGINT")).not.toBe("SIGKILL");
    expect(run.output).not.toMatch(/selfhost: workerd did not answer|npm error/);
    await expect(http(`${origin}/health`, {}, 2000)).rejects.toThrow();
  }, 150_000);

  it("a mode that cannot run stops npm run selfhost before it starts, with the reason; plain workerd with AUTH_MODE unset says so at start", async () => {
    for (const [mode, said] of [
      ["smrat", 'AUTH_MODE="smrat" is not a mode'],
      ["open", "AUTH_MODE=open is refused by the self-host build"],
      ["smart", "AUTH_MODE=smart needs SMART_ISSUER, SMART_AUDIENCE"],
    ] as const) {
      const run = Shell.run("npm run selfhost", { AUTH_MODE: mode, PORT: String(await freePort()) });
      expect(await run.exited, run.output).not.toBe(0);
      expect(run.output).toContain(`selfhost: ${said}`);
      expect(run.output).not.toContain("selfhost: hub.url");
    }

    // What systemd runs when hub.env was not read: the first line workerd prints names the problem.
    if (!existsSync(join(ROOT, "dist", "selfhost", "config.capnp"))) {
      expect(spawnSync("bash", ["-c", "npm run build:selfhost"], { cwd: ROOT, env: shellEnv(), timeout: 120_000 }).status).toBe(0);
    }
    const dir = await tempStateDir("fhircast-selfhost-unset");
    dirs.push(dir);
    const hub = await WorkerdServer.start(join(ROOT, "dist", "selfhost", "config.capnp"), dir, await freePort(), {});
    try {
      await until(() => hub.output.includes('"msg":"auth.refused"'), 10_000, 100);
      const first = JSON.parse(hub.output.split("\n")[0]!) as Record<string, unknown>;
      expect(first).toMatchObject({ level: "error", msg: "auth.refused", hubEnv: "selfhost" });
      // (SMART_JWKS_URL is named too where the key set is not discovered from the issuer.)
      expect(first.problem).toMatch(/^AUTH_MODE=smart needs (SMART_JWKS_URL, )?SMART_ISSUER, SMART_AUDIENCE \(AUTH_MODE is unset, and unset means smart\)$/);
    } finally {
      await hub.stop();
    }
  }, 120_000);
});

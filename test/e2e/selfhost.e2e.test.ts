// Self-hosting (docs/operations.md "Self-hosting"): `npm run build:selfhost` output served by the
// workerd binary from npm, Durable Objects in SQLite files on local disk. A subscribe/publish/replay
// round trip, then restarts (SIGTERM and SIGKILL) on the same storage directory keep every topic's
// state and the development issuer's key. The build runs with AUTH_MODE=dev here, from the process
// environment as a systemd EnvironmentFile would set it (production self-hosting uses smart).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  currentContext,
  devToken,
  event,
  freePort,
  http,
  patient,
  publish,
  removeDir,
  ROOT,
  subscribe,
  tempStateDir,
  uniqueTopic,
  WorkerdServer,
  WsClient,
} from "../helpers/server";
import { until } from "./support/reliability";


let build: string;
let buildOutput: string;
/** The same build with SELFHOST_ASSETS=off (no inspector, no client bundle). */
let bare: string;
let storage: string;
let hub: WorkerdServer | undefined;
let port: number;
const clients: WsClient[] = [];
const METRICS_TOKEN = `metrics-${crypto.randomUUID()}`;
const SETTINGS = { AUTH_MODE: "dev", LOG_LEVEL: "info" };

/** The first JSON log line with this `msg` workerd printed (waits up to 10 s for it). */
async function logLine(server: WorkerdServer, msg: string): Promise<Record<string, unknown> | undefined> {
  await until(() => server.output.includes(`"msg":"${msg}"`), 10_000, 100);
  const line = server.output.split("\n").find((l) => l.includes(`"msg":"${msg}"`));
  return line === undefined ? undefined : (JSON.parse(line.slice(line.indexOf("{"), line.lastIndexOf("}") + 1)) as Record<string, unknown>);
}

async function connect(endpoint: string): Promise<WsClient> {
  const c = await WsClient.connect(endpoint);
  clients.push(c);
  return c;
}

/** Runs src/selfhost/build.mjs into `out`; resolves with what it printed. */
function runBuild(out: string, env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolveBuild, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "src", "selfhost", "build.mjs"), out], {
      cwd: ROOT,
      env: { ...process.env, PATH: [dirname(process.execPath), process.env.PATH ?? ""].join(":"), ...env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 120_000,
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (output += d.toString("utf8")));
    child.once("exit", (code) => (code === 0 ? resolveBuild(output) : reject(new Error(`build:selfhost failed (${code})\n${output}`))));
  });
}

beforeAll(async () => {
  build = await tempStateDir("fhircast-selfhost-build");
  bare = await tempStateDir("fhircast-selfhost-bare");
  storage = await tempStateDir("fhircast-selfhost-data");
  [buildOutput] = await Promise.all([runBuild(build), runBuild(bare, { SELFHOST_ASSETS: "off" })]);
  port = await freePort();
  hub = await WorkerdServer.start(join(build, "config.capnp"), storage, port, SETTINGS);
}, 150_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await hub?.stop();
  if (build) await removeDir(build);
  if (bare) await removeDir(bare);
  if (storage) await removeDir(storage);
});

describe("self-hosted on workerd (npm run build:selfhost)", () => {
  it("builds a bundle and a workerd config with SQLite Durable Objects on local disk and no secrets", () => {
    const capnp = readFileSync(join(build, "config.capnp"), "utf8");
    expect(capnp).toContain('esModule = embed "worker.js"');
    expect(capnp).toContain('durableObjectStorage = (localDisk = "do-storage")');
    expect(capnp).toMatch(/className = "Topic", uniqueKey = "fhircast-hub-Topic", enableSql = true/);
    expect(capnp).toContain('(name = "AUTH_MODE", fromEnvironment = "AUTH_MODE")');
    expect(capnp).toContain('(name = "METRICS_TOKEN", fromEnvironment = "METRICS_TOKEN")');
    expect(capnp).not.toMatch(/AUTH_MODE", text/); // never baked in
    // Where the hub runs is fixed by the build, not the environment: open mode is refused.
    expect(capnp).toContain('(name = "HUB_ENV", text = "selfhost")');
    expect(capnp).not.toMatch(/HUB_ENV", fromEnvironment/);
    expect(capnp).toContain('(name = "TOPIC_BINDING", fromEnvironment = "TOPIC_BINDING")');
    // The static files: a copy in the build, bound read-only to the Worker.
    expect(capnp).toContain('(name = "PUBLIC_FILES", service = "public-files")');
    expect(capnp).toContain(`(name = "public-files", disk = (path = ${JSON.stringify(join(build, "public"))}, writable = false))`);
    expect(existsSync(join(build, "public", "inspector", "index.html"))).toBe(true);
    // The build says what it reads at start; wrangler's table of the top-level [vars] (AUTH_MODE "dev",
    // HUB_ENV "development") and its warning about environments are not what the self-host build runs.
    expect(buildOutput).toContain("read from the environment when workerd starts: AUTH_MODE,");
    expect(buildOutput).not.toMatch(/AUTH_MODE \("dev"\)|HUB_ENV \("development"\)|environments are defined/);
  });

  it("serves the inspector and the client bundle as [assets] does on the edge; SELFHOST_ASSETS=off builds without them", async () => {
    const page = await http(`${hub!.origin}/inspector/`);
    expect([page.status, page.headers.get("content-type")]).toEqual([200, "text/html; charset=utf-8"]);
    expect(await page.text()).toContain("<html");
    const head = await http(`${hub!.origin}/inspector/inspector.css`, { method: "HEAD" });
    expect([head.status, head.headers.get("content-type")]).toEqual([200, "text/css; charset=utf-8"]);
    expect((await http(`${hub!.origin}/inspector/index.html`, { method: "POST" })).status).toBe(404);

    const capnp = readFileSync(join(bare, "config.capnp"), "utf8");
    expect(capnp).not.toContain("PUBLIC_FILES");
    expect(capnp).not.toContain("public-files");
    expect(existsSync(join(bare, "public"))).toBe(false);
    const dir = await tempStateDir("fhircast-selfhost-bare-data");
    const off = await WorkerdServer.start(join(bare, "config.capnp"), dir, await freePort(), SETTINGS);
    try {
      expect((await http(`${off.origin}/inspector/`)).status).toBe(404);
      expect((await http(`${off.origin}/fhircast-client.js`)).status).toBe(404);
    } finally {
      await off.stop();
      await removeDir(dir);
    }
  });

  it("AUTH_MODE=dev runs (for trying the build) and says the risk at error level when workerd starts", async () => {
    const line = await logLine(hub!, "auth.risk");
    expect(line).toMatchObject({ level: "error", hubEnv: "selfhost", risk: expect.stringContaining("AUTH_MODE=dev on a self-hosted hub") });
  });

  it("AUTH_MODE=open is refused, even with HUB_ENV=development in the environment: subscribe, publish, GET and inspector answer 503; an error line at start", async () => {
    const dir = await tempStateDir("fhircast-selfhost-open");
    const open = await WorkerdServer.start(join(build, "config.capnp"), dir, await freePort(), { AUTH_MODE: "open", HUB_ENV: "development", LOG_LEVEL: "info" });
    try {
      const topic = uniqueTopic("selfhost-open");
      const form = new URLSearchParams({ "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open" });
      const responses = {
        subscribe: await http(open.hubUrl, { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: form.toString() }),
        publish: await publish(open.hubUrl, event(topic, "Patient-open", [{ key: "patient", resource: patient("open-1") }])),
        get: await http(`${open.hubUrl}/${encodeURIComponent(topic)}`),
        inspect: await http(`${open.origin}/api/inspect/${encodeURIComponent(topic)}`),
      };
      for (const [api, res] of Object.entries(responses)) {
        const text = await res.text();
        expect({ api, status: res.status }).toEqual({ api, status: 503 });
        expect(text, api).toContain("AUTH_MODE=open is refused where HUB_ENV=selfhost");
      }
      expect(await logLine(open, "auth.refused")).toMatchObject({ level: "error", hubEnv: "selfhost", problem: expect.stringContaining("AUTH_MODE=open is refused") });
    } finally {
      await open.stop();
      await removeDir(dir);
    }
  });

  it("GET /metrics does not exist without METRICS_TOKEN", async () => {
    expect((await http(`${hub!.origin}/metrics`)).status).toBe(404);
  });

  it("subscribe, publish, replay; SIGTERM and SIGKILL restarts keep the state", async () => {
    const topic = uniqueTopic("selfhost");
    const token = await devToken(hub!.origin, topic);
    expect(token, "AUTH_MODE=dev from the environment: the development issuer answers").toBeTruthy();
    const endpoint = await subscribe(hub!.hubUrl, topic, "Patient-open,Patient-close", { token });
    expect(endpoint.startsWith(`ws://127.0.0.1:${port}/ws/`)).toBe(true);
    const ws = await connect(endpoint);
    expect((await ws.waitFrames(1))[0]).toMatchObject({ "hub.mode": "subscribe", "hub.topic": topic });
    const open = event(topic, "Patient-open", [{ key: "patient", resource: patient("sh-1") }]);
    const pub = await publish(hub!.hubUrl, open, { token });
    expect(pub.status, await pub.clone().text()).toBe(202);
    const delivered = (await ws.waitFrames(2))[1];
    expect(delivered.id).toBe(open.id);
    ws.ack(open.id);
    const before = await currentContext(hub!.hubUrl, topic, { token });
    expect(before["context.type"]).toBe("Patient");

    // Storage is on disk: one SQLite file per object.
    expect(readdirSync(join(storage, "fhircast-hub-Topic")).some((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite")).toBe(true);

    // 1. Graceful stop, restart on the same port and directory, now with a metrics secret.
    await hub!.stop("SIGTERM");
    hub = undefined;
    await ws.waitClose(15_000);
    hub = await WorkerdServer.start(join(build, "config.capnp"), storage, port, { ...SETTINGS, METRICS_TOKEN });
    expect(await currentContext(hub.hubUrl, topic, { token })).toEqual(before); // same token: the issuer key persisted
    expect(await logLine(hub, "auth.risk"), "AUTH_MODE=dev says its risk at every start").toMatchObject({ level: "error" });

    const endpoint2 = await subscribe(hub.hubUrl, topic, "Patient-open,Patient-close", { token });
    const ws2 = await connect(endpoint2);
    const [confirmation, replay] = await ws2.waitFrames(2);
    expect(confirmation).toMatchObject({ "hub.mode": "subscribe", "hub.topic": topic });
    expect(replay.id).toBe(open.id);
    expect(replay.event.context).toEqual(open.event.context);
    expect(replay.event["context.versionId"]).toBe(before["context.versionId"]);
    const stale = await connect(endpoint);
    expect((await stale.waitFrames(1))[0]["hub.mode"]).toBe("denied");

    // 2. Crash right after a 202: the acknowledged publish is on disk.
    const open2 = event(topic, "Patient-open", [{ key: "patient", resource: patient("sh-2") }]);
    expect((await publish(hub.hubUrl, open2, { token })).status).toBe(202);
    await hub.stop("SIGKILL");
    hub = undefined;
    await ws2.waitClose(15_000);
    hub = await WorkerdServer.start(join(build, "config.capnp"), storage, port, { ...SETTINGS, METRICS_TOKEN });
    const after = await currentContext(hub.hubUrl, topic, { token });
    expect(after.context).toEqual(expect.arrayContaining(open2.event.context));
    const ws3 = await connect(await subscribe(hub.hubUrl, topic, "Patient-open,Patient-close", { token }));
    expect((await ws3.waitFrames(2))[1].id).toBe(open2.id);
    const close = event(topic, "Patient-close", [{ key: "patient", resource: patient("sh-2") }]);
    expect((await publish(hub.hubUrl, close, { token })).status).toBe(202);
    expect((await ws3.waitFrames(3))[2].id).toBe(close.id);
    ws3.close();

    // Metrics of this process (since the last start), behind the bearer secret.
    expect((await http(`${hub.origin}/metrics`)).status).toBe(401);
    const metrics = await (await http(`${hub.origin}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    expect(metrics).toMatch(/^fhircast_events_accepted_total\{event="Patient-close"\} 1$/m);
    expect(metrics).toMatch(/^fhircast_subscriptions_total\{action="subscribe"\} 1$/m);

    // workerd prints only the hub's own JSON lines: none names the topic, token, secret or patient.
    // workerd writes its log lines asynchronously: wait until the last request's line is there.
    const hash = createHash("sha256").update(topic).digest("hex").slice(0, 12);
    await until(() => hub!.output.includes('"msg":"disconnect"'), 10_000, 50);
    expect(hub.output).toContain(`"topic":"${hash}"`);
    for (const secret of [topic, token!, endpoint.split("/").pop()!, endpoint2.split("/").pop()!, "sh-2", METRICS_TOKEN]) {
      expect(hub.output.includes(secret), `${secret} in the logs`).toBe(false);
    }
  }, 120_000);
});

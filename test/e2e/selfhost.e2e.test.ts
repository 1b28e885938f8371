// Self-hosting (docs/operations.md "Self-hosting"): `npm run build:selfhost` output served by the
// workerd binary from npm, Durable Objects in SQLite files on local disk. A subscribe/publish/replay
// round trip, then restarts (SIGTERM and SIGKILL) on the same storage directory keep every topic's
// state and the development issuer's key. The build runs with AUTH_MODE=dev here, from the process
// environment as a systemd EnvironmentFile would set it (production self-hosting uses smart).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
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

beforeAll(async () => {
  build = await tempStateDir("fhircast-selfhost-build");
  storage = await tempStateDir("fhircast-selfhost-data");
  const built = spawnSync(process.execPath, [join(ROOT, "src", "selfhost", "build.mjs"), build], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, PATH: [dirname(process.execPath), process.env.PATH ?? ""].join(":") },
    timeout: 120_000,
  });
  if (built.status !== 0) throw new Error(`build:selfhost failed (${built.status})\n${built.stdout}\n${built.stderr}`);
  port = await freePort();
  hub = await WorkerdServer.start(join(build, "config.capnp"), storage, port, SETTINGS);
}, 150_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await hub?.stop();
  if (build) await removeDir(build);
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

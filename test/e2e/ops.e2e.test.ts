// Operations (docs/operations.md): the production configuration and its bundle validate offline
// (`wrangler deploy --dry-run --env production`), its defaults are safe, and on a real local server
// the logs of a subscribe/publish round trip carry a topic hash but never the topic, a token, an
// endpoint secret or patient data; GET /metrics answers only with its bearer secret.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { until } from "../helpers/until";
import {
  currentContext,
  devToken,
  event,
  HubServer,
  http,
  publish,
  removeDir,
  ROOT,
  subscribe,
  tempStateDir,
  uniqueTopic,
  WsClient,
} from "../helpers/server";

/** Runs a command from the project root with the test's Node first on PATH; resolves with its output. */
function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        PATH: [join(process.execPath, ".."), join(ROOT, "node_modules", ".bin"), process.env.PATH ?? ""].join(":"),
        CI: "true",
        WRANGLER_SEND_METRICS: "false",
        NO_COLOR: "1",
        FORCE_COLOR: "0",
      },
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (output += d.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The parts of wrangler's resolved configuration these tests read. */
interface ResolvedConfig {
  vars: Record<string, unknown>;
  workers_dev?: boolean;
  durable_objects: { bindings: { name: string; class_name: string }[] };
  ratelimits: { name: string }[];
  analytics_engine_datasets: { binding: string }[];
  observability?: { logs?: { invocation_logs?: boolean } };
}
const readConfig = (env?: string): ResolvedConfig =>
  unstable_readConfig({ config: join(ROOT, "wrangler.toml"), env }, { hideWarnings: true }) as unknown as ResolvedConfig;

describe("deployment configuration", () => {
  it("`wrangler deploy --dry-run --env production` builds the bundle offline", async () => {
    const out = await tempStateDir("fhircast-dry-run");
    try {
      const { code, output } = await run(join(ROOT, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--env", "production", "--outdir", out]);
      expect(code, output.slice(-3000)).toBe(0);
      expect(output).toContain("--dry-run: exiting now.");
      expect(statSync(join(out, "worker.js")).size).toBeGreaterThan(10_000);
      for (const binding of ["env.TOPIC (Topic)", "env.RATE_LIMITER", "env.ANALYTICS", 'env.AUTH_MODE ("smart")']) expect(output).toContain(binding);
      expect(output).not.toContain("env.ISSUER");
    } finally {
      await removeDir(out);
    }
  }, 120_000);

  it("production defaults are safe and restate every setting; `npm run deploy` deploys production", () => {
    const top = readConfig();
    const prod = readConfig("production");
    expect(prod.vars.AUTH_MODE).toBe("smart");
    // Production is recognisable by the Worker: AUTH_MODE=open (or dev) is refused there, and tokens
    // must be bound to a topic.
    expect(prod.vars.HUB_ENV).toBe("production");
    expect(prod.vars.TOPIC_BINDING).toBe("required");
    expect(Number(prod.vars.JWKS_CACHE_SECONDS) + Number(prod.vars.TOKEN_CACHE_SECONDS)).toBeLessThanOrEqual(300);
    // Fails closed until the SMART settings exist (secrets or vars added by the operator).
    for (const name of ["SMART_JWKS_URL", "SMART_ISSUER", "SMART_AUDIENCE", "METRICS_TOKEN", "INTROSPECTION_CLIENT_ID", "INTROSPECTION_CLIENT_SECRET"]) expect(prod.vars[name]).toBeUndefined();
    for (const name of Object.keys(top.vars)) expect(Object.keys(prod.vars), `${name} restated in [env.production.vars]`).toContain(name);
    expect(prod.durable_objects.bindings.map((b) => b.name)).toEqual(["TOPIC"]); // no development issuer
    expect(prod.ratelimits.map((r) => r.name)).toContain("RATE_LIMITER");
    expect(prod.analytics_engine_datasets.map((d) => d.binding)).toContain("ANALYTICS");
    expect(prod.observability?.logs?.invocation_logs).toBe(false); // they would record URLs
    // The top level (dev issuer) is never put on a public URL by a bare `wrangler deploy`.
    expect(top.workers_dev).toBe(false);
    expect(top.vars.AUTH_MODE).toBe("dev");
    expect(top.vars.HUB_ENV).toBe("development");
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts.deploy).toBe("wrangler deploy --env production");
    expect(existsSync(join(ROOT, ".dev.vars"))).toBe(false); // no committed local secrets
  });
});

describe("production cannot be opened by one variable: `wrangler dev --env production --var AUTH_MODE:\" Open \"`", () => {
  let dir: string;
  let server: HubServer | undefined;

  beforeAll(async () => {
    dir = await tempStateDir("fhircast-prod-open");
    server = await HubServer.start({ persistTo: dir, env: "production", vars: { AUTH_MODE: " Open ", LOG_LEVEL: "info" } });
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) await removeDir(dir);
  });

  it("subscribe, publish, GET and inspector answer 503 naming AUTH_MODE and HUB_ENV; an error line at start", async () => {
    const hub = server!;
    const topic = uniqueTopic("prod-open");
    const body = new URLSearchParams({ "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open" });
    const responses = {
      subscribe: await http(hub.hubUrl, { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: body.toString() }),
      publish: await publish(hub.hubUrl, event(topic, "Patient-open", [{ key: "patient", resource: { resourceType: "Patient", id: "p1" } }])),
      get: await http(`${hub.hubUrl}/${encodeURIComponent(topic)}`),
      inspect: await http(`${hub.origin}/api/inspect/${encodeURIComponent(topic)}`),
    };
    for (const [api, res] of Object.entries(responses)) {
      const text = await res.text();
      expect({ api, status: res.status }).toEqual({ api, status: 503 });
      expect(text, api).toContain("AUTH_MODE=open is refused where HUB_ENV=production");
    }
    // The health check says so too, so a load balancer or a monitor sees this hub as down.
    const health = await http(`${hub.origin}/health`);
    expect(health.status).toBe(503);
    expect(await health.text()).toContain("AUTH_MODE=open is refused where HUB_ENV=production");
    await until(() => hub.output.includes('"msg":"auth.refused"'), 10_000, 100);
    const line = hub.output.split("\n").find((l) => l.includes('"msg":"auth.refused"'));
    expect(line, hub.output.slice(-3000)).toBeDefined();
    expect(JSON.parse(line!.slice(line!.indexOf("{"), line!.lastIndexOf("}") + 1))).toMatchObject({ level: "error", hubEnv: "production", problem: expect.stringContaining("AUTH_MODE=open is refused") });
  });
});

describe("a real local server: logs and metrics", () => {
  let dir: string;
  let server: HubServer | undefined;
  const METRICS_TOKEN = `metrics-${crypto.randomUUID()}`;

  beforeAll(async () => {
    dir = await tempStateDir("fhircast-ops");
    server = await HubServer.start({ persistTo: dir, vars: { METRICS_TOKEN, LOG_LEVEL: "info" } });
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) await removeDir(dir);
  });

  it("logs a topic hash and a latency, never the topic, the token, the endpoint secret or patient data", async () => {
    const hub = server!;
    const topic = uniqueTopic("secret-topic");
    const patientId = `pat-${crypto.randomUUID()}`;
    const mrn = `MRN-${crypto.randomUUID().slice(0, 8)}`;
    const family = `Family${crypto.randomUUID().slice(0, 6)}`;
    const token = await devToken(hub.origin, topic);
    expect(token).toBeTruthy();

    const endpoint = await subscribe(hub.hubUrl, topic, "Patient-open,Patient-close", { token });
    const secret = endpoint.split("/").pop()!;
    const ws = await WsClient.connect(endpoint);
    await ws.waitFrames(1);
    const resource = { resourceType: "Patient", id: patientId, identifier: [{ system: "urn:oid:1.2.3", value: mrn }], name: [{ family }] };
    const open = event(topic, "Patient-open", [{ key: "patient", resource }]);
    const pub = await publish(hub.hubUrl, open, { token });
    expect(pub.status, await pub.clone().text()).toBe(202);
    ws.ack((await ws.waitFrames(2))[1].id);
    expect((await currentContext(`${hub.hubUrl}`, topic, { token }))["context.type"]).toBe("Patient");
    // A refused publish (bad token) and a close, for the failure paths' log lines.
    expect((await publish(hub.hubUrl, open, { token: `${token}x` })).status).toBe(401);
    const close = event(topic, "Patient-close", [{ key: "patient", resource }]);
    expect((await publish(hub.hubUrl, close, { token })).status).toBe(202);
    await ws.waitFrames(3);
    ws.close();
    await ws.waitClose();

    // Logs are written asynchronously by workerd through wrangler: wait for the last one.
    const hash = createHash("sha256").update(topic).digest("hex").slice(0, 12);
    await until(() => hub.output.includes('"msg":"disconnect"'), 10_000, 100);

    // wrangler dev prints its own access log (`[wrangler:info] GET /api/hub/<topic> 200 OK`): that is
    // the local dev tool, not the hub (the edge has invocation logs off; workerd prints none).
    const hubOutput = hub.output
      .split("\n")
      .filter((l) => !/\[wrangler:(info|debug)\]\s+(GET|POST|OPTIONS|PUT|DELETE)\s/.test(l))
      .join("\n");
    const lines = hubOutput
      .split("\n")
      .map((l) => l.slice(l.indexOf("{")))
      .flatMap((l) => {
        try {
          const v = JSON.parse(l) as unknown;
          return typeof v === "object" && v !== null && "msg" in v ? [v as Record<string, unknown>] : [];
        } catch {
          return [];
        }
      });
    const requests = lines.filter((l) => l.msg === "request" && l.topic === hash);
    expect(requests.length, hubOutput.slice(-3000)).toBeGreaterThanOrEqual(4);
    const published = requests.find((l) => l.event === "Patient-open" && l.status === 202);
    expect(published).toMatchObject({ method: "POST", route: "/api/hub", ms: expect.any(Number) });
    // Refused before the body is read: no topic known, still a line with its outcome.
    expect(lines.some((l) => l.msg === "request" && l.status === 401 && l.route === "/api/hub")).toBe(true);
    expect(lines.some((l) => l.msg === "publish")).toBe(true);

    for (const [what, value] of Object.entries({ topic, token: token!, secret, patientId, mrn, family, signature: token!.split(".")[2]! })) {
      expect(hubOutput.includes(value), `the ${what} appears in the logs`).toBe(false);
    }
  });

  it("keeps no request URL on disk: no file of the state directory holds an ?access_token= token or an endpoint secret", async () => {
    const hub = server!;
    const topic = uniqueTopic("url-on-disk");
    const token = await devToken(hub.origin, topic, "fhircast/*.read fhircast/*.write fhircast-hub/inspect");
    const endpoint = await subscribe(hub.hubUrl, topic, "Patient-open", { token });
    const secret = endpoint.split("/").pop()!;
    const ws = await WsClient.connect(endpoint);
    await ws.waitFrames(1);
    ws.close();
    await ws.waitClose();
    // The inspector's way: the token in the query string.
    const inspected = await http(`${hub.origin}/api/inspect/${encodeURIComponent(topic)}?access_token=${token}`);
    expect(inspected.status).toBe(200);
    // A request whose own log line shows it was handled, after the ones above.
    const routeLines = () => hub.output.split('"route":"/api/hub/:topic"').length - 1;
    const before = routeLines();
    const marker = await http(`${hub.origin}/api/hub/${encodeURIComponent(topic)}?access_token=${token}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(marker.status).toBe(200);
    await until(() => routeLines() !== before, 10_000, 100);

    const files = (await readdir(hub.persistTo, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
    expect(files.filter((f) => f.includes("trace-store"))).toEqual([]);
    for (const file of files) {
      const bytes = readFileSync(file).toString("latin1");
      expect(bytes.includes(token!), `${file} holds the ?access_token= token`).toBe(false);
      expect(bytes.includes(secret), `${file} holds an endpoint secret`).toBe(false);
    }
  });

  it("GET /metrics: 401 without its bearer secret, Prometheus text with it", async () => {
    const hub = server!;
    const none = await http(`${hub.origin}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate") ?? "").toMatch(/^Bearer/);
    expect((await http(`${hub.origin}/metrics`, { headers: { Authorization: "Bearer wrong" } })).status).toBe(401);
    const res = await http(`${hub.origin}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type") ?? "").toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^# TYPE fhircast_events_accepted_total counter$/m);
    expect(text).toMatch(/^fhircast_events_accepted_total\{event="Patient-open"\} [1-9]/m);
    expect(text).toMatch(/^fhircast_deliveries_total [1-9]/m);
    expect(text).toMatch(/^fhircast_publish_latency_ms_count [1-9]/m);
    expect(text).toMatch(/^fhircast_subscribers \d+$/m);
  });
});

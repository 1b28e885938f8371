// Authentication settings (issue 20, findings 4, 5 and 6): where the hub runs (HUB_ENV) decides which
// AUTH_MODE may run at all; TOPIC_BINDING=required refuses tokens without the topic claim; SMART mode
// against a real JWKS endpoint (test/helpers/jwks-server.ts): an unavailable key set is 503, not 401;
// a revoked key stops working within JWKS_CACHE_SECONDS + TOKEN_CACHE_SECONDS, a rotated-in key works
// at once; `iat` in the future is refused beyond a small skew. Each case calls the Worker's real fetch
// handler with the test configuration (wrangler.toml top level) plus the settings under test.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { KEY_REVOCATION_MAX_SECONDS, readConfig } from "../../src/config";
import type { Env } from "../../src/env";
import { announceAuth } from "../../src/auth/tokens";
import worker from "../../src/worker";
import { expectOutcome, expectText, mintToken, patientOpen, publishInit, subscribeForm, topicSql, uniqueTopic } from "../helpers/hub";
import { answer, fetchCount, jwksUrl, serveKeys, signingKey, SMART_AUDIENCE, SMART_ISSUER, type SigningKey } from "../helpers/jwks";

const ORIGIN = "http://hub.test";
type Fetch = (path: string, init?: RequestInit, token?: string) => Promise<Response>;

/** The Worker's fetch handler with `settings` on top of the test configuration; one env object per hub, so one config. */
function hubWith(settings: Record<string, string | undefined>): Fetch & { env: Env } {
  const e = { ...(env as unknown as Env), ...settings } as Env;
  const f = (path: string, init: RequestInit = {}, token?: string) => {
    const headers = new Headers(init.headers);
    if (token) headers.set("Authorization", `Bearer ${token}`);
    return worker.fetch(new Request(`${ORIGIN}${path}`, { ...init, headers }), e, createExecutionContext());
  };
  return Object.assign(f, { env: e });
}

/** The four authenticated APIs on `topic`: subscribe (text), publish and GET (OperationOutcome), the inspector. */
async function everyApi(hub: Fetch, topic: string, token?: string) {
  return {
    subscribe: await hub("/api/hub", subscribeForm(topic, "Patient-open"), token),
    publish: await hub("/api/hub", publishInit(patientOpen(topic, "p1")), token),
    get: await hub(`/api/hub/${encodeURIComponent(topic)}`, {}, token),
    inspect: await hub(`/api/inspect/${encodeURIComponent(topic)}`, {}, token),
  };
}

/** Every API answered `status` naming `needles`, and the topic has no storage (nothing was created). */
async function expectAllRefused(hub: Fetch, topic: string, token: string | undefined, status: number, ...needles: (string | RegExp)[]) {
  const r = await everyApi(hub, topic, token);
  await expectText(r.subscribe, status, ...needles);
  await expectOutcome(r.publish, status, ...needles);
  await expectOutcome(r.get, status, ...needles);
  await expectOutcome(r.inspect, status, ...needles);
  expect(await topicSql(topic, `SELECT name FROM sqlite_master WHERE type = 'table'`)).toEqual([]);
  return r;
}

// The hubs below log at LOG_LEVEL=warn so that tests can read their lines; nobody else needs to.
let consoleSpies: Record<"warn" | "error", MockInstance<(...args: unknown[]) => void>>;
beforeEach(() => {
  consoleSpies = {
    warn: vi.spyOn(console, "warn").mockImplementation(() => undefined),
    error: vi.spyOn(console, "error").mockImplementation(() => undefined),
  };
});
afterEach(() => vi.restoreAllMocks());

/** JSON log lines written through `console[method]` while `during` runs. */
async function logLines(method: "warn" | "error", during: () => Promise<unknown> | unknown): Promise<Record<string, unknown>[]> {
  const spy = consoleSpies[method];
  spy.mockClear();
  await during();
  return spy.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>);
}

// ---- finding 4: production cannot be opened by one variable ---------------------------------------

describe("HUB_ENV: AUTH_MODE=open is refused in production and in the self-host build (503 naming the setting)", () => {
  const refused: [hubEnv: string | undefined, mode: string][] = [
    ["production", "open"],
    ["production", " Open "],
    ["production", "dev"],
    [undefined, "open"], // HUB_ENV unset means production
    ["selfhost", "open"],
    ["selfhost", " OPEN "],
  ];
  for (const [hubEnv, mode] of refused) {
    it(`HUB_ENV=${hubEnv ?? "(unset)"}, AUTH_MODE="${mode}": subscribe, publish, GET and inspector answer 503; an error line at start`, async () => {
      const hub = hubWith({ HUB_ENV: hubEnv, AUTH_MODE: mode, LOG_LEVEL: "warn" });
      const topic = uniqueTopic("refused");
      // No token (what open mode would accept) and a valid development token alike.
      await expectAllRefused(hub, topic, undefined, 503, /AUTH_MODE=(open|dev) is refused where HUB_ENV=(production|selfhost)/);
      await expectAllRefused(hub, topic, await mintToken({ "hub.topic": topic }), 503, "AUTH_MODE");
      // The development issuer is off, and the health check says the hub refuses its work.
      expect((await hub("/auth/token", { method: "POST" })).status).toBe(404);
      const health = await hub("/health");
      expect(health.status).toBe(503);
      expect(await health.json()).toEqual({ status: "refused", problem: expect.stringMatching(/^AUTH_MODE=(open|dev) is refused where HUB_ENV=/) });
      const lines = await logLines("error", () => announceAuth(hub.env));
      expect(lines).toEqual([expect.objectContaining({ level: "error", msg: "auth.refused", problem: expect.stringMatching(/^AUTH_MODE=(open|dev) is refused where HUB_ENV=/) })]);
    });
  }

  it("HUB_ENV=development (npm start, tests) still allows open mode, with a warning", async () => {
    const hub = hubWith({ HUB_ENV: "development", AUTH_MODE: "open", LOG_LEVEL: "warn" });
    const topic = uniqueTopic("open-dev");
    const r = await everyApi(hub, topic);
    expect([r.subscribe.status, r.publish.status, r.get.status, r.inspect.status]).toEqual([202, 202, 200, 200]);
    expect((await hub("/health")).status).toBe(200);
    const lines = await logLines("warn", () => announceAuth(hub.env));
    expect(lines).toEqual([expect.objectContaining({ level: "warn", msg: "auth.open" })]);
  });

  it("HUB_ENV=selfhost allows AUTH_MODE=dev for trying the build, and says the risk at error level", async () => {
    const hub = hubWith({ HUB_ENV: "selfhost", AUTH_MODE: "dev", LOG_LEVEL: "warn" });
    const topic = uniqueTopic("selfhost-dev");
    const issued = await hub("/auth/token", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ grant_type: "client_credentials", client_id: "try", scope: "fhircast/*.*", "hub.topic": topic }).toString() });
    expect(issued.status).toBe(200);
    const token = ((await issued.json()) as { access_token: string }).access_token;
    expect((await hub("/api/hub", subscribeForm(topic, "Patient-open"), token)).status).toBe(202);
    const lines = await logLines("error", () => announceAuth(hub.env));
    expect(lines).toEqual([expect.objectContaining({ level: "error", msg: "auth.risk", risk: expect.stringContaining("AUTH_MODE=dev on a self-hosted hub") })]);
  });

  it("an unknown HUB_ENV is a configuration error naming the setting", () => {
    expect(() => readConfig({ HUB_ENV: "prod" } as Env)).toThrow(/HUB_ENV="prod" must be one of development, selfhost, production/);
  });
});

// ---- finding 5: tokens bound to a topic by default -----------------------------------------------

describe("TOPIC_BINDING=required (the default): a token without the topic claim gets 403 naming the claim", () => {
  it("unset TOPIC_BINDING means required", () => {
    expect(readConfig({} as Env).auth.topicBinding).toBe("required");
    expect(readConfig({ TOPIC_BINDING: " Optional " } as Env).auth.topicBinding).toBe("optional");
    expect(() => readConfig({ TOPIC_BINDING: "sometimes" } as Env)).toThrow(/TOPIC_BINDING="sometimes" must be one of required, optional/);
  });

  for (const binding of ["required", undefined]) {
    it(`TOPIC_BINDING=${binding ?? "(unset)"}: subscribe, publish, GET and inspector refuse an unbound token (403); a bound one works`, async () => {
      const hub = hubWith({ TOPIC_BINDING: binding });
      const topic = uniqueTopic("binding");
      const unbound = await mintToken({ client_id: "unbound", scope: "fhircast/*.* fhircast-hub/inspect" });
      await expectAllRefused(hub, topic, unbound, 403, 'the access token has no "hub.topic" claim', "TOPIC_BINDING=required");
      const bound = await mintToken({ client_id: "bound", scope: "fhircast/*.* fhircast-hub/inspect", "hub.topic": topic });
      const r = await everyApi(hub, topic, bound);
      expect([r.subscribe.status, r.publish.status, r.get.status, r.inspect.status]).toEqual([202, 202, 200, 200]);
    });
  }

  it("the 403 names the configured claim (TOPIC_CLAIM)", async () => {
    const hub = hubWith({ TOPIC_BINDING: "required", TOPIC_CLAIM: "fhircast_topic" });
    const topic = uniqueTopic("claim");
    await expectText(await hub("/api/hub", subscribeForm(topic, "Patient-open"), await mintToken({ "hub.topic": topic })), 403, 'no "fhircast_topic" claim');
    expect((await hub("/api/hub", subscribeForm(topic, "Patient-open"), await mintToken({ fhircast_topic: topic }))).status).toBe(202);
  });

  it("TOPIC_BINDING=optional: an unbound token is valid for every topic (what optional risks)", async () => {
    const hub = hubWith({ TOPIC_BINDING: "optional" });
    const unbound = await mintToken({ client_id: "unbound-optional" });
    for (const topic of [uniqueTopic("a"), uniqueTopic("b")]) expect((await hub("/api/hub", subscribeForm(topic, "Patient-open"), unbound)).status).toBe(202);
  });
});

// ---- finding 6: SMART keys, outages, revocation, rotation, iat -----------------------------------

/** A SMART-mode hub (production) whose key set is at `url`. */
function smartHub(url: string, settings: Record<string, string> = {}) {
  return hubWith({
    HUB_ENV: "production", AUTH_MODE: "smart", SMART_JWKS_URL: url, SMART_ISSUER, SMART_AUDIENCE, LOG_LEVEL: "warn", TOPIC_BINDING: "required", ...settings,
  });
}

/** Polls `check` every 100 ms until it is true; returns the milliseconds it took, or fails after `timeoutMs`. */
async function within(timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - started;
}

describe("SMART mode: a key set that cannot be fetched is 503 (try again), never 401 (invalid_token)", () => {
  it("a healthy key set: the token works; a token of an unknown key is 401", async () => {
    const url = jwksUrl("healthy");
    const key = await signingKey();
    await serveKeys(url, key);
    const hub = smartHub(url);
    const topic = uniqueTopic("smart");
    const r = await everyApi(hub, topic, await key.sign({ "hub.topic": topic }));
    expect([r.subscribe.status, r.publish.status, r.get.status, r.inspect.status]).toEqual([202, 202, 200, 200]);
    const stranger = await signingKey();
    const res = await hub(`/api/hub/${encodeURIComponent(topic)}`, {}, await stranger.sign({ "hub.topic": topic }));
    await expectOutcome(res, 401, "not signed by a key of the configured issuer");
    expect(res.headers.get("WWW-Authenticate")).toMatch(/error="invalid_token"/);
  });

  const outages: { name: string; url: () => Promise<string>; reason: RegExp }[] = [
    { name: "HTTP 500", url: async () => { const u = jwksUrl("500"); await answer(u, 500, "text/plain", "internal error"); return u; }, reason: /HTTP 500/ },
    { name: "an HTML page (a login redirect target)", url: async () => { const u = jwksUrl("html"); await answer(u, 200, "text/html", "<!doctype html><title>Sign in</title>"); return u; }, reason: /JSON/ },
    { name: "garbage", url: async () => { const u = jwksUrl("garbage"); await answer(u, 200, "application/json", "\u0000\u0001 not json"); return u; }, reason: /JSON/ },
    { name: "JSON that is not a key set", url: async () => { const u = jwksUrl("notset"); await answer(u, 200, "application/json", '{"keys":"none"}'); return u; }, reason: /malformed/ },
    { name: "nothing listening (unreachable)", url: async () => "http://127.0.0.1:1/jwks", reason: /./ },
  ];
  for (const o of outages) {
    it(`${o.name}: subscribe, publish, GET and inspector answer 503 with Retry-After, and a warning names the JWKS URL`, async () => {
      const url = await o.url();
      const hub = smartHub(url);
      const topic = uniqueTopic("outage");
      const token = await (await signingKey()).sign({ "hub.topic": topic });
      let r!: Awaited<ReturnType<typeof expectAllRefused>>;
      const lines = await logLines("warn", async () => {
        r = await expectAllRefused(hub, topic, token, 503, "signing keys (SMART_JWKS_URL) could not be fetched");
      });
      for (const res of Object.values(r)) {
        expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
        expect(res.headers.get("WWW-Authenticate")).toBeNull(); // the client keeps its token
      }
      const warning = lines.find((l) => l.msg === "auth.jwks.unavailable");
      expect(warning).toMatchObject({ level: "warn", url: new URL(url).origin + new URL(url).pathname, reason: expect.stringMatching(o.reason) });
    });
  }

  for (const bad of ["not a url", "ftp://as.example/jwks"]) {
    it(`SMART_JWKS_URL="${bad}": 503 naming the setting, and an error line at start`, async () => {
      const hub = smartHub(bad);
      const topic = uniqueTopic("badurl");
      await expectAllRefused(hub, topic, await (await signingKey()).sign({ "hub.topic": topic }), 503, `SMART_JWKS_URL (not an http(s) URL: "${bad}")`);
      expect((await hub("/health")).status).toBe(503);
      const lines = await logLines("error", () => announceAuth(hub.env));
      expect(lines).toEqual([expect.objectContaining({ msg: "auth.refused", problem: expect.stringContaining(bad) })]);
    });
  }

  it("once the key set is back, the same token works again (after Retry-After)", async () => {
    const url = jwksUrl("recover");
    await answer(url, 503, "text/plain", "maintenance");
    const key = await signingKey();
    const hub = smartHub(url, { JWKS_CACHE_SECONDS: "1" });
    const topic = uniqueTopic("recover");
    const token = await key.sign({ "hub.topic": topic });
    await logLines("warn", async () => {
      const first = await hub(`/api/hub/${encodeURIComponent(topic)}`, {}, token);
      expect(first.status).toBe(503);
      expect(first.headers.get("Retry-After")).toBe("1");
      await serveKeys(url, key);
      await within(3000, async () => (await hub(`/api/hub/${encodeURIComponent(topic)}`, {}, token)).status === 200);
    });
  });
});

describe("JWKS_CACHE_SECONDS and TOKEN_CACHE_SECONDS: a revoked key stops working within their sum (≤ 300 s)", () => {
  it("defaults: 240 + 60 = 300 s at most; larger settings are a configuration error", () => {
    const auth = readConfig({} as Env).auth;
    expect([auth.jwksCacheSeconds, auth.tokenCacheSeconds]).toEqual([240, 60]);
    expect(auth.jwksCacheSeconds + auth.tokenCacheSeconds).toBeLessThanOrEqual(KEY_REVOCATION_MAX_SECONDS);
    expect(KEY_REVOCATION_MAX_SECONDS).toBe(300);
    expect(() => readConfig({ JWKS_CACHE_SECONDS: "600" } as Env)).toThrow(/JWKS_CACHE_SECONDS \(600\) \+ TOKEN_CACHE_SECONDS \(60\) must not exceed 300/);
    expect(() => readConfig({ JWKS_CACHE_SECONDS: "250", TOKEN_CACHE_SECONDS: "60" } as Env)).toThrow(/must not exceed 300/);
    expect(() => readConfig({ TOKEN_CACHE_SECONDS: "-1" } as Env)).toThrow(/TOKEN_CACHE_SECONDS="-1" must be a non-negative integer/);
  });

  it("a revoked key (removed from the JWKS): its tokens are refused (401) within JWKS_CACHE_SECONDS + TOKEN_CACHE_SECONDS; the other key's still work", async () => {
    const url = jwksUrl("revoke");
    const [a, b] = [await signingKey(), await signingKey()];
    await serveKeys(url, a, b);
    const hub = smartHub(url, { JWKS_CACHE_SECONDS: "1", TOKEN_CACHE_SECONDS: "1" });
    const topic = uniqueTopic("revoke");
    const [tokenA, tokenB] = [await a.sign({ "hub.topic": topic }), await b.sign({ "hub.topic": topic })];
    const get = (t: string) => hub(`/api/hub/${encodeURIComponent(topic)}`, {}, t);
    expect((await get(tokenA)).status).toBe(200);
    expect((await get(tokenB)).status).toBe(200);
    await serveKeys(url, b); // a is revoked
    const took = await within(4000, async () => (await get(tokenA)).status === 401);
    expect(took).toBeLessThanOrEqual(3000); // the sum is 2 s; jose's default alone was 600 s
    await expectOutcome(await get(tokenA), 401, "not signed by a key of the configured issuer");
    expect((await get(tokenB)).status).toBe(200);
  });

  it("a rotated-in key (a new kid in the JWKS) is honoured within a second, long before the cache window ends", async () => {
    const url = jwksUrl("rotate");
    const [old, next] = [await signingKey(), await signingKey()];
    await serveKeys(url, old);
    const hub = smartHub(url, { JWKS_CACHE_SECONDS: "240" });
    const topic = uniqueTopic("rotate");
    const get = (k: SigningKey) => async () => (await hub(`/api/hub/${encodeURIComponent(topic)}`, {}, await k.sign({ "hub.topic": topic }))).status;
    expect(await get(old)()).toBe(200);
    await serveKeys(url, old, next);
    const took = await within(3000, async () => (await get(next)()) === 200);
    expect(took).toBeLessThanOrEqual(2000); // jose's default cooldown was 30 s
    expect(await get(old)()).toBe(200);
    expect(await fetchCount(url)).toBe(2); // the first fetch and one for the new kid, not one per request
  });
});

describe("iat: a token issued in the future is refused beyond a 60 s clock skew", () => {
  it("iat a day ahead: 401 naming iat; 30 s ahead: accepted", async () => {
    const url = jwksUrl("iat");
    const key = await signingKey();
    await serveKeys(url, key);
    const hub = smartHub(url);
    const topic = uniqueTopic("iat");
    const now = Math.floor(Date.now() / 1000);
    const future = await key.sign({ "hub.topic": topic, iat: now + 86400 });
    await expectAllRefused(hub, topic, future, 401, 'token claim "iat" is in the future');
    expect((await hub("/api/hub", subscribeForm(topic, "Patient-open"), future)).headers.get("WWW-Authenticate")).toMatch(/error="invalid_token"/);
    expect((await hub(`/api/hub/${encodeURIComponent(topic)}`, {}, await key.sign({ "hub.topic": topic, iat: now + 30 }))).status).toBe(200);
  });
});

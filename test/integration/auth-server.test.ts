// Issue 24: the hub works with a real authorization server's metadata and tokens. Discovery
// (SMART_ISSUER alone is enough: jwks_uri and introspection_endpoint from
// {issuer}/.well-known/openid-configuration, cached, 503 while unreadable); opaque tokens checked by
// RFC 7662 introspection (active, aud, scope, client_id, the topic member; cached, 503 on outages,
// secrets never logged). The authorization server is the loopback HTTP server of
// test/helpers/jwks-server.ts; each case calls the Worker's real fetch handler.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/worker";
import { expectOutcome, patientOpen, publishInit, subscribeForm, uniqueTopic } from "../helpers/hub";
import { answer, fetchCount, jwksUrl, lastRequest, serveKeys, signingKey, SMART_AUDIENCE } from "../helpers/jwks";

const ORIGIN = "http://hub.test";
const SECRET = "s3cret-of-the-hub";

function hubWith(settings: Record<string, string | undefined>) {
  const e = { ...(env as unknown as Env), HUB_ENV: "production", AUTH_MODE: "smart", SMART_AUDIENCE, LOG_LEVEL: "warn", TOPIC_BINDING: "required", ...settings } as Env;
  return (path: string, init: RequestInit = {}, token?: string) => {
    const headers = new Headers(init.headers);
    if (token) headers.set("Authorization", `Bearer ${token}`);
    return worker.fetch(new Request(`${ORIGIN}${path}`, { ...init, headers }), e, createExecutionContext());
  };
}

let warn: MockInstance<(...args: unknown[]) => void>;
beforeEach(() => {
  warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
  vi.spyOn(console, "error").mockImplementation(() => undefined);
});
afterEach(() => vi.restoreAllMocks());
const warnings = () => warn.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>);

/** A fresh issuer on the loopback server: its discovery document names `metadata`. */
async function issuer(label: string, metadata: (iss: string) => Record<string, unknown>): Promise<string> {
  const iss = jwksUrl(label);
  await answer(`${iss}/.well-known/openid-configuration`, 200, "application/json", JSON.stringify(metadata(iss)));
  return iss;
}

const publish = (hub: ReturnType<typeof hubWith>, topic: string, token: string) =>
  hub(`/api/hub/${encodeURIComponent(topic)}`, publishInit(patientOpen(topic, "p1")), token);

describe("discovery: SMART_ISSUER alone is enough", () => {
  it("jwks_uri from {issuer}/.well-known/openid-configuration verifies the token; the document is fetched once (cached)", async () => {
    const key = await signingKey();
    const keysAt = jwksUrl("keys");
    await serveKeys(keysAt, key);
    const iss = await issuer("disc", (i) => ({ issuer: i, jwks_uri: keysAt }));
    const hub = hubWith({ SMART_ISSUER: iss });
    const topic = uniqueTopic("disc");
    const token = await key.sign({ iss, "hub.topic": topic });
    expect((await hub("/api/hub", subscribeForm(topic, "Patient-open"), token)).status).toBe(202);
    expect((await publish(hub, topic, token)).status).toBe(202);
    expect((await publish(hub, topic, await key.sign({ iss, "hub.topic": topic }))).status).toBe(202);
    expect(await fetchCount(`${iss}/.well-known/openid-configuration`)).toBe(1);
  });

  it("an explicit SMART_JWKS_URL wins: discovery is not read", async () => {
    const key = await signingKey();
    const keysAt = jwksUrl("explicit");
    await serveKeys(keysAt, key);
    const other = jwksUrl("other");
    await serveKeys(other, await signingKey());
    const iss = await issuer("wins", (i) => ({ issuer: i, jwks_uri: other }));
    const hub = hubWith({ SMART_ISSUER: iss, SMART_JWKS_URL: keysAt });
    const topic = uniqueTopic("wins");
    expect((await publish(hub, topic, await key.sign({ iss, "hub.topic": topic }))).status).toBe(202);
    expect(await fetchCount(`${iss}/.well-known/openid-configuration`)).toBe(0);
  });

  const broken: [string, (iss: string) => Promise<void>][] = [
    ["HTTP 500", (iss) => answer(`${iss}/.well-known/openid-configuration`, 500, "text/plain", "down")],
    ["not found anywhere (404)", async () => undefined],
    ["another issuer's document", (iss) => answer(`${iss}/.well-known/openid-configuration`, 200, "application/json", JSON.stringify({ issuer: "https://evil.example", jwks_uri: "https://evil.example/jwks" }))],
  ];
  for (const [name, setup] of broken) {
    it(`an unreadable discovery document (${name}): 503 with Retry-After naming the URL, and a warning naming it`, async () => {
      const iss = jwksUrl("broken");
      await setup(iss);
      const hub = hubWith({ SMART_ISSUER: iss });
      const topic = uniqueTopic("broken");
      const res = await publish(hub, topic, await (await signingKey()).sign({ iss, "hub.topic": topic }));
      await expectOutcome(res, 503, `discovery document (${iss}/.well-known/openid-configuration) could not be read`);
      expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
      expect(warnings()).toContainEqual(expect.objectContaining({ msg: "auth.discovery.unavailable", url: `${iss}/.well-known/openid-configuration` }));
    });
  }

  it("after an outage: requests within Retry-After do not fetch again; once the document is back the same token works", async () => {
    const key = await signingKey();
    const keysAt = jwksUrl("backkeys");
    await serveKeys(keysAt, key);
    const iss = jwksUrl("back");
    const doc = `${iss}/.well-known/openid-configuration`;
    await answer(doc, 500, "text/plain", "down");
    const hub = hubWith({ SMART_ISSUER: iss, JWKS_CACHE_SECONDS: "1" });
    const topic = uniqueTopic("back");
    const token = await key.sign({ iss, "hub.topic": topic });
    const first = await publish(hub, topic, token);
    expect(first.status).toBe(503);
    expect(first.headers.get("Retry-After")).toBe("1");
    expect((await publish(hub, topic, token)).status).toBe(503);
    expect(await fetchCount(doc)).toBe(1); // the second request was answered from the retry window
    await answer(doc, 200, "application/json", JSON.stringify({ issuer: iss, jwks_uri: keysAt }));
    const started = Date.now();
    while ((await publish(hub, topic, token)).status !== 202) {
      if (Date.now() - started > 3000) throw new Error("not accepted within 3 s of the document's return");
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it("/.well-known/smart-configuration is read when openid-configuration is missing", async () => {
    const key = await signingKey();
    const keysAt = jwksUrl("smartkeys");
    await serveKeys(keysAt, key);
    const iss = jwksUrl("smartconf");
    await answer(`${iss}/.well-known/smart-configuration`, 200, "application/json", JSON.stringify({ issuer: iss, jwks_uri: keysAt }));
    const topic = uniqueTopic("smartconf");
    expect((await publish(hubWith({ SMART_ISSUER: iss }), topic, await key.sign({ iss, "hub.topic": topic }))).status).toBe(202);
  });
});

describe("opaque tokens by introspection (RFC 7662)", () => {
  /** An issuer whose discovery names an introspection endpoint answering `body` (200 JSON unless `status`). */
  async function introspecting(body: unknown, status = 200) {
    const endpoint = jwksUrl("introspect");
    await answer(endpoint, status, "application/json", typeof body === "string" ? body : JSON.stringify(body));
    const iss = await issuer("opaque", (i) => ({ issuer: i, introspection_endpoint: endpoint }));
    const hub = hubWith({ SMART_ISSUER: iss, INTROSPECTION_CLIENT_ID: "fhircast-hub", INTROSPECTION_CLIENT_SECRET: SECRET, TOKEN_CACHE_SECONDS: "60" });
    return { endpoint, iss, hub };
  }
  const active = (topic: string, extra: Record<string, unknown> = {}) => ({
    active: true, scope: "fhircast/Patient-open.write fhircast/Patient-open.read", client_id: "opaque-app", aud: SMART_AUDIENCE,
    exp: Math.floor(Date.now() / 1000) + 600, "hub.topic": topic, ...extra,
  });

  it("active: the token's scope, client and hub.topic are honoured; the hub authenticates with Basic credentials; the answer is cached", async () => {
    const topic = uniqueTopic("opaque");
    const { endpoint, hub } = await introspecting(active(topic));
    const token = "opaque-" + crypto.randomUUID();
    expect((await hub("/api/hub", subscribeForm(topic, "Patient-open"), token)).status).toBe(202);
    expect((await publish(hub, topic, token)).status).toBe(202);
    expect(await fetchCount(endpoint)).toBe(1);
    const last = await lastRequest(endpoint);
    expect(last?.authorization).toBe(`Basic ${btoa(`fhircast-hub:${SECRET}`)}`);
    expect(new URLSearchParams(last!.body).get("token")).toBe(token);
    // a scope the token lacks
    expect((await hub("/api/hub", subscribeForm(topic, "Encounter-open"), token)).status).toBe(403);
  });

  it("active: false is 401 invalid_token", async () => {
    const topic = uniqueTopic("inactive");
    const { hub } = await introspecting({ active: false });
    const res = await publish(hub, topic, "revoked-" + crypto.randomUUID());
    await expectOutcome(res, 401, "token is not active");
    expect(res.headers.get("WWW-Authenticate")).toMatch(/invalid_token/);
  });

  it("bound to another topic: 403; without the topic member under TOPIC_BINDING=required: 403", async () => {
    const topic = uniqueTopic("bound");
    const { hub } = await introspecting(active(uniqueTopic("elsewhere")));
    expect((await publish(hub, topic, "other-" + crypto.randomUUID())).status).toBe(403);
    const unbound = await introspecting(active(topic, { "hub.topic": undefined }));
    await expectOutcome(await publish(unbound.hub, topic, "unbound-" + crypto.randomUUID()), 403, "no \"hub.topic\"");
  });

  const refusals: [string, Record<string, unknown>, string][] = [
    ["another audience", { aud: "https://other.example/fhir" }, 'claim "aud"'],
    ["no audience", { aud: undefined }, 'claim "aud"'],
    ["expired", { exp: Math.floor(Date.now() / 1000) - 5 }, "token expired"],
    ["another issuer", { iss: "https://evil.example" }, 'claim "iss"'],
    ["no client", { client_id: undefined }, "names no client"],
    ["an empty topic", { "hub.topic": "" }, "must be a non-empty string"],
    ["a DPoP token type", { token_type: "DPoP" }, "not a bearer access token"],
    ["a sender constraint (cnf)", { cnf: { jkt: "abc" } }, "sender-constrained"],
  ];
  for (const [name, extra, needle] of refusals) {
    it(`an active answer with ${name}: 401`, async () => {
      const topic = uniqueTopic("refused");
      const { hub } = await introspecting(active(topic, extra));
      await expectOutcome(await publish(hub, topic, "t-" + crypto.randomUUID()), 401, needle);
    });
  }

  const outages: [string, unknown, number][] = [
    ["HTTP 500", "boom", 500],
    ["HTTP 401 (the hub's credentials refused)", { error: "invalid_client" }, 401],
    ["not JSON", "<html>", 200],
    ["JSON without active", { scope: "x" }, 200],
  ];
  for (const [name, body, status] of outages) {
    it(`an introspection outage (${name}): 503 with Retry-After, never 200 or 401; the warning names the URL, never the secret`, async () => {
      const topic = uniqueTopic("ioutage");
      const { endpoint, hub } = await introspecting(body, status);
      const res = await publish(hub, topic, "t-" + crypto.randomUUID());
      await expectOutcome(res, 503, "introspection endpoint did not answer");
      expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
      expect(warnings()).toContainEqual(expect.objectContaining({ msg: "auth.introspection.unavailable", url: endpoint }));
      expect(JSON.stringify(warn.mock.calls)).not.toContain(SECRET);
      expect(JSON.stringify(warn.mock.calls)).not.toContain(btoa(`fhircast-hub:${SECRET}`));
    });
  }

  it("a discovery document without introspection_endpoint: 503 naming the missing member", async () => {
    const iss = await issuer("noint", (i) => ({ issuer: i, jwks_uri: jwksUrl("unused") }));
    const hub = hubWith({ SMART_ISSUER: iss, INTROSPECTION_CLIENT_ID: "hub", INTROSPECTION_CLIENT_SECRET: SECRET });
    await expectOutcome(await publish(hub, uniqueTopic("noint"), "opaque"), 503, "introspection_endpoint");
  });

  it("SMART_INTROSPECTION_URL needs no discovery; INTROSPECT=always introspects JWTs too; TOKEN_CACHE_SECONDS=0 asks every time", async () => {
    const topic = uniqueTopic("always");
    const endpoint = jwksUrl("always");
    await answer(endpoint, 200, "application/json", JSON.stringify({ ...active(topic), active: false }));
    const hub = hubWith({
      SMART_ISSUER: "https://as.example/never-read", SMART_INTROSPECTION_URL: endpoint, INTROSPECT: "always",
      INTROSPECTION_CLIENT_ID: "hub", INTROSPECTION_CLIENT_SECRET: SECRET, TOKEN_CACHE_SECONDS: "0",
    });
    const jwt = await (await signingKey()).sign({ "hub.topic": topic });
    await expectOutcome(await publish(hub, topic, jwt), 401, "not active"); // a JWT, yet the introspection answer decides
    await answer(endpoint, 200, "application/json", JSON.stringify(active(topic)));
    expect((await publish(hub, topic, jwt)).status).toBe(202);
    expect(await fetchCount(endpoint)).toBe(2);
  });

  it("INTROSPECT=always or SMART_INTROSPECTION_URL without credentials: 503 naming the settings", async () => {
    const hub = hubWith({ SMART_ISSUER: "https://as.example", SMART_INTROSPECTION_URL: "https://as.example/introspect" });
    await expectOutcome(await publish(hub, uniqueTopic("nocreds"), "x"), 503, "INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET");
  });
});

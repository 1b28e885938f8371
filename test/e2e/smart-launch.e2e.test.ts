// Issue 24: the SMART launch end to end against a real OpenID provider. oidc-provider plays the
// EHR's authorization server (test/e2e/support/smart-as.ts, in this process on loopback); the hub
// (on plain workerd, test/helpers/node/workerd-hub.ts, AUTH_MODE=smart) is configured with nothing
// but its issuer, audience and introspection credentials: it finds the keys and the introspection
// endpoint by discovery. The test plays the EHR and two apps: the EHR opens a session (topic) and
// launches each app; each app completes the launch (authorization_code with `launch`, PKCE), reads
// hub.url and hub.topic from the token response (https://fhircast.hl7.org/STU3/index.html
// fhircast.hl7.org/STU3/2-1-SessionDiscovery.html), joins with the project's client (src/client),
// and they exchange a Patient-open and a DiagnosticReport-update: app A with a JWT access token, app
// B with an opaque one checked by introspection (RFC 7662). Then a revoked token is refused, a token
// for another session gets 403, and a provider outage fails closed (503).
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FhircastClient, type ReceivedEvent } from "../../src/client";
import { freePort, http, patient, removeDir, tempStateDir, uniqueTopic, type WorkerdServer } from "../helpers/server";
import { startWorkerdHub } from "../helpers/node/workerd-hub.ts";
import { waitUntil } from "../helpers/until";
import { type AppClient, RESOURCE_JWT, RESOURCE_OPAQUE, RESOURCE_SHORT, SHORT_TTL_SECONDS, type SmartAs, startSmartAs } from "./support/smart-as";

let dir: string;
let hub: WorkerdServer | undefined;
let as: SmartAs | undefined;
const clients: FhircastClient[] = [];

beforeAll(async () => {
  const [asPort, hubPort] = [await freePort(), await freePort()];
  const hubUrl = `http://127.0.0.1:${hubPort}/api/hub`;
  as = await startSmartAs({ port: asPort, hubUrl, audience: hubUrl });
  dir = await tempStateDir("fhircast-smart-e2e");
  hub = await startWorkerdHub({
    persistTo: dir,
    port: hubPort,
    vars: {
      AUTH_MODE: "smart", SMART_ISSUER: as.issuer, SMART_AUDIENCE: as.audience, TOPIC_BINDING: "required",
      INTROSPECTION_CLIENT_ID: as.introspector.client_id, INTROSPECTION_CLIENT_SECRET: as.introspector.client_secret,
      // A revoked opaque token is refused within a second (the default is 60 s).
      TOKEN_CACHE_SECONDS: "1",
    },
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await hub?.stop();
  await as?.close().catch(() => undefined);
  if (dir) await removeDir(dir);
}, 60_000);

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;

interface TokenResponse {
  access_token: string;
  token_type: string;
  scope: string;
  "hub.url": string;
  "hub.topic": string;
}

async function tokenRequest(client: { client_id: string; client_secret: string }, params: Record<string, string>): Promise<TokenResponse> {
  const res = await http(`${as!.issuer}/token`, {
    method: "POST",
    headers: { Authorization: basic(client.client_id, client.client_secret), "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`token endpoint: ${res.status} ${text}`);
  return JSON.parse(text) as TokenResponse;
}

/**
 * An EHR launch as the app performs it (SMART App Launch "EHR launch"): the EHR opened the app with
 * `iss` and `launch`; the app sends the clinician's browser to the authorization endpoint with that
 * `launch`, the authorization server signs the clinician in (already signed in to the EHR: no form),
 * redirects back with a code, and the app exchanges it. The browser is fetch with a cookie jar.
 */
async function ehrLaunch(app: AppClient, launch: string, resource: string): Promise<TokenResponse> {
  const verifier = randomBytes(32).toString("base64url");
  const state = randomBytes(8).toString("base64url");
  let url = `${as!.issuer}/auth?${new URLSearchParams({
    response_type: "code", client_id: app.client_id, redirect_uri: app.redirect_uri, scope: "launch fhircast/*.read fhircast/*.write",
    launch, resource, state, code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256",
  })}`;
  const cookies = new Map<string, string>();
  for (let hop = 0; hop < 10; hop++) {
    if (url.startsWith(app.redirect_uri)) {
      const back = new URL(url).searchParams;
      expect(back.get("state")).toBe(state);
      const code = back.get("code");
      if (!code) throw new Error(`the launch ended without a code: ${url}`);
      return tokenRequest(app, { grant_type: "authorization_code", code, redirect_uri: app.redirect_uri, code_verifier: verifier });
    }
    const res = await http(url, { redirect: "manual", headers: { Cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; ") } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair!.indexOf("=");
      cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    const location = res.headers.get("Location");
    if (res.status < 300 || res.status >= 400 || !location) throw new Error(`the launch stopped at ${url}: ${res.status} ${await res.text()}`);
    await res.body?.cancel();
    url = new URL(location, url).href;
  }
  throw new Error("the launch did not come back to the app");
}

/** An app joined with the project's client, with the events it received. */
function join(t: TokenResponse, events: string[]) {
  const received: ReceivedEvent[] = [];
  const client = new FhircastClient({ hubUrl: t["hub.url"], topic: t["hub.topic"], events, token: t.access_token, timeoutMs: 10_000 });
  client.on("event", (e) => {
    received.push(e);
    return undefined;
  });
  clients.push(client);
  const waitFor = async (id: string) => {
    await within(10_000, async () => received.some((e) => e.id === id));
    return received.find((e) => e.id === id)!;
  };
  return { client, received, waitFor };
}

/** Waits (polling every 100 ms) until `check` holds; throws after `ms`. */
const within = (ms: number, check: () => Promise<boolean>) => waitUntil(check, ms, "not true in time", 100);

const contextStatus = async (topic: string, token: string) => {
  const res = await http(`${hub!.hubUrl}/${encodeURIComponent(topic)}`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: res.status, text: await res.text() };
};

describe("the SMART launch against oidc-provider (JWT and opaque tokens, one hub found by discovery)", () => {
  const events = ["Patient-open", "DiagnosticReport-open", "DiagnosticReport-update"];
  const topic = uniqueTopic("smart-launch");
  let a: TokenResponse;
  let b: TokenResponse;

  it("the EHR launches two apps; each reads hub.url and hub.topic from its token response; they exchange Patient-open and DiagnosticReport-update", async () => {
    const [appA, appB] = as!.apps as [AppClient, AppClient];
    a = await ehrLaunch(appA, as!.newLaunch(topic), RESOURCE_JWT);
    b = await ehrLaunch(appB, as!.newLaunch(topic), RESOURCE_OPAQUE);
    for (const t of [a, b]) expect(t).toMatchObject({ token_type: "Bearer", "hub.url": hub!.hubUrl, "hub.topic": topic, scope: expect.stringContaining("fhircast/*.write") });
    expect(a.access_token.split(".")).toHaveLength(3); // a JWT carrying the topic claim
    expect(JSON.parse(Buffer.from(a.access_token.split(".")[1]!, "base64url").toString())).toMatchObject({ "hub.topic": topic, aud: as!.audience, client_id: "app-a" });
    expect(b.access_token).not.toContain("."); // opaque: only introspection can read it

    const A = join(a, events);
    const B = join(b, events);
    await Promise.all([A.client.connect(), B.client.connect()]);

    const open = await A.client.publish("Patient-open", { patient: patient("p-smart") });
    expect((await B.waitFor(open.id)).name).toBe("Patient-open");

    const report = { resourceType: "DiagnosticReport", id: "r-smart", status: "unknown", subject: { reference: "Patient/p-smart" } };
    const ropen = await A.client.publish("DiagnosticReport-open", { report, patient: patient("p-smart") });
    await B.waitFor(ropen.id);
    const update = await B.client.update("DiagnosticReport/r-smart", { put: [{ resourceType: "Observation", id: "obs-smart", status: "preliminary", code: { text: "from app B" } }] });
    expect(update.accepted).toBe(true);
    if (!update.accepted) throw new Error("unreachable");
    const got = await A.waitFor(update.id);
    expect(got.name).toBe("DiagnosticReport-update");
    expect(got.priorVersionId).toBeDefined();
  });

  it("the EHR's own client_credentials token (JWT and opaque) works for its session", async () => {
    for (const resource of [RESOURCE_JWT, RESOURCE_OPAQUE]) {
      const t = await tokenRequest(as!.ehr, { grant_type: "client_credentials", scope: "fhircast/*.read fhircast/*.write", resource, launch: as!.newLaunch(topic) });
      expect(t["hub.topic"]).toBe(topic);
      expect((await contextStatus(topic, t.access_token)).status).toBe(200);
    }
  });

  it("a token for another session gets 403, for either kind of token", async () => {
    const other = uniqueTopic("smart-other");
    for (const resource of [RESOURCE_JWT, RESOURCE_OPAQUE]) {
      const t = await ehrLaunch(as!.apps[0]!, as!.newLaunch(other), resource);
      expect(t["hub.topic"]).toBe(other);
      const r = await contextStatus(topic, t.access_token);
      expect(r.status).toBe(403);
      expect(r.text).toMatch(/bound to another hub.topic/);
    }
  });

  it("a revoked opaque token is refused (401) within TOKEN_CACHE_SECONDS", async () => {
    expect((await contextStatus(topic, b.access_token)).status).toBe(200);
    const [, appB] = as!.apps as [AppClient, AppClient];
    const res = await http(`${as!.issuer}/token/revocation`, {
      method: "POST",
      headers: { Authorization: basic(appB.client_id, appB.client_secret), "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: b.access_token, token_type_hint: "access_token" }).toString(),
    });
    expect(res.status).toBe(200);
    await within(5000, async () => (await contextStatus(topic, b.access_token)).status === 401);
    expect((await contextStatus(topic, b.access_token)).text).toMatch(/not active/);
  });

  it("an expired JWT is refused (401 token expired)", async () => {
    const t = await tokenRequest(as!.ehr, { grant_type: "client_credentials", scope: "fhircast/*.read fhircast/*.write", resource: RESOURCE_SHORT, launch: as!.newLaunch(topic) });
    expect((await contextStatus(topic, t.access_token)).status).toBe(200);
    await within((SHORT_TTL_SECONDS + 3) * 1000, async () => (await contextStatus(topic, t.access_token)).status === 401);
    expect((await contextStatus(topic, t.access_token)).text).toMatch(/token expired/);
  });

  it("a provider outage fails closed: an opaque token the hub has not seen is 503, never accepted", async () => {
    const fresh = await tokenRequest(as!.ehr, { grant_type: "client_credentials", scope: "fhircast/*.read fhircast/*.write", resource: RESOURCE_OPAQUE, launch: as!.newLaunch(topic) });
    await as!.close();
    const r = await contextStatus(topic, fresh.access_token);
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/introspection endpoint did not answer/);
    // The hub's warning names the endpoint, never its credentials.
    await within(5000, async () => hub!.output.includes("auth.introspection.unavailable"));
    expect(hub!.output).toContain(`${as!.issuer}/token/introspection`);
    expect(hub!.output).not.toContain(as!.introspector.client_secret);
  });
});

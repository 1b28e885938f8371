// The local development token issuer (AUTH_MODE=dev, what `npm start` runs): `POST /auth/token`
// (client_credentials) and `GET /auth/jwks`. Its ES256 key pair is made on first use and kept in a
// Durable Object of its own, so tokens stay valid across restarts and isolates and no key is ever
// committed. Never enabled in production (wrangler.toml [env.production]).
import { DurableObject } from "cloudflare:workers";
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import type { AuthConfig } from "../config";
import { parseTopic } from "../fhircast/topic-name";
import { fail, ok, type Result } from "../fhircast/wire";
import { invalidFhircastScopes } from "./scopes";

export const DEV_ISSUER = "fhircast-hub-dev-issuer";
export const DEV_AUDIENCE = "fhircast-hub";
const ALG = "ES256";

interface KeyPair {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

/** Holds the development issuer's key pair (one object, named "dev-issuer"). */
export class DevIssuer extends DurableObject {
  async keys(): Promise<KeyPair> {
    const stored = await this.ctx.storage.get<KeyPair>("keys");
    if (stored) return stored;
    const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
    const kid = crypto.randomUUID();
    const pair: KeyPair = {
      kid,
      privateJwk: { ...(await exportJWK(privateKey)), kid, alg: ALG },
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: ALG, use: "sig" },
    };
    await this.ctx.storage.put("keys", pair);
    return pair;
  }
}

/** The key pair, fetched from the issuer object once per isolate. */
let cachedKeys: Promise<KeyPair> | undefined;

/** The one binding the issuer needs (a part of src/env.ts `Env`, named here so this module imports no environment type). */
export interface IssuerEnv {
  ISSUER: DurableObjectNamespace<DevIssuer>;
}

function keys(env: IssuerEnv): Promise<KeyPair> {
  cachedKeys ??= env.ISSUER.get(env.ISSUER.idFromName("dev-issuer"))
    .keys()
    .catch((e: unknown) => {
      cachedKeys = undefined;
      throw e;
    });
  return cachedKeys;
}

export async function devPublicJwks(env: IssuerEnv): Promise<{ keys: JWK[] }> {
  return { keys: [(await keys(env)).publicJwk] };
}

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  scope: string;
  "hub.url": string;
  "hub.topic": string;
}

/** OAuth error bodies (RFC 6749 §5.2). */
export function oauthError(error: string, description: string) {
  return fail(400, error, description);
}

/**
 * Issues a token for `client_credentials`: the scopes asked for, bound to `hub.topic` when given,
 * otherwise to a fresh random topic (the hub generates opaque, unguessable topics, fhircast.hl7.org/STU3/4-3-security-considerations.html). The response
 * carries `hub.url` and `hub.topic` as a SMART launch does (fhircast.hl7.org/STU3/2-1-SessionDiscovery.html).
 */
export async function issueToken(params: URLSearchParams, env: IssuerEnv, auth: AuthConfig, hubUrl: string): Promise<Result<TokenResponse>> {
  for (const [k] of params) {
    if (params.getAll(k).length > 1) return oauthError("invalid_request", `parameter ${k} appears more than once`);
  }
  if (params.get("grant_type") !== "client_credentials") {
    return oauthError("unsupported_grant_type", "grant_type must be client_credentials");
  }
  const clientId = params.get("client_id")?.trim();
  if (!clientId || clientId.length > 256) return oauthError("invalid_request", "client_id is required (at most 256 characters)");
  const scope = (params.get("scope") ?? "").trim().replace(/\s+/g, " ");
  if (!scope) return oauthError("invalid_scope", "scope is required, e.g. fhircast/*.read fhircast/Patient-open.write");
  const bad = invalidFhircastScopes(scope);
  if (bad.length > 0) return oauthError("invalid_scope", `not a FHIRcast scope: ${bad.join(" ")} (fhircast/<Event|*>.<read|write|*>)`);
  // A blank hub.topic asks for a fresh one, as an absent one does; a given one follows the hub's topic rule.
  const asked = params.get("hub.topic")?.trim();
  const parsed = asked ? parseTopic(asked) : ok(crypto.randomUUID());
  if (!parsed.ok) return oauthError("invalid_request", parsed.detail);
  const topic = parsed.value;

  const k = await keys(env);
  const now = Math.floor(Date.now() / 1000);
  const accessToken = await new SignJWT({ scope, client_id: clientId, [auth.topicClaim]: topic })
    .setProtectedHeader({ alg: ALG, kid: k.kid, typ: "JWT" })
    .setIssuer(DEV_ISSUER)
    .setAudience(DEV_AUDIENCE)
    .setSubject(clientId)
    .setIssuedAt(now)
    .setExpirationTime(now + auth.devTokenSeconds)
    .setJti(crypto.randomUUID())
    .sign(await importJWK(k.privateJwk, ALG));
  return ok({
    access_token: accessToken,
    token_type: "Bearer",
    expires_in: auth.devTokenSeconds,
    scope,
    "hub.url": hubUrl,
    "hub.topic": topic,
  });
}

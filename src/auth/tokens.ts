// Bearer token verification (fhircast.hl7.org/STU3/2-2-FhircastScopes.html, fhircast.hl7.org/STU3/4-3-security-considerations.html; SMART on FHIR) with jose. Three modes:
//  smart — tokens from the configured authorization server: JWTs against its keys (SMART_JWKS_URL, or
//          `jwks_uri` from its discovery document), opaque tokens by introspection (RFC 7662), issuer,
//          audience;
//  dev   — tokens from the hub's own development issuer (src/auth/dev-issuer.ts), verified the same way;
//  open  — no tokens at all, for quick local experiments only (logged loudly; refused outside
//          HUB_ENV=development, src/config.ts).
import { createLocalJWKSet, decodeProtectedHeader, errors, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from "jose";
import { applySettings, type AuthConfig, hubSettings } from "../config";
import type { Env } from "../env";
import { fail, ok, type Result } from "../fhircast/wire";
import { log } from "../log";
import { devPublicJwks, DEV_AUDIENCE, DEV_ISSUER } from "./dev-issuer";
import { DiscoveryUnavailable, serverMetadata } from "./discovery";
import { introspect, IntrospectionUnavailable } from "./introspection";
import { KeySetUnavailable, remoteKeys } from "./remote-keys";
import { type Grant, parseScopes } from "./scopes";

/** Who is calling, as the token says. */
export interface Principal {
  /** `client_id`, else `azp`, else `sub`; undefined in open mode (no ownership checks). */
  clientId?: string;
  grants: Grant[];
  /** Every scope in the token (FHIRcast and others, e.g. the inspector's). */
  scopes: string[];
  /** The topic the token is bound to, if it names one. */
  topic?: string;
  /** Token expiry (ms since epoch); a lease never outlives it. */
  expiresAt?: number;
}

const EVERYTHING: Grant[] = [{ event: "*", read: true, write: true }];

/** The hub's own scope for the inspector (GET /api/inspect/{topic}, its live socket). */
export const INSPECT_SCOPE = "fhircast-hub/inspect";

let openWarned = false;

/** How far in the future a token's `iat` may lie (clock skew between its issuer and the hub). */
export const IAT_SKEW_SECONDS = 60;

/**
 * Said once per isolate start (src/worker.ts calls it at module load, where workerd runs it when it
 * starts), after applying the settings (log level, analytics): a refused or unconfigured mode and a
 * risky one at error level, open mode as a warning.
 */
export function announceAuth(env: Env): void {
  applySettings(env); // a start: the log level first, so a setting that does not parse is logged at it
  let auth: AuthConfig;
  try {
    auth = hubSettings(env).config.auth;
  } catch (e) {
    log("config.invalid", { error: e instanceof Error ? e.message : String(e) }, "error");
    return;
  }
  if (auth.misconfigured) log("auth.refused", { hubEnv: auth.hubEnv, problem: auth.misconfigured, note: "every authenticated request gets 503" }, "error");
  else if (auth.risk) log("auth.risk", { hubEnv: auth.hubEnv, risk: auth.risk }, "error");
  else if (auth.mode === "open") {
    log("auth.open", { note: "AUTH_MODE=open: anyone can drive every topic; never use this in production" }, "warn");
    openWarned = true;
  }
}

/** A 401 whose WWW-Authenticate tells the client what was wrong with its token (RFC 6750). */
export function unauthorized(description: string) {
  return fail(401, "login", description);
}

export function wwwAuthenticate(description: string): string {
  return `Bearer realm="fhircast", error="invalid_token", error_description="${description.replace(/["\\]/g, "'")}"`;
}

function bearer(request: Request): string | undefined {
  const h = request.headers.get("Authorization");
  const m = h ? /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)\s*$/i.exec(h) : null;
  return m?.[1];
}

async function keySet(env: Env, auth: AuthConfig): Promise<JWTVerifyGetKey> {
  if (auth.mode === "dev") return createLocalJWKSet(await devPublicJwks(env));
  // An explicit SMART_JWKS_URL wins over discovery.
  if (auth.jwksUrl) return remoteKeys(auth.jwksUrl, auth.jwksCacheSeconds);
  const { jwksUri } = await serverMetadata(auth.issuer!, auth.jwksCacheSeconds);
  if (!jwksUri) throw new NoEndpoint("jwks_uri");
  return remoteKeys(jwksUri, auth.jwksCacheSeconds);
}

/** The discovery document lacks an endpoint the hub needs: a configuration fault, 503. */
class NoEndpoint extends Error {
  constructor(readonly member: string) {
    super(`the authorization server's discovery document names no ${member}`);
  }
}

/** A JWS compact serialization (three parts, a JSON header); anything else is opaque. */
function isJwt(token: string): boolean {
  if (token.split(".").length !== 3) return false;
  try {
    decodeProtectedHeader(token);
    return true;
  } catch {
    return false;
  }
}

/** 503 for a fault of the hub's side of authentication: the token was not judged, the client keeps it. */
function notJudged(e: unknown, auth: AuthConfig): Result<Principal> | undefined {
  const retry = (what: string, retryAfter: number) =>
    ({ ...fail(503, "transient", `${what}; try again shortly, the token was not judged`), retryAfter });
  if (e instanceof KeySetUnavailable) {
    return retry(`the authorization server's signing keys (${auth.jwksUrl ? "SMART_JWKS_URL" : "jwks_uri from discovery"}) could not be fetched`, e.retryAfter);
  }
  if (e instanceof DiscoveryUnavailable) return retry(`the authorization server's discovery document (${e.url}) could not be read`, e.retryAfter);
  if (e instanceof IntrospectionUnavailable) return retry("the authorization server's introspection endpoint did not answer", e.retryAfter);
  if (e instanceof NoEndpoint) {
    log("auth.discovery.incomplete", { issuer: auth.issuer, missing: e.member }, "warn");
    return retry(e.message, 60);
  }
  return undefined;
}

/**
 * Verifies the request's bearer token and returns the caller: 401 for a bad token, 403 for an unbound
 * one where TOPIC_BINDING=required, 503 when misconfigured or the issuer's keys cannot be fetched.
 */
export async function authenticate(request: Request, env: Env, auth: AuthConfig): Promise<Result<Principal>> {
  if (auth.misconfigured) {
    return fail(503, "exception", `authentication is not configured: ${auth.misconfigured}; the hub refuses every request until it is`);
  }
  if (auth.mode === "open") {
    if (!openWarned) {
      log("auth.open", { note: "AUTH_MODE=open: anyone can drive every topic; never use this in production" }, "warn");
      openWarned = true;
    }
    return ok({ grants: EVERYTHING, scopes: [INSPECT_SCOPE] });
  }
  const token = bearer(request);
  if (!token) return unauthorized("missing bearer token (Authorization: Bearer <token>)");
  const now = Date.now();
  const cache = tokenCache(auth);
  const hit = cache.get(token);
  let result: Result<Principal>;
  if (hit && hit.until > now && (hit.principal.expiresAt ?? Infinity) > now) result = ok(hit.principal);
  else {
    result = await verify(token, env, auth);
    if (result.ok) remember(cache, token, result.value, now + auth.tokenCacheSeconds * 1000);
  }
  // An unbound token would be valid for every topic; SMART servers often return hub.topic only in the
  // token response, not in the token, so the hub insists on the claim (docs/operations.md).
  if (result.ok && result.value.topic === undefined && auth.topicBinding === "required") {
    return fail(403, "forbidden",
      `the access token has no "${auth.topicClaim}" claim; this hub accepts only tokens bound to one topic (TOPIC_BINDING=required)`);
  }
  return result;
}

/**
 * Tokens already verified in this isolate, for at most TOKEN_CACHE_SECONDS and never past their `exp`:
 * an application sends the same token with every request, so a signature check per request is work
 * the hot path can skip (docs/performance.md). One cache per verification setup (a token verified
 * under one is not thereby valid under another), found by value: the settings object is rebuilt
 * whenever the isolate sees another env object. Together with JWKS_CACHE_SECONDS this bounds how
 * long a key removed from the issuer's JWKS is still honoured (src/config.ts KEY_REVOCATION_MAX_SECONDS).
 */
const verified = new Map<string, Map<string, { principal: Principal; until: number }>>();
const cacheKeys = new WeakMap<AuthConfig, string>();
const VERIFIED_MAX = 1000;

function tokenCache(auth: AuthConfig): Map<string, { principal: Principal; until: number }> {
  let key = cacheKeys.get(auth);
  if (key === undefined) {
    const i = auth.introspection;
    key = JSON.stringify([auth.mode, auth.jwksUrl, auth.issuer, auth.audience, auth.algorithms, auth.topicClaim, i && [i.url, i.clientId, i.when, i.topicMember]]);
    cacheKeys.set(auth, key);
  }
  let cache = verified.get(key);
  if (!cache) verified.set(key, (cache = new Map()));
  return cache;
}

function remember(cache: Map<string, { principal: Principal; until: number }>, token: string, principal: Principal, until: number): void {
  if (until <= Date.now()) return; // TOKEN_CACHE_SECONDS=0
  if (cache.size >= VERIFIED_MAX) cache.delete(cache.keys().next().value!);
  cache.set(token, { principal, until });
}

async function verify(token: string, env: Env, auth: AuthConfig): Promise<Result<Principal>> {
  const i = auth.introspection;
  if (auth.mode === "smart" && i && (i.when === "always" || !isJwt(token))) {
    try {
      return await byIntrospection(token, auth);
    } catch (e) {
      const r = notJudged(e, auth);
      if (r) return r;
      throw e;
    }
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, await keySet(env, auth), {
      issuer: auth.mode === "dev" ? DEV_ISSUER : auth.issuer,
      audience: auth.mode === "dev" ? DEV_AUDIENCE : auth.audience,
      algorithms: auth.algorithms,
      requiredClaims: ["exp"],
    }));
  } catch (e) {
    const r = notJudged(e, auth);
    if (r) return r;
    return unauthorized(describeJoseError(e));
  }
  // jose checks iat only against a maximum token age; a token "issued" in the future is a clock or
  // issuer fault, refused beyond a small skew.
  if (typeof payload.iat === "number" && payload.iat > Date.now() / 1000 + IAT_SKEW_SECONDS) {
    return unauthorized(`token claim "iat" is in the future (more than ${IAT_SKEW_SECONDS} s ahead of the hub's clock)`);
  }
  const clientId = [payload.client_id, payload.azp, payload.sub].find((v): v is string => typeof v === "string" && v !== "");
  // Without a client, a subscription would have no owner: anyone could change or cancel it (fhircast.hl7.org/STU3/4-3-security-considerations.html).
  if (!clientId) return unauthorized("token names no client (client_id, azp or sub)");
  const topicClaim = payload[auth.topicClaim];
  // A topic claim that is present but names no topic must not leave the token unbound (fail closed).
  if (topicClaim !== undefined && (typeof topicClaim !== "string" || topicClaim === "")) {
    return unauthorized(`token claim "${auth.topicClaim}" must be a non-empty string`);
  }
  const scope = typeof payload.scope === "string" ? payload.scope : Array.isArray(payload.scp) ? payload.scp.join(" ") : "";
  return ok({
    clientId,
    grants: parseScopes(scope),
    scopes: scope.split(/\s+/).filter(Boolean),
    topic: topicClaim as string | undefined,
    expiresAt: payload.exp! * 1000,
  });
}

/**
 * An RFC 7662 answer as a caller: `active: false` is 401; the answer must name this hub's audience
 * (a token for another resource server of the same authorization server is not ours) and, when it
 * names an issuer, SMART_ISSUER. Scopes from `scope`, the client from `client_id` (else `sub`), the
 * topic from INTROSPECTION_TOPIC_MEMBER under the same rules as the JWT claim.
 */
async function byIntrospection(token: string, auth: AuthConfig): Promise<Result<Principal>> {
  const cfg = auth.introspection!;
  let url = cfg.url;
  if (!url) {
    url = (await serverMetadata(auth.issuer!, auth.jwksCacheSeconds)).introspectionEndpoint;
    if (!url) throw new NoEndpoint("introspection_endpoint (set SMART_INTROSPECTION_URL)");
  }
  const a = await introspect(token, url, cfg);
  if (!a.active) return unauthorized("token is not active (revoked, expired or unknown to the authorization server)");
  const nowS = Date.now() / 1000;
  if (typeof a.exp === "number" && a.exp <= nowS) return unauthorized("token expired");
  if (a.iss !== undefined && String(a.iss).replace(/\/+$/, "") !== auth.issuer!.replace(/\/+$/, "")) {
    return unauthorized('token claim "iss" is not acceptable');
  }
  // Only bearer tokens: a sender-constrained one (DPoP, mTLS) has a binding the hub cannot check.
  // (Servers that introspect refresh tokens may omit token_type for them; the `aud` check below still applies.)
  if (a.token_type !== undefined && String(a.token_type).toLowerCase() !== "bearer") {
    return unauthorized(`token type "${String(a.token_type)}" is not a bearer access token`);
  }
  if (a.cnf !== undefined) return unauthorized("token is sender-constrained (cnf); the hub accepts bearer tokens only");
  const aud = typeof a.aud === "string" ? [a.aud] : Array.isArray(a.aud) ? a.aud : [];
  if (!aud.includes(auth.audience)) return unauthorized('token claim "aud" is not acceptable (the introspection answer must name this hub\'s SMART_AUDIENCE)');
  const clientId = [a.client_id, a.sub].find((v): v is string => typeof v === "string" && v !== "");
  if (!clientId) return unauthorized("token names no client (client_id or sub)");
  const topic = a[cfg.topicMember];
  if (topic !== undefined && (typeof topic !== "string" || topic === "")) {
    return unauthorized(`token member "${cfg.topicMember}" must be a non-empty string`);
  }
  const scope = typeof a.scope === "string" ? a.scope : "";
  return ok({
    clientId,
    grants: parseScopes(scope),
    scopes: scope.split(/\s+/).filter(Boolean),
    topic: topic as string | undefined,
    expiresAt: typeof a.exp === "number" ? a.exp * 1000 : undefined,
  });
}

function describeJoseError(e: unknown): string {
  if (e instanceof errors.JWTExpired) return "token expired";
  if (e instanceof errors.JWTClaimValidationFailed) return `token claim "${e.claim}" is not acceptable`;
  if (e instanceof errors.JOSEAlgNotAllowed) return "token algorithm is not allowed";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "token signature is invalid";
  if (e instanceof errors.JWKSNoMatchingKey) return "token was not signed by a key of the configured issuer";
  return "token is malformed or invalid";
}

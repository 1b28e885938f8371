// Bearer token verification (FHIRcast 3.0.0 §2.2, §4.3; SMART on FHIR) with jose. Three modes:
//  smart — tokens from the configured authorization server (remote JWKS, issuer, audience);
//  dev   — tokens from the hub's own development issuer (src/auth/dev-issuer.ts), verified the same way;
//  open  — no tokens at all, for quick local experiments only (logged loudly).
import { createLocalJWKSet, createRemoteJWKSet, errors, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from "jose";
import type { AuthConfig, Env } from "../config";
import { fail, ok, type Result } from "../protocol/wire";
import { log } from "../log";
import { devPublicJwks, DEV_AUDIENCE, DEV_ISSUER } from "./dev-issuer";
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

/** Remote key sets are cached per isolate (jose caches the keys and honours cooldowns). */
const remoteSets = new Map<string, JWTVerifyGetKey>();
let openWarned = false;

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
  let set = remoteSets.get(auth.jwksUrl!);
  if (!set) {
    set = createRemoteJWKSet(new URL(auth.jwksUrl!));
    remoteSets.set(auth.jwksUrl!, set);
  }
  return set;
}

/** Verifies the request's bearer token and returns the caller, or a 401 (503 when misconfigured). */
export async function authenticate(request: Request, env: Env, auth: AuthConfig): Promise<Result<Principal>> {
  if (auth.mode === "open") {
    if (!openWarned) {
      log("auth.open", { note: "AUTH_MODE=open: anyone can drive every topic; never use this in production" }, "warn");
      openWarned = true;
    }
    return ok({ grants: EVERYTHING, scopes: [INSPECT_SCOPE] });
  }
  if (auth.mode === "smart" && auth.misconfigured) {
    return fail(503, "exception", `authentication is not configured: ${auth.misconfigured}; the hub refuses every request until it is`);
  }
  const token = bearer(request);
  if (!token) return unauthorized("missing bearer token (Authorization: Bearer <token>)");
  const now = Date.now();
  const hit = verified.get(token);
  if (hit && hit.until > now && (hit.principal.expiresAt ?? Infinity) > now) return ok(hit.principal);
  const result = await verify(token, env, auth);
  if (result.ok) remember(token, result.value, now);
  return result;
}

/**
 * Tokens already verified in this isolate, for at most VERIFIED_TTL_MS and never past their `exp`:
 * an application sends the same token with every request, so a signature check per request is work
 * the hot path can skip (docs/performance.md). A key removed from the issuer's JWKS stops being
 * trusted here within that time.
 */
const verified = new Map<string, { principal: Principal; until: number }>();
const VERIFIED_TTL_MS = 5 * 60_000;
const VERIFIED_MAX = 1000;

function remember(token: string, principal: Principal, now: number): void {
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
  verified.set(token, { principal, until: now + VERIFIED_TTL_MS });
}

async function verify(token: string, env: Env, auth: AuthConfig): Promise<Result<Principal>> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, await keySet(env, auth), {
      issuer: auth.mode === "dev" ? DEV_ISSUER : auth.issuer,
      audience: auth.mode === "dev" ? DEV_AUDIENCE : auth.audience,
      algorithms: auth.algorithms,
      requiredClaims: ["exp"],
    }));
  } catch (e) {
    return unauthorized(describeJoseError(e));
  }
  const clientId = [payload.client_id, payload.azp, payload.sub].find((v): v is string => typeof v === "string" && v !== "");
  // Without a client, a subscription would have no owner: anyone could change or cancel it (§4.3).
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

function describeJoseError(e: unknown): string {
  if (e instanceof errors.JWTExpired) return "token expired";
  if (e instanceof errors.JWTClaimValidationFailed) return `token claim "${e.claim}" is not acceptable`;
  if (e instanceof errors.JOSEAlgNotAllowed) return "token algorithm is not allowed";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "token signature is invalid";
  if (e instanceof errors.JWKSNoMatchingKey) return "token was not signed by a key of the configured issuer";
  if (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid) return "the issuer's keys could not be fetched";
  return "token is malformed or invalid";
}

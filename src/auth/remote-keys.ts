// The SMART authorization server's signing keys (SMART_JWKS_URL), fetched by jose and cached per
// isolate for JWKS_CACHE_SECONDS (docs/operations.md "Signing keys"). When the key set cannot be had
// (unreachable, an HTTP error, HTML, garbage) the problem is the hub's, not the token's: the caller
// answers 503 and the client keeps its token. Only "no key of this set signed the token" is a 401.
import { createRemoteJWKSet, customFetch, errors, type JWTVerifyGetKey, type RemoteJWKSet } from "jose";
import { log } from "../log";

/**
 * A token naming a key the cached set lacks makes jose fetch the set again, at most this often after
 * the last good fetch (jose's cooldown, 30 s by default): a rotated-in key is honoured within a second.
 */
const REFETCH_MS = 1000;
/**
 * After a failed fetch, requests are answered 503 at once for this long (never longer than the cache
 * window) instead of each waiting for a fetch of its own.
 */
export const KEYS_RETRY_SECONDS = 5;
const FETCH_TIMEOUT_MS = 5000;

/** The key set could not be fetched or parsed; `retryAfter` seconds until the hub tries again. */
export class KeySetUnavailable extends Error {
  constructor(readonly retryAfter: number) {
    super("the authorization server's key set is unavailable");
  }
}

interface Remote {
  /** For logs: the URL without query or credentials. */
  where: string;
  set: RemoteJWKSet;
  /** Until then, a stale set is not fetched again: 503 at once. */
  retryAt: number;
  retrySeconds: number;
}
const remotes = new Map<string, Remote>();

/** A non-200 answer, named by its status (jose would only say "Expected 200 OK"). */
async function fetchJwks(url: string, init: RequestInit): Promise<Response> {
  const res = await fetch(url, init);
  if (res.status === 200) return res;
  await res.body?.cancel();
  throw new Error(`HTTP ${res.status}${res.headers.get("Content-Type") ? ` (${res.headers.get("Content-Type")})` : ""}`);
}

/** The key resolver for `url`, one per URL and cache setting per isolate. */
export function remoteKeys(url: string, cacheSeconds: number): JWTVerifyGetKey {
  const id = `${cacheSeconds} ${url}`;
  let remote = remotes.get(id);
  if (!remote) {
    const parsed = new URL(url);
    remote = {
      where: `${parsed.origin}${parsed.pathname}`,
      set: createRemoteJWKSet(parsed, {
        cacheMaxAge: cacheSeconds * 1000,
        cooldownDuration: Math.min(REFETCH_MS, cacheSeconds * 1000),
        timeoutDuration: FETCH_TIMEOUT_MS,
        [customFetch]: fetchJwks,
      }),
      retryAt: 0,
      retrySeconds: Math.max(1, Math.min(KEYS_RETRY_SECONDS, cacheSeconds)),
    };
    remotes.set(id, remote);
  }
  const r = remote;
  return (header, token) => getKey(r, header, token);
}

async function getKey(r: Remote, ...args: Parameters<RemoteJWKSet>) {
  const now = Date.now();
  if (!r.set.fresh && now < r.retryAt) throw new KeySetUnavailable(Math.ceil((r.retryAt - now) / 1000));
  try {
    return await r.set(...args);
  } catch (e) {
    // About the token (its kid or alg matches no key of a good set): the caller's 401.
    if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys || e instanceof errors.JOSENotSupported) throw e;
    // About the key set: its fetch, its JSON, its shape. A stale set is never used instead.
    r.retryAt = Date.now() + r.retrySeconds * 1000;
    log("auth.jwks.unavailable", { url: r.where, reason: e instanceof Error ? e.message : String(e) }, "warn");
    throw new KeySetUnavailable(r.retrySeconds);
  }
}

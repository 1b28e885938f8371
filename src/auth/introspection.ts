// OAuth 2.0 Token Introspection (RFC 7662): the authorization server says whether a token is active
// and what it grants. Used for opaque access tokens, which only their issuer can read, or for every
// token (INTROSPECT=always). The hub authenticates with its own client credentials (HTTP Basic,
// RFC 7662 §2.1), which are secrets and never logged. An endpoint that cannot answer is the hub's
// problem, not the token's: 503, never an open door and never a 401 that would make the app drop a
// good token. Answers are cached by src/auth/tokens.ts (TOKEN_CACHE_SECONDS, never past `exp`).
import type { IntrospectionConfig } from "../config";
import { log } from "../log";

const FETCH_TIMEOUT_MS = 5000;
/** Retry-After on a failed introspection. */
export const INTROSPECTION_RETRY_SECONDS = 5;

/** The endpoint could not give an answer (unreachable, an HTTP error, not RFC 7662 JSON). */
export class IntrospectionUnavailable extends Error {
  constructor(readonly retryAfter: number) {
    super("the authorization server's introspection endpoint is unavailable");
  }
}

/** An RFC 7662 §2.2 answer: `active` and, when active, what the token grants. */
export type Introspected = { active: false } | ({ active: true } & Record<string, unknown>);

/** client_secret_basic: both parts form-urlencoded first (RFC 6749 §2.3.1). */
function basic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
  return `Basic ${btoa(`${enc(clientId)}:${enc(secret)}`)}`;
}

export async function introspect(token: string, url: string, cfg: IntrospectionConfig): Promise<Introspected> {
  const parsed = new URL(url);
  const where = `${parsed.origin}${parsed.pathname}`; // for logs: no query, no credentials
  const unavailable = (reason: string): never => {
    log("auth.introspection.unavailable", { url: where, reason }, "warn");
    throw new IntrospectionUnavailable(INTROSPECTION_RETRY_SECONDS);
  };
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: {
        Authorization: basic(cfg.clientId, cfg.clientSecret),
        "Content-Type": "application/x-www-form-urlencoded",
        Accept: "application/json",
      },
      body: new URLSearchParams({ token, token_type_hint: "access_token" }),
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
  } catch (e) {
    return unavailable(e instanceof Error ? e.message : String(e));
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    // 401/403: the hub's own credentials were refused; a configuration fault, said as such.
    return unavailable(res.status === 401 || res.status === 403
      ? `HTTP ${res.status}: the hub's INTROSPECTION_CLIENT_ID/INTROSPECTION_CLIENT_SECRET were refused`
      : `HTTP ${res.status}`);
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    return unavailable("the answer is not JSON");
  }
  if (typeof body !== "object" || body === null || typeof (body as { active?: unknown }).active !== "boolean") {
    return unavailable('the answer has no boolean "active" (not RFC 7662)');
  }
  return body as Introspected;
}

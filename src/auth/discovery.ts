// The authorization server's metadata (OpenID Connect Discovery 1.0; SMART App Launch
// `.well-known/smart-configuration`): where its keys (`jwks_uri`) and its introspection endpoint
// are, so that configuring SMART_ISSUER alone is enough. Fetched once per isolate and trusted for
// JWKS_CACHE_SECONDS; while it cannot be read the hub fails closed (503 and a warning naming the URL),
// never falling back to a stale or guessed endpoint.
import { log } from "../log";

export interface ServerMetadata {
  jwksUri?: string;
  introspectionEndpoint?: string;
}

/** The discovery documents tried, in order: the first one that answers 200 with JSON is used. */
export const WELL_KNOWN = ["/.well-known/openid-configuration", "/.well-known/smart-configuration"] as const;

/** After a failed read, requests are answered 503 at once for this long. */
const RETRY_SECONDS = 5;
const FETCH_TIMEOUT_MS = 5000;

/** The discovery document could not be read; `retryAfter` seconds until the hub tries again. */
export class DiscoveryUnavailable extends Error {
  constructor(readonly url: string, readonly retryAfter: number) {
    super(`the authorization server's metadata (${url}) could not be read`);
  }
}

interface Entry {
  metadata?: ServerMetadata;
  until: number;
  pending?: Promise<ServerMetadata>;
  retryAt: number;
}
const entries = new Map<string, Entry>();

/** `{issuer}/.well-known/...` as RFC 8414 §3 builds it for OpenID: appended to the issuer's path. */
export function wellKnownUrl(issuer: string, suffix: string): string {
  return issuer.replace(/\/+$/, "") + suffix;
}

/** The issuer's metadata, from the isolate's cache or fetched; throws DiscoveryUnavailable. */
export async function serverMetadata(issuer: string, cacheSeconds: number): Promise<ServerMetadata> {
  const id = `${cacheSeconds} ${issuer}`;
  let e = entries.get(id);
  if (!e) entries.set(id, (e = { until: 0, retryAt: 0 }));
  const now = Date.now();
  if (e.metadata && now < e.until) return e.metadata;
  const where = wellKnownUrl(issuer, WELL_KNOWN[0]);
  if (now < e.retryAt) throw new DiscoveryUnavailable(where, Math.ceil((e.retryAt - now) / 1000));
  const entry = e;
  // One fetch at a time per issuer: a burst of requests after expiry waits for the same answer.
  entry.pending ??= read(issuer).then(
    (metadata) => {
      entry.metadata = metadata;
      entry.until = Date.now() + cacheSeconds * 1000;
      entry.pending = undefined;
      return metadata;
    },
    (err: unknown) => {
      entry.metadata = undefined; // never a stale document
      entry.retryAt = Date.now() + Math.max(1, Math.min(RETRY_SECONDS, cacheSeconds)) * 1000;
      entry.pending = undefined;
      log("auth.discovery.unavailable", { url: where, reason: err instanceof Error ? err.message : String(err) }, "warn");
      throw new DiscoveryUnavailable(where, Math.max(1, Math.min(RETRY_SECONDS, cacheSeconds)));
    },
  );
  return entry.pending;
}

async function read(issuer: string): Promise<ServerMetadata> {
  const reasons: string[] = [];
  for (const suffix of WELL_KNOWN) {
    const url = wellKnownUrl(issuer, suffix);
    try {
      const res = await fetch(url, { headers: { Accept: "application/json" }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (res.status !== 200) {
        await res.body?.cancel();
        reasons.push(`${suffix}: HTTP ${res.status}`);
        continue;
      }
      const doc = (await res.json()) as Record<string, unknown>;
      if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new Error("not a JSON object");
      // OpenID Connect Discovery fhircast.hl7.org/STU3/4-3-security-considerations.html: the document must name the issuer it was asked for, or another
      // server's keys would be trusted for this issuer's tokens.
      if (doc.issuer !== undefined && String(doc.issuer).replace(/\/+$/, "") !== issuer.replace(/\/+$/, "")) {
        throw new Error(`it names another issuer ("${String(doc.issuer)}")`);
      }
      const metadata: ServerMetadata = { jwksUri: httpUrlOrUndefined(doc.jwks_uri), introspectionEndpoint: httpUrlOrUndefined(doc.introspection_endpoint) };
      if (!metadata.jwksUri && !metadata.introspectionEndpoint) throw new Error("it names neither jwks_uri nor introspection_endpoint");
      return metadata;
    } catch (err) {
      reasons.push(`${suffix}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(reasons.join("; "));
}

function httpUrlOrUndefined(v: unknown): string | undefined {
  if (typeof v !== "string") return undefined;
  try {
    return ["https:", "http:"].includes(new URL(v).protocol) ? v : undefined;
  } catch {
    return undefined;
  }
}

// Who may do what: failure responses in each API's style, topic binding, per-client rate limits, the
// hub's public origin, and the one place a topic name becomes a Durable Object stub.
import type { Principal } from "../auth/tokens";
import { wwwAuthenticate } from "../auth/tokens";
import { hubSettings } from "../config";
import type { Env } from "../env";
import { type Failure, fail } from "../fhircast/wire";
import { jsonResponse, outcomeResponse, textResponse } from "./responses";

/**
 * How an endpoint answers a refusal (docs/operations.md "Error responses"): plain text for
 * subscription requests (fhircast.hl7.org/STU3/2-4-Subscribing.html), an OperationOutcome for the rest of the FHIRcast API, an OAuth
 * error body for the token endpoint.
 */
export type ErrorStyle = "text" | "outcome" | "oauth";

/** A failure as the caller's API speaks it. */
export function failure(f: Failure, style: ErrorStyle): Response {
  const headers: Record<string, string> = {};
  if (f.status === 401) headers["WWW-Authenticate"] = wwwAuthenticate(f.detail);
  if (f.retryAfter) headers["Retry-After"] = String(f.retryAfter);
  if (style === "text") return textResponse(f.status, f.detail, headers);
  if (style === "oauth") return jsonResponse(f.status, { error: f.code, error_description: f.detail }, headers);
  return outcomeResponse(f.status, f.code, f.detail, headers);
}

/**
 * A handler that answers with a Response, or refuses with a Failure value (`return who` for a token
 * that did not verify, `return fail(403, …)`): its endpoint's error style, declared once here, turns
 * every refusal into the response.
 */
export function errorsAs<A extends unknown[]>(
  style: ErrorStyle,
  handler: (...args: A) => Response | Failure | Promise<Response | Failure>,
): (...args: A) => Promise<Response> {
  return async (...args) => {
    const answer = await handler(...args);
    return answer instanceof Response ? answer : failure(answer, style);
  };
}

/** A token bound to a topic may be used for that topic only. */
export function checkTopic(p: Principal, topic: string): Failure | undefined {
  if (p.topic !== undefined && p.topic !== topic) return fail(403, "forbidden", "the access token is bound to another hub.topic");
  return undefined;
}

/** Per-client rate limit through the Workers rate limiting binding, when one is configured. */
export async function rateLimit(env: Env, request: Request, p: Principal, action: "subscribe" | "publish"): Promise<Failure | undefined> {
  if (!env.RATE_LIMITER) return undefined;
  const who = p.clientId ?? request.headers.get("CF-Connecting-IP") ?? "anonymous";
  const { success } = await env.RATE_LIMITER.limit({ key: `${action}:${who}` });
  if (success) return undefined;
  return { ...fail(429, "throttled", `too many ${action} requests from this client; slow down`), retryAfter: 60 };
}

/** The hub's public origin: PUBLIC_URL, else the origin the request was sent to (not its Origin header). */
export function hubOrigin(request: Request, env: Env): string {
  return hubSettings(env).config.publicUrl ?? new URL(request.url).origin;
}

/**
 * The topic's Durable Object, placed per DO_JURISDICTION / DO_LOCATION_HINT. The only place a topic
 * name becomes an object id: a jurisdiction changes every id (docs/operations.md "Data placement").
 * WebSocket endpoints carry the id itself and resolve it with the top-level namespace's
 * idFromString, which accepts ids of any jurisdiction.
 */
export function topicStub(env: Env, topic: string) {
  const { jurisdiction, locationHint } = hubSettings(env).config.placement;
  const ns = jurisdiction ? env.TOPIC.jurisdiction(jurisdiction) : env.TOPIC;
  return ns.get(ns.idFromName(topic), locationHint ? { locationHint } : undefined);
}

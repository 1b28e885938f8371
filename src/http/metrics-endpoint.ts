// GET /metrics (docs/operations.md "Metrics"): the Prometheus text format behind a bearer secret.
import type { IRequest } from "itty-router";
import { hubSettings } from "../config";
import type { Env } from "../env";
import { prometheusText } from "../metrics";
import { textResponse } from "./responses";

/**
 * GET /metrics: the Prometheus text format (src/metrics.ts), for self-hosted builds (one isolate holds
 * the whole hub's numbers there). Needs `Authorization: Bearer <METRICS_TOKEN>`; without that
 * setting the endpoint does not exist (404).
 */
export async function metrics(request: IRequest, env: Env): Promise<Response> {
  const expected = hubSettings(env).config.metricsToken;
  if (!expected) return textResponse(404, "no route for GET /metrics");
  const given = /^Bearer\s+(.+)$/i.exec(request.headers.get("Authorization") ?? "")?.[1]?.trim();
  if (!given || !(await sameSecret(given, expected))) {
    return textResponse(401, "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>", { "WWW-Authenticate": 'Bearer realm="metrics"' });
  }
  return new Response(prometheusText(), {
    status: 200,
    headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Cache-Control": "no-store" },
  });
}

/** Compares two secrets in constant time (their SHA-256 digests, so lengths never leak). */
export async function sameSecret(a: string, b: string): Promise<boolean> {
  const digest = async (s: string) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  const [da, db] = await Promise.all([digest(a), digest(b)]);
  return crypto.subtle.timingSafeEqual(da, db);
}

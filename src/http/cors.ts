// CORS and the Origin allow-list (fhircast.hl7.org/STU3/4-3-security-considerations.html: Origin is not a credential, only a browser
// filter). Used by the router's before and finally stages.
import type { IRequest } from "itty-router";
import { hubSettings } from "../config";
import type { Env } from "../env";
import { textResponse } from "./responses";
import { hubOrigin } from "./access";

/** No Origin (not a browser), no allow-list, a listed origin, or the hub's own pages (the inspector). */
export function originAllowed(request: Request, env: Env): boolean {
  const o = request.headers.get("Origin");
  const allowed = hubSettings(env).config.allowedOrigins;
  return o === null || allowed.length === 0 || allowed.includes(o) || o === hubOrigin(request, env);
}

/** Refuses browser requests from origins outside ALLOWED_ORIGINS; answers CORS preflights. */
export function guardOrigin(request: IRequest, env: Env): Response | undefined {
  if (!originAllowed(request, env)) return textResponse(403, `Origin ${request.headers.get("Origin")} is not allowed (ALLOWED_ORIGINS)`);
  if (request.method === "OPTIONS") {
    return new Response(null, {
      status: 204,
      headers: {
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers") ?? "Authorization, Content-Type",
        "Access-Control-Max-Age": "600",
      },
    });
  }
  return undefined;
}

export function corsify(response: Response, request: IRequest, env: Env): Response {
  if (response.status === 101 || response.headers.has("Access-Control-Allow-Origin")) return response;
  const o = request.headers.get("Origin");
  const allowOrigin = hubSettings(env).config.allowedOrigins.length === 0 ? "*" : o;
  if (!allowOrigin) return response;
  // The hub's own responses have mutable headers; only an immutable one (e.g. a fetched asset) is copied.
  let r = response;
  try {
    r.headers.set("Access-Control-Allow-Origin", allowOrigin);
  } catch {
    r = new Response(response.body, response);
    r.headers.set("Access-Control-Allow-Origin", allowOrigin);
  }
  r.headers.set("Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate");
  if (allowOrigin !== "*") r.headers.append("Vary", "Origin");
  return r;
}

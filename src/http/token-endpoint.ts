// POST /auth/token and GET /auth/jwks: the development token issuer's endpoints (AUTH_MODE=dev only;
// src/auth/dev-issuer.ts).
import type { IRequest } from "itty-router";
import { devPublicJwks, issueToken } from "../auth/dev-issuer";
import { hubSettings } from "../config";
import type { Env } from "../env";
import { HUB_PATH } from "../endpoint";
import { jsonResponse, textResponse } from "./responses";
import { hubOrigin } from "./access";
import { bodyKind, readBody } from "./body";

/** POST /auth/token: the development issuer's client_credentials grant (AUTH_MODE=dev only). */
export async function token(request: IRequest, env: Env): Promise<Response> {
  const { config } = hubSettings(env);
  if (config.auth.mode !== "dev") return jsonResponse(404, { error: "invalid_request", error_description: "the development token issuer is off (AUTH_MODE is not dev)" });
  if (bodyKind(request) !== "form") return jsonResponse(400, { error: "invalid_request", error_description: "Content-Type must be application/x-www-form-urlencoded" });
  const body = await readBody(request, 16_384);
  if (!body.ok) return jsonResponse(body.status, { error: "invalid_request", error_description: body.detail });
  const issued = await issueToken(new URLSearchParams(body.value), env, config.auth, `${hubOrigin(request, env)}${HUB_PATH}`);
  if (!issued.ok) return jsonResponse(issued.status, { error: issued.code, error_description: issued.detail });
  return jsonResponse(200, issued.value, { "Cache-Control": "no-store" });
}

/** GET /auth/jwks: the development issuer's public key (AUTH_MODE=dev only). */
export async function jwks(_request: IRequest, env: Env): Promise<Response> {
  if (hubSettings(env).config.auth.mode !== "dev") return textResponse(404, "the development token issuer is off");
  return jsonResponse(200, await devPublicJwks(env));
}

// The inspector's API (docs/inspector.md): GET /api/inspect/{topic} and its live WebSocket, behind the
// hub's own inspect scope and the token's topic binding. Refusals are returned as Failures; the route
// table (src/worker.ts) answers them as OperationOutcomes.
import type { IRequest } from "itty-router";
import { authenticate, INSPECT_SCOPE } from "../auth/tokens";
import { hubSettings } from "../config";
import type { Env } from "../env";
import { jsonResponse, upgradeRequired } from "./responses";
import { type Failure, fail } from "../fhircast/wire";
import { INSPECTOR_EXPIRES_HEADER, INSPECTOR_PATH } from "../topic";
import { checkTopic, topicStub } from "./access";
import { pathTopic } from "./body";

/**
 * The inspector (GET /api/inspect/{topic} and its live socket /api/inspect/{topic}/live): needs the
 * hub's own inspect scope (any token in open mode) and respects topic binding; browsers cannot set
 * headers on a WebSocket, so the live socket also takes the token as `?access_token=`.
 */
export async function inspectorAccess(request: IRequest, env: Env): Promise<Failure | { ok: true; topic: string; expiresAt?: number }> {
  const url = new URL(request.url);
  const fromQuery = url.searchParams.get("access_token");
  const authRequest = fromQuery && !request.headers.has("Authorization")
    ? new Request(request.url, { headers: { Authorization: `Bearer ${fromQuery}` } })
    : request;
  const who = await authenticate(authRequest, env, hubSettings(env).config.auth);
  if (!who.ok) return who;
  const decoded = pathTopic(request);
  if (!decoded.ok) return decoded;
  const topic = decoded.value;
  const denied =
    checkTopic(who.value, topic) ??
    (who.value.scopes.includes(INSPECT_SCOPE) ? undefined : fail(403, "forbidden", `the inspector needs the ${INSPECT_SCOPE} scope`));
  if (denied) return denied;
  return { ok: true, topic, expiresAt: who.value.expiresAt };
}

export async function inspect(request: IRequest, env: Env): Promise<Response | Failure> {
  const access = await inspectorAccess(request, env);
  if (!access.ok) return access;
  return jsonResponse(200, await topicStub(env, access.topic).inspect(), { "Cache-Control": "no-store" });
}

export async function inspectLive(request: IRequest, env: Env): Promise<Response | Failure> {
  const notUpgrade = upgradeRequired(request);
  if (notUpgrade) return notUpgrade;
  const access = await inspectorAccess(request, env);
  if (!access.ok) return access;
  // The live socket ends when the token does: the topic learns when from this header, which is always
  // the Worker's own (a caller's header of that name is replaced or removed).
  const forward = new Request(`https://topic${INSPECTOR_PATH}`, request);
  if (access.expiresAt !== undefined) forward.headers.set(INSPECTOR_EXPIRES_HEADER, String(access.expiresAt));
  else forward.headers.delete(INSPECTOR_EXPIRES_HEADER);
  return topicStub(env, access.topic).fetch(forward);
}

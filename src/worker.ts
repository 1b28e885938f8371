// The edge Worker: routes FHIRcast HTTP requests, validates everything that needs no state (shape,
// catalog, size), and hands typed requests to the topic's Durable Object. It never touches storage.
import { env as startEnv } from "cloudflare:workers";
import { Router, type IRequest } from "itty-router";
import { allows } from "./auth/scopes";
import { announceAuth, authenticate } from "./auth/tokens";
import { devPublicJwks } from "./auth/dev-issuer";
import { applySettings, hubSettings } from "./config";
import type { Env } from "./env";
import { HUB_PATH, parseEndpoint, WS_PATH_PREFIX } from "./endpoint";
import { checkTopic, failure, origin, rateLimit, topicStub } from "./http/access";
import { bodyKind, looksLikeJson, parseJson, pathTopic, readBody } from "./http/body";
import { corsify, guardOrigin } from "./http/cors";
import { inspect, inspectLive } from "./http/inspector";
import { methodNotAllowed, notFound } from "./http/fallback";
import { metrics } from "./http/metrics-endpoint";
import { note, requestLog, startTimer } from "./http/request-log";
import { token } from "./http/token-endpoint";
import { log } from "./log";
import { observePublish } from "./metrics";
import { jsonResponse, outcomeResponse, textResponse } from "./protocol/errors";
import { validatePublish } from "./protocol/publish";
import { collectParams, parseSubscription, type SubscriptionRequest } from "./protocol/subscription";
import { fail, type Result, type SubscriptionResponse, type WellKnown } from "./protocol/wire";

export { Topic } from "./topic";
export { DevIssuer } from "./auth/dev-issuer";

// At every start (workerd evaluates this module when it starts; the edge, per isolate): a refused,
// unconfigured or risky authentication mode is said at error level before any request arrives.
announceAuth(startEnv as Env);

// ---- handlers ------------------------------------------------------------------------------------

/** `.well-known/fhircast-configuration` (§2.7). */
function wellKnown(env: Env): Response {
  const body: WellKnown = {
    eventsSupported: hubSettings(env).catalog.names(),
    websocketSupport: true,
    fhircastVersion: "3.0.0",
    fhirVersion: "R4",
    getCurrentSupport: true,
    capabilities: { supportsGetCurrentContext: true, supportsNonCurrentContextUpdates: true },
  };
  return jsonResponse(200, body);
}

/** POST {hub.url}: a subscription request (form, or JSON with hub.mode) or a publish (JSON). */
async function postHub(request: IRequest, env: Env): Promise<Response> {
  const { config } = hubSettings(env);
  const kind = bodyKind(request);
  const body = await readBody(request, config.maxBodyBytes);
  if (kind === "form") {
    if (!body.ok) return textResponse(body.status, body.detail);
    // `curl -d '{…}'` sends JSON as a form: say what is wrong rather than "hub.channel.type is required".
    if (looksLikeJson(body.value)) {
      return textResponse(415, "the body is JSON but Content-Type is application/x-www-form-urlencoded: publishing needs Content-Type: application/json (or application/fhir+json)");
    }
    return subscription(request, env, new URLSearchParams(body.value).entries());
  }
  if (kind === "json") {
    if (!body.ok) return outcomeResponse(body.status, body.code, body.detail);
    const json = parseJson(body.value);
    if (!json.ok) return outcomeResponse(json.status, json.code, json.detail);
    const v = json.value;
    // Leniency for clients that subscribe with JSON (Medplum, OHIF): hub.mode and no event.
    if (typeof v === "object" && v !== null && !Array.isArray(v) && "hub.mode" in v && !("event" in v)) {
      return subscription(request, env, Object.entries(v));
    }
    return publish(request, env, v);
  }
  // Neither a subscription (form) nor a publish: an API refusal, so an OperationOutcome.
  return outcomeResponse(415, "not-supported",
    "Content-Type must be application/x-www-form-urlencoded (subscribe, unsubscribe) or application/json / application/fhir+json (publish)");
}

async function subscription(request: Request, env: Env, pairs: Iterable<[string, unknown]>): Promise<Response> {
  const { config, catalog } = hubSettings(env);
  const who = await authenticate(request, env, config.auth);
  if (!who.ok) return failure(who, "text");
  const p = who.value;
  const params = collectParams(pairs);
  if (!params.ok) return textResponse(params.status, params.detail);
  const parsed = parseSubscription(params.value, catalog, config);
  if (!parsed.ok) return textResponse(parsed.status, parsed.detail);
  const req: SubscriptionRequest = parsed.value;
  note(request, { topic: req.topic, mode: req.mode });
  const denied = checkTopic(p, req.topic) ?? (await rateLimit(env, request, p, "subscribe"));
  if (denied) return failure(denied, "text");
  const stub = topicStub(env, req.topic);
  if (req.endpoint) {
    // The endpoint must belong to this topic's object: never let one topic touch another's subscriptions.
    const ep = parseEndpoint(req.endpoint);
    if (!ep || ep.doId !== stub.id.toString()) {
      return textResponse(404, "hub.channel.endpoint does not name an active subscription of this topic");
    }
  }
  let result: Result<{ endpoint: string }>;
  if (req.mode === "subscribe") {
    // Grant only the events the token may read (§2.2); the confirmation lists what was granted.
    const events = req.events.filter((e) => allows(p.grants, e, "read"));
    if (events.length === 0) return textResponse(403, `the access token has no read scope (fhircast/<Event>.read) for ${req.events.join(", ")}`);
    // The lease never outlives the token (§2.1 SHALL).
    let leaseSeconds = req.leaseSeconds;
    if (p.expiresAt !== undefined) leaseSeconds = Math.min(leaseSeconds, Math.floor((p.expiresAt - Date.now()) / 1000));
    if (leaseSeconds < 1) return failure(fail(401, "login", "token expires too soon for a subscription"), "text");
    result = await stub.subscribe({ ...req, events, leaseSeconds, origin: origin(request, env), clientId: p.clientId, tokenExpiresAt: p.expiresAt });
  } else {
    result = await stub.unsubscribe(req.endpoint, p.clientId);
  }
  if (!result.ok) return failure(result, "text");
  const response: SubscriptionResponse = { "hub.channel.endpoint": result.value.endpoint };
  return jsonResponse(202, response);
}

async function publish(request: Request, env: Env, body: unknown, pathTopic?: string): Promise<Response> {
  const { config, catalog } = hubSettings(env);
  const who = await authenticate(request, env, config.auth);
  if (!who.ok) return failure(who, "outcome");
  const req = validatePublish(body, catalog, pathTopic);
  if (!req.ok) return failure(req, "outcome");
  const topic = req.value.notification.event["hub.topic"];
  note(request, { topic, event: req.value.eventName });
  const denied =
    checkTopic(who.value, topic) ??
    (allows(who.value.grants, req.value.eventName, "write")
      ? undefined
      : fail(403, "forbidden", `the access token has no write scope for ${req.value.eventName} (fhircast/${req.value.eventName}.write)`)) ??
    (await rateLimit(env, request, who.value, "publish"));
  if (denied) return failure(denied, "outcome");
  const started = Date.now();
  const result = await topicStub(env, topic).publish({ ...req.value, notification: JSON.stringify(req.value.notification) });
  if (!result.ok) return failure(result, "outcome");
  observePublish(Date.now() - started);
  return new Response(null, { status: 202 });
}

/** POST {hub.url}/{topic}: publish the STU1/STU2 way (requirements A1). */
async function postTopic(request: IRequest, env: Env): Promise<Response> {
  const { config } = hubSettings(env);
  if (bodyKind(request) !== "json") {
    return outcomeResponse(415, "not-supported", "Content-Type must be application/json or application/fhir+json");
  }
  const body = await readBody(request, config.maxBodyBytes);
  if (!body.ok) return outcomeResponse(body.status, body.code, body.detail);
  const json = parseJson(body.value);
  if (!json.ok) return outcomeResponse(json.status, json.code, json.detail);
  const topic = pathTopic(request);
  if (!topic.ok) return outcomeResponse(topic.status, topic.code, topic.detail);
  return publish(request, env, json.value, topic.value);
}

/** GET {hub.url}/{topic}: current context (§2.9), if the token may read the current anchor's open event. */
async function getContext(request: IRequest, env: Env): Promise<Response> {
  const who = await authenticate(request, env, hubSettings(env).config.auth);
  if (!who.ok) return failure(who, "outcome");
  const decoded = pathTopic(request);
  if (!decoded.ok) return outcomeResponse(decoded.status, decoded.code, decoded.detail);
  const topic = decoded.value;
  note(request, { topic });
  const denied = checkTopic(who.value, topic);
  if (denied) return failure(denied, "outcome");
  const { context, eventName } = await topicStub(env, topic).currentContext();
  if (eventName && !allows(who.value.grants, eventName, "read")) {
    return outcomeResponse(403, "forbidden", `the access token has no read scope for ${eventName}, the current context's event`);
  }
  return jsonResponse(200, context);
}

/** The WebSocket endpoint: forwarded to the topic object named in the URL, or denied here. */
async function connect(request: IRequest, env: Env): Promise<Response> {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return textResponse(426, "this endpoint takes a WebSocket upgrade", { Upgrade: "websocket" });
  }
  const ep = parseEndpoint(new URL(request.url).pathname);
  let id: DurableObjectId | undefined;
  try {
    id = ep ? env.TOPIC.idFromString(ep.doId) : undefined;
  } catch {
    id = undefined; // not an id of this namespace
  }
  if (!id) return denyHere("unknown or expired endpoint");
  return env.TOPIC.get(id).fetch(request);
}

/** Denial for an endpoint that names no topic object: no topic is known, so hub.topic is empty. */
function denyHere(reason: string): Response {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  server.send(JSON.stringify({ "hub.mode": "denied", "hub.topic": "", "hub.events": "", "hub.reason": reason }));
  server.close(1008, reason);
  log("connect.denied", { reason });
  return new Response(null, { status: 101, webSocket: client });
}

// ---- router --------------------------------------------------------------------------------------

/**
 * An unexpected error (a bug, a setting that does not parse): logged at level error, so it shows
 * under LOG_LEVEL=warn too, and answered with a 500 that says nothing about the hub's insides.
 */
function internalError(err: unknown): Response {
  log("error", { error: err instanceof Error ? err.message : String(err) }, "error");
  return outcomeResponse(500, "exception", "internal error");
}

/** The stages around every request's handler, run by the router and by `hubPost` alike. */
const BEFORE = [startTimer, guardOrigin] as const;
const FINALLY = [requestLog, corsify] as const;

const router = Router<IRequest, [Env, ExecutionContext]>({
  before: [...BEFORE],
  catch: internalError,
  finally: [...FINALLY],
});

router
  .get("/", (req, env) =>
    jsonResponse(200, {
      name: "FHIRcast Hub",
      "hub.url": `${origin(req, env)}${HUB_PATH}`,
      wellKnown: `${origin(req, env)}${HUB_PATH}/.well-known/fhircast-configuration`,
    }))
  .get("/health", () => jsonResponse(200, { status: "ok" }))
  .get("/metrics", metrics)
  .post("/auth/token", token)
  .get("/auth/jwks", async (_req, env) =>
    hubSettings(env).config.auth.mode === "dev" ? jsonResponse(200, await devPublicJwks(env)) : textResponse(404, "the development token issuer is off"))
  .get("/.well-known/fhircast-configuration", (_req, env) => wellKnown(env))
  .get(`${HUB_PATH}/.well-known/fhircast-configuration`, (_req, env) => wellKnown(env))
  .post(HUB_PATH, postHub)
  .post(`${HUB_PATH}/:topic`, postTopic)
  .get(`${HUB_PATH}/:topic`, getContext)
  .get("/api/inspect/:topic", inspect)
  .get("/api/inspect/:topic/live", inspectLive)
  .get(`${WS_PATH_PREFIX}*`, connect);

/** Every path above with the methods it takes: any other method gets 405 and `Allow` (OPTIONS is a preflight). */
const ALLOWED: [path: string, methods: string][] = [
  ["/", "GET"], ["/health", "GET"], ["/metrics", "GET"], ["/auth/token", "POST"], ["/auth/jwks", "GET"],
  ["/.well-known/fhircast-configuration", "GET"], [`${HUB_PATH}/.well-known/fhircast-configuration`, "GET"],
  [HUB_PATH, "POST"], [`${HUB_PATH}/:topic`, "GET, POST"],
  ["/api/inspect/:topic", "GET"], ["/api/inspect/:topic/live", "GET"], [`${WS_PATH_PREFIX}*`, "GET"],
];
for (const [path, methods] of ALLOWED) router.all(path, methodNotAllowed(methods));
router.all("*", notFound);

/**
 * Whether the request is exactly `POST {hub.url}`, told from the URL text: every publish and every
 * subscription takes this route, and going through the router (which parses the URL, its query and
 * every route's pattern, with an await per stage) cost about 15 µs of the Worker's CPU per request
 * (docs/performance.md). Anything else, a trailing slash or a query included, goes to the router.
 */
function isHubPost(request: Request): boolean {
  if (request.method !== "POST") return false;
  const url = request.url;
  const path = url.indexOf("/", url.indexOf("//") + 2);
  return path > 0 && url.length - path === HUB_PATH.length && url.endsWith(HUB_PATH);
}

/** `POST {hub.url}` through the router's stages and error handling, without the router. */
async function hubPost(request: IRequest, env: Env): Promise<Response> {
  request.route = HUB_PATH;
  let response: Response | undefined;
  try {
    for (const stage of BEFORE) if ((response = stage(request, env))) break;
    response ??= await postHub(request, env);
  } catch (err) {
    response = internalError(err);
  }
  try {
    for (const stage of FINALLY) response = (await stage(response, request, env)) ?? response;
    return response;
  } catch (err) {
    return internalError(err);
  }
}

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext) {
    applySettings(env);
    return isHubPost(request) ? hubPost(request as IRequest, env) : router.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;

// The edge Worker: routes FHIRcast HTTP requests, validates everything that needs no state (shape,
// catalog, size), and hands typed requests to the topic's Durable Object. It never touches storage.
import { Router, type IRequest } from "itty-router";
import { authenticate, INSPECT_SCOPE, type Principal, wwwAuthenticate } from "./auth/tokens";
import { allows } from "./auth/scopes";
import { devPublicJwks, issueToken } from "./auth/dev-issuer";
import { hubSettings, type Env } from "./config";
import { HUB_PATH, parseEndpoint, WS_PATH_PREFIX } from "./endpoint";
import { jsonResponse, outcomeResponse, textResponse } from "./protocol/errors";
import { validatePublish } from "./protocol/publish";
import { collectParams, parseSubscription, type SubscriptionRequest } from "./protocol/subscription";
import { type Failure, fail, ok, type Result, type SubscriptionResponse, type WellKnown } from "./protocol/wire";
import { log, topicHash } from "./log";
import { observePublish, prometheusText } from "./metrics";

export { Topic } from "./topic";
import { INSPECTOR_PATH } from "./topic";
export { DevIssuer } from "./auth/dev-issuer";

// ---- CORS and the Origin allow-list (§4.3: Origin is not a credential, only a browser filter) --------

/** No Origin (not a browser), no allow-list, a listed origin, or the hub's own pages (the inspector). */
function originAllowed(request: Request, env: Env): boolean {
  const o = request.headers.get("Origin");
  const allowed = hubSettings(env).config.allowedOrigins;
  return o === null || allowed.length === 0 || allowed.includes(o) || o === origin(request, env);
}

/** Refuses browser requests from origins outside ALLOWED_ORIGINS; answers CORS preflights. */
function guardOrigin(request: IRequest, env: Env): Response | undefined {
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

function corsify(response: Response, request: IRequest, env: Env): Response {
  if (response.status === 101 || response.headers.has("Access-Control-Allow-Origin")) return response;
  const o = request.headers.get("Origin");
  const allowOrigin = hubSettings(env).config.allowedOrigins.length === 0 ? "*" : o;
  if (!allowOrigin) return response;
  const r = new Response(response.body, response);
  r.headers.set("Access-Control-Allow-Origin", allowOrigin);
  r.headers.set("Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate");
  if (allowOrigin !== "*") r.headers.append("Vary", "Origin");
  return r;
}

// ---- authentication, topic binding, scopes, rate limits (§2.2, §4.3) -------------------------------

/** A failure as the caller's API speaks it: plain text for subscriptions, OperationOutcome otherwise. */
function failure(f: Failure, style: "text" | "outcome"): Response {
  const headers: Record<string, string> = {};
  if (f.status === 401) headers["WWW-Authenticate"] = wwwAuthenticate(f.detail);
  if (f.retryAfter) headers["Retry-After"] = String(f.retryAfter);
  return style === "text" ? textResponse(f.status, f.detail, headers) : outcomeResponse(f.status, f.code, f.detail, headers);
}

/** A token bound to a topic may be used for that topic only. */
function checkTopic(p: Principal, topic: string): Failure | undefined {
  if (p.topic !== undefined && p.topic !== topic) return fail(403, "forbidden", "the access token is bound to another hub.topic");
  return undefined;
}

/** Per-client rate limit through the Workers rate limiting binding, when one is configured. */
async function rateLimit(env: Env, request: Request, p: Principal, action: "subscribe" | "publish"): Promise<Failure | undefined> {
  if (!env.RATE_LIMITER) return undefined;
  const who = p.clientId ?? request.headers.get("CF-Connecting-IP") ?? "anonymous";
  const { success } = await env.RATE_LIMITER.limit({ key: `${action}:${who}` });
  if (success) return undefined;
  return { ...fail(429, "throttled", `too many ${action} requests from this client; slow down`), retryAfter: 60 };
}

function origin(request: Request, env: Env): string {
  return hubSettings(env).config.publicUrl ?? new URL(request.url).origin;
}

type BodyKind = "form" | "json" | "other";
function bodyKind(request: Request): BodyKind {
  const type = (request.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "application/x-www-form-urlencoded") return "form";
  if (type === "application/json" || type === "application/fhir+json") return "json";
  return "other";
}

/** Reads the body as text, refusing more than `max` bytes (413) without buffering past the limit. */
async function readBody(request: Request, max: number): Promise<Result<string>> {
  const declared = Number(request.headers.get("Content-Length") ?? "0");
  const tooLarge = () => fail(413, "too-long", `request body is larger than this hub's limit of ${max} bytes`);
  if (declared > max) return tooLarge();
  if (!request.body) return ok("");
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      return tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  try {
    return ok(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    return fail(400, "invalid", "request body is not valid UTF-8");
  }
}

function parseJson(text: string): Result<unknown> {
  try {
    return ok(JSON.parse(text) as unknown);
  } catch (e) {
    return fail(400, "invalid", `request body is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * The topic's Durable Object, placed per DO_JURISDICTION / DO_LOCATION_HINT. The only place a topic
 * name becomes an object id: a jurisdiction changes every id (docs/operations.md "Data placement").
 * WebSocket endpoints carry the id itself and resolve it with the top-level namespace's
 * idFromString, which accepts ids of any jurisdiction.
 */
function topicStub(env: Env, topic: string) {
  const { jurisdiction, locationHint } = hubSettings(env).config.placement;
  const ns = jurisdiction ? env.TOPIC.jurisdiction(jurisdiction) : env.TOPIC;
  return ns.get(ns.idFromName(topic), locationHint ? { locationHint } : undefined);
}

// ---- request log: one JSON line per request, with a topic hash, never a topic, path or token -------

interface RequestNote {
  started: number;
  topic?: string;
  event?: string;
  mode?: string;
}
const notes = new WeakMap<Request, RequestNote>();

/** Remembers what the request log line should say about this request (the topic is hashed there). */
function note(request: Request, fields: Omit<RequestNote, "started">): void {
  const n = notes.get(request);
  if (n) Object.assign(n, fields);
}

function startTimer(request: IRequest): undefined {
  notes.set(request, { started: Date.now() });
  return undefined;
}

/** `request` log line: route pattern (not the path: it can hold a topic or an endpoint secret), status, ms. */
async function requestLog(response: Response | undefined, request: IRequest): Promise<undefined> {
  const n = notes.get(request);
  const route = request.route ?? "none";
  if (!n || route === "/health" || route === "/metrics" || request.method === "OPTIONS") return undefined;
  log(
    "request",
    {
      method: request.method,
      route,
      status: response?.status ?? 500,
      ms: Date.now() - n.started,
      topic: n.topic === undefined ? undefined : await topicHash(n.topic),
      event: n.event,
      mode: n.mode,
    },
    (response?.status ?? 500) >= 500 ? "warn" : "info",
  );
  return undefined;
}

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
  return textResponse(415,
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
    result = await stub.subscribe({ ...req, events, leaseSeconds, origin: origin(request, env), clientId: p.clientId });
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
  const result = await topicStub(env, topic).publish(req.value);
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

/** The `{topic}` path segment, percent-decoded; a malformed escape is the client's error (400), not a 500. */
function pathTopic(request: IRequest): Result<string> {
  try {
    return ok(decodeURIComponent(request.params.topic!));
  } catch {
    return fail(400, "invalid", "the topic in the URL is not valid percent-encoding");
  }
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

/**
 * The inspector (GET /api/inspect/{topic} and its live socket /api/inspect/{topic}/live): needs the
 * hub's own inspect scope (any token in open mode) and respects topic binding; browsers cannot set
 * headers on a WebSocket, so the live socket also takes the token as `?access_token=`.
 */
async function inspectorAccess(request: IRequest, env: Env): Promise<Response | { topic: string }> {
  const url = new URL(request.url);
  const fromQuery = url.searchParams.get("access_token");
  const authRequest = fromQuery && !request.headers.has("Authorization")
    ? new Request(request.url, { headers: { Authorization: `Bearer ${fromQuery}` } })
    : request;
  const who = await authenticate(authRequest, env, hubSettings(env).config.auth);
  if (!who.ok) return failure(who, "outcome");
  const decoded = pathTopic(request);
  if (!decoded.ok) return failure(decoded, "outcome");
  const topic = decoded.value;
  const denied =
    checkTopic(who.value, topic) ??
    (who.value.scopes.includes(INSPECT_SCOPE) ? undefined : fail(403, "forbidden", `the inspector needs the ${INSPECT_SCOPE} scope`));
  if (denied) return failure(denied, "outcome");
  return { topic };
}

async function inspect(request: IRequest, env: Env): Promise<Response> {
  const access = await inspectorAccess(request, env);
  if (access instanceof Response) return access;
  return jsonResponse(200, await topicStub(env, access.topic).inspect(), { "Cache-Control": "no-store" });
}

async function inspectLive(request: IRequest, env: Env): Promise<Response> {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return textResponse(426, "this endpoint takes a WebSocket upgrade", { Upgrade: "websocket" });
  }
  const access = await inspectorAccess(request, env);
  if (access instanceof Response) return access;
  return topicStub(env, access.topic).fetch(new Request(`https://topic${INSPECTOR_PATH}`, request));
}

/**
 * GET /metrics: the Prometheus text format (src/metrics.ts), for self-hosted builds (one isolate holds
 * the whole hub's numbers there). Needs `Authorization: Bearer <METRICS_TOKEN>`; without that
 * setting the endpoint does not exist (404).
 */
async function metrics(request: IRequest, env: Env): Promise<Response> {
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
async function sameSecret(a: string, b: string): Promise<boolean> {
  const digest = async (s: string) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  const [da, db] = await Promise.all([digest(a), digest(b)]);
  return crypto.subtle.timingSafeEqual(da, db);
}

/** POST /auth/token: the development issuer's client_credentials grant (AUTH_MODE=dev only). */
async function token(request: IRequest, env: Env): Promise<Response> {
  const { config } = hubSettings(env);
  if (config.auth.mode !== "dev") return textResponse(404, "the development token issuer is off (AUTH_MODE is not dev)");
  if (bodyKind(request) !== "form") return jsonResponse(400, { error: "invalid_request", error_description: "Content-Type must be application/x-www-form-urlencoded" });
  const body = await readBody(request, 16_384);
  if (!body.ok) return jsonResponse(body.status, { error: "invalid_request", error_description: body.detail });
  const issued = await issueToken(new URLSearchParams(body.value), env, config.auth, `${origin(request, env)}${HUB_PATH}`);
  if (!issued.ok) return jsonResponse(issued.status, { error: issued.code, error_description: issued.detail });
  return jsonResponse(200, issued.value, { "Cache-Control": "no-store" });
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

const router = Router<IRequest, [Env, ExecutionContext]>({
  before: [startTimer, guardOrigin],
  catch: (err: unknown) => {
    log("error", { error: err instanceof Error ? err.message : String(err) });
    return outcomeResponse(500, "exception", "internal error");
  },
  finally: [requestLog, corsify],
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
  .get(`${WS_PATH_PREFIX}*`, connect)
  .all("*", (req) => textResponse(404, `no route for ${req.method} ${new URL(req.url).pathname}`));

export default {
  fetch: (request: Request, env: Env, ctx: ExecutionContext) => router.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;

// The edge Worker: routes FHIRcast HTTP requests, validates everything that needs no state (shape,
// catalog, size), and hands typed requests to the topic's Durable Object. It never touches storage.
import { cors, Router, type IRequest } from "itty-router";
import { hubSettings, type Env } from "./config";
import { HUB_PATH, parseEndpoint, WS_PATH_PREFIX } from "./endpoint";
import { jsonResponse, outcomeResponse, textResponse } from "./protocol/errors";
import { validatePublish } from "./protocol/publish";
import { collectParams, parseSubscription, type SubscriptionRequest } from "./protocol/subscription";
import { fail, ok, type Result, type SubscriptionResponse, type WellKnown } from "./protocol/wire";
import { log } from "./log";

export { Topic } from "./topic";

const { preflight, corsify } = cors({
  origin: "*",
  allowMethods: ["GET", "POST", "OPTIONS"],
  allowHeaders: ["Authorization", "Content-Type"],
  maxAge: 600,
});

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

function topicStub(env: Env, topic: string) {
  return env.TOPIC.get(env.TOPIC.idFromName(topic));
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
    return publish(env, v);
  }
  return textResponse(415,
    "Content-Type must be application/x-www-form-urlencoded (subscribe, unsubscribe) or application/json / application/fhir+json (publish)");
}

async function subscription(request: Request, env: Env, pairs: Iterable<[string, unknown]>): Promise<Response> {
  const { config, catalog } = hubSettings(env);
  const params = collectParams(pairs);
  if (!params.ok) return textResponse(params.status, params.detail);
  const parsed = parseSubscription(params.value, catalog, config);
  if (!parsed.ok) return textResponse(parsed.status, parsed.detail);
  const req: SubscriptionRequest = parsed.value;
  const stub = topicStub(env, req.topic);
  if (req.endpoint) {
    // The endpoint must belong to this topic's object: never let one topic touch another's subscriptions.
    const ep = parseEndpoint(req.endpoint);
    if (!ep || ep.doId !== stub.id.toString()) {
      return textResponse(404, "hub.channel.endpoint does not name an active subscription of this topic");
    }
  }
  const result =
    req.mode === "subscribe"
      ? await stub.subscribe({ ...req, origin: origin(request, env) })
      : await stub.unsubscribe(req.endpoint);
  if (!result.ok) return textResponse(result.status, result.detail);
  const response: SubscriptionResponse = { "hub.channel.endpoint": result.value.endpoint };
  return jsonResponse(202, response);
}

async function publish(env: Env, body: unknown, pathTopic?: string): Promise<Response> {
  const { catalog } = hubSettings(env);
  const req = validatePublish(body, catalog, pathTopic);
  if (!req.ok) return outcomeResponse(req.status, req.code, req.detail);
  const result = await topicStub(env, req.value.notification.event["hub.topic"]).publish(req.value);
  if (!result.ok) {
    const headers: HeadersInit = result.retryAfter ? { "Retry-After": String(result.retryAfter) } : {};
    return outcomeResponse(result.status, result.code, result.detail, headers);
  }
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
  return publish(env, json.value, decodeURIComponent(request.params.topic!));
}

/** GET {hub.url}/{topic}: current context (§2.9). */
async function getContext(request: IRequest, env: Env): Promise<Response> {
  const topic = decodeURIComponent(request.params.topic!);
  return jsonResponse(200, await topicStub(env, topic).currentContext());
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
  before: [preflight],
  catch: (err: unknown) => {
    log("error", { error: err instanceof Error ? err.message : String(err) });
    return outcomeResponse(500, "exception", "internal error");
  },
  finally: [corsify],
});

router
  .get("/", (req, env) =>
    jsonResponse(200, {
      name: "FHIRcast Hub",
      "hub.url": `${origin(req, env)}${HUB_PATH}`,
      wellKnown: `${origin(req, env)}${HUB_PATH}/.well-known/fhircast-configuration`,
    }))
  .get("/health", () => jsonResponse(200, { status: "ok" }))
  .get("/.well-known/fhircast-configuration", (_req, env) => wellKnown(env))
  .get(`${HUB_PATH}/.well-known/fhircast-configuration`, (_req, env) => wellKnown(env))
  .post(HUB_PATH, postHub)
  .post(`${HUB_PATH}/:topic`, postTopic)
  .get(`${HUB_PATH}/:topic`, getContext)
  .get(`${WS_PATH_PREFIX}*`, connect)
  .all("*", (req) => textResponse(404, `no route for ${req.method} ${new URL(req.url).pathname}`));

export default {
  fetch: (request: Request, env: Env, ctx: ExecutionContext) => router.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;

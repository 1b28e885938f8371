// The edge Worker: the route table, and the stages around every handler. The handlers live in
// src/http/ (one module per endpoint); they validate everything that needs no state (shape, catalog,
// size, token) and hand typed requests to the topic's Durable Object. Nothing here touches storage.
import { env as startEnv } from "cloudflare:workers";
import { Router, type IRequest } from "itty-router";
import { announceAuth } from "./auth/tokens";
import { applySettings } from "./config";
import { HUB_PATH, WS_PATH_PREFIX } from "./endpoint";
import type { Env } from "./env";
import { type ErrorStyle, errorsAs } from "./http/access";
import { getContext } from "./http/context-endpoint";
import { corsify, guardOrigin } from "./http/cors";
import { health, hubIndex, wellKnown } from "./http/discovery";
import { methodNotAllowed, notFound } from "./http/fallback";
import { publishOnTopic, subscribeOrPublish } from "./http/hub-endpoint";
import { inspect, inspectLive } from "./http/inspector";
import { publicFile } from "./http/public-files";
import { metrics } from "./http/metrics-endpoint";
import { requestLog, startTimer } from "./http/request-log";
import { outcomeResponse } from "./http/responses";
import { jwks, token } from "./http/token-endpoint";
import { connect } from "./http/websocket";
import { log } from "./log";
import type { Failure } from "./fhircast/wire";

export { Topic } from "./topic";
export { DevIssuer } from "./auth/dev-issuer";

// At every start (workerd evaluates this module when it starts; the edge, per isolate): the settings
// applied, and a refused, unconfigured or risky authentication mode said at error level before any
// request arrives.
announceAuth(startEnv as Env);

type Handler = (request: IRequest, env: Env, ctx: ExecutionContext) => Response | Failure | Promise<Response | Failure>;

interface Route {
  method: "GET" | "POST";
  path: string;
  /**
   * How the route answers a refusal its handler returns as a Failure (docs/operations.md "Error
   * responses"). POST {hub.url} is two APIs in one path: its handler hands subscription requests to
   * their own plain-text handler (src/http/hub-endpoint.ts).
   */
  errors: ErrorStyle;
  handler: Handler;
}

/** Every route, in matching order. Other methods on these paths get 405 with `Allow` (from this table). */
const ROUTES: Route[] = [
  { method: "GET", path: "/", errors: "text", handler: hubIndex },
  { method: "GET", path: "/health", errors: "text", handler: health },
  { method: "GET", path: "/metrics", errors: "text", handler: metrics },
  { method: "POST", path: "/auth/token", errors: "oauth", handler: token },
  { method: "GET", path: "/auth/jwks", errors: "text", handler: jwks },
  { method: "GET", path: "/.well-known/fhircast-configuration", errors: "outcome", handler: wellKnown },
  { method: "GET", path: `${HUB_PATH}/.well-known/fhircast-configuration`, errors: "outcome", handler: wellKnown },
  { method: "POST", path: HUB_PATH, errors: "outcome", handler: subscribeOrPublish },
  { method: "POST", path: `${HUB_PATH}/:topic`, errors: "outcome", handler: publishOnTopic },
  { method: "GET", path: `${HUB_PATH}/:topic`, errors: "outcome", handler: getContext },
  { method: "GET", path: "/api/inspect/:topic", errors: "outcome", handler: inspect },
  { method: "GET", path: "/api/inspect/:topic/live", errors: "outcome", handler: inspectLive },
  { method: "GET", path: `${WS_PATH_PREFIX}*`, errors: "text", handler: connect },
];

/**
 * An unexpected error (a bug, a setting that does not parse): logged at level error, so it shows
 * under LOG_LEVEL=warn too, and answered with a 500 that says nothing about the hub's insides.
 */
function internalError(err: unknown): Response {
  log("error", { error: err instanceof Error ? err.message : String(err) }, "error");
  return outcomeResponse(500, "exception", "internal error");
}

/** The stages around every request's handler, run by the router and by `hubPostWithoutRouter` alike. */
const BEFORE = [startTimer, guardOrigin] as const;
const FINALLY = [requestLog, corsify] as const;

const router = Router<IRequest, [Env, ExecutionContext]>({
  before: [...BEFORE],
  catch: internalError,
  finally: [...FINALLY],
});

const handlers = new Map<Route, (request: IRequest, env: Env, ctx: ExecutionContext) => Promise<Response>>();
for (const route of ROUTES) {
  const handler = errorsAs(route.errors, route.handler);
  handlers.set(route, handler);
  if (route.method === "GET") router.get(route.path, handler);
  else router.post(route.path, handler);
}
// Any other method on a known path: 405 naming the ones it takes (OPTIONS is a preflight).
const methods = new Map<string, string[]>();
for (const { path, method } of ROUTES) methods.set(path, [...(methods.get(path) ?? []), method]);
for (const [path, allowed] of methods) router.all(path, methodNotAllowed(allowed.sort().join(", ")));
router.get("*", publicFile).head("*", publicFile); // the self-host build's static files (the edge serves them with [assets])
router.all("*", notFound);

/** POST {hub.url}'s handler, with its error style: the one route served without the router. */
const hubPostHandler = handlers.get(ROUTES.find((r) => r.method === "POST" && r.path === HUB_PATH)!)!;

/**
 * Whether the request is exactly `POST {hub.url}`, told from the URL text: every publish and every
 * subscription takes this route, and the router's own work per request (parsing the URL, its query
 * and every route's pattern, an await per stage) is worth skipping there (docs/performance.md "The
 * router"). Anything else, a trailing slash or a query included, goes to the router.
 */
function isHubPost(request: Request): boolean {
  if (request.method !== "POST") return false;
  const url = request.url;
  const path = url.indexOf("/", url.indexOf("//") + 2);
  return path > 0 && url.length - path === HUB_PATH.length && url.endsWith(HUB_PATH);
}

/** `POST {hub.url}` through the router's stages and error handling, without the router. */
async function hubPostWithoutRouter(request: IRequest, env: Env, ctx: ExecutionContext): Promise<Response> {
  request.route = HUB_PATH;
  let response: Response | undefined;
  try {
    for (const stage of BEFORE) if ((response = stage(request, env))) break;
    response ??= await hubPostHandler(request, env, ctx);
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
    applySettings(env); // the log level and analytics of this environment, before anything is read
    return isHubPost(request) ? hubPostWithoutRouter(request as IRequest, env, ctx) : router.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;

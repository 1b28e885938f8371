// POST {hub.url} and POST {hub.url}/{topic}: subscription requests (subscribe, re-subscribe,
// unsubscribe, fhircast.hl7.org/STU3/2-4-Subscribing.html) and publishes (fhircast.hl7.org/STU3/2-6-SendEventNotification.html), validated here and handed to the topic's object.
// Subscription requests answer refusals in plain text, publishes with an OperationOutcome (spec note A51):
// each handler declares its style once (`errorsAs`) and refuses by returning a Failure.
import type { IRequest } from "itty-router";
import { allows } from "../auth/scopes";
import { authenticate } from "../auth/tokens";
import { hubSettings } from "../config";
import { parseEndpoint } from "../endpoint";
import type { Env } from "../env";
import { observePublish } from "../metrics";
import { validatePublish } from "../fhircast/publish";
import { collectParams, parseSubscription, type SubscriptionRequest } from "../protocol/subscription";
import { fail, type Result, type SubscriptionResponse } from "../fhircast/wire";
import { checkTopic, errorsAs, hubOrigin, rateLimit, topicStub } from "./access";
import { bodyKind, looksLikeJson, parseJson, pathTopic, readBody } from "./body";
import { note } from "./request-log";
import { jsonResponse } from "./responses";

/** POST {hub.url}: a subscription request (form, or JSON with hub.mode) or a publish (JSON), told by the body. */
export const subscribeOrPublish = errorsAs("outcome", (request: IRequest, env: Env) => {
  const kind = bodyKind(request);
  if (kind === "form") return subscriptionForm(request, env);
  if (kind === "json") return jsonPost(request, env);
  // Neither a subscription (form) nor a publish: an API refusal, so an OperationOutcome.
  return fail(415, "not-supported",
    "Content-Type must be application/x-www-form-urlencoded (subscribe, unsubscribe) or application/json / application/fhir+json (publish)");
});

/** A form-encoded POST {hub.url}: a subscription request. */
const subscriptionForm = errorsAs("text", async (request: IRequest, env: Env) => {
  const body = await readBody(request, hubSettings(env).config.maxBodyBytes);
  if (!body.ok) return body;
  // `curl -d '{…}'` sends JSON as a form: say what is wrong rather than "hub.channel.type is required".
  if (looksLikeJson(body.value)) {
    return fail(415, "not-supported", "the body is JSON but Content-Type is application/x-www-form-urlencoded: publishing needs Content-Type: application/json (or application/fhir+json)");
  }
  return subscription(request, env, new URLSearchParams(body.value).entries());
});

/** A JSON POST {hub.url}: a publish, or a subscription request from a client that subscribes with JSON. */
const jsonPost = errorsAs("outcome", async (request: IRequest, env: Env) => {
  const body = await readBody(request, hubSettings(env).config.maxBodyBytes);
  if (!body.ok) return body;
  const json = parseJson(body.value);
  if (!json.ok) return json;
  const v = json.value;
  // Leniency for clients that subscribe with JSON (Medplum, OHIF): hub.mode and no event.
  if (typeof v === "object" && v !== null && !Array.isArray(v) && "hub.mode" in v && !("event" in v)) {
    return subscription(request, env, Object.entries(v));
  }
  return publish(request, env, v);
});

/** Subscribe, re-subscribe or unsubscribe (fhircast.hl7.org/STU3/2-4-Subscribing.html); refusals in plain text. */
const subscription = errorsAs("text", async (request: Request, env: Env, pairs: Iterable<[string, unknown]>) => {
  const { config, catalog } = hubSettings(env);
  const who = await authenticate(request, env, config.auth);
  if (!who.ok) return who;
  const p = who.value;
  const params = collectParams(pairs);
  if (!params.ok) return params;
  const parsed = parseSubscription(params.value, catalog, config);
  if (!parsed.ok) return parsed;
  const req: SubscriptionRequest = parsed.value;
  note(request, { topic: req.topic, mode: req.mode });
  const denied = checkTopic(p, req.topic) ?? (await rateLimit(env, request, p, "subscribe"));
  if (denied) return denied;
  const stub = topicStub(env, req.topic);
  if (req.endpoint) {
    // The endpoint must belong to this topic's object: never let one topic touch another's subscriptions.
    const ep = parseEndpoint(req.endpoint);
    if (!ep || ep.doId !== stub.id.toString()) {
      return fail(404, "not-found", "hub.channel.endpoint does not name an active subscription of this topic");
    }
  }
  let result: Result<{ endpoint: string }>;
  if (req.mode === "subscribe") {
    // Grant only the events the token may read (fhircast.hl7.org/STU3/2-2-FhircastScopes.html); the confirmation lists what was granted.
    const events = req.events.filter((e) => allows(p.grants, e, "read"));
    if (events.length === 0) return fail(403, "forbidden", `the access token has no read scope (fhircast/<Event>.read) for ${req.events.join(", ")}`);
    // The lease never outlives the token (fhircast.hl7.org/STU3/2-4-Subscribing.html SHALL).
    let leaseSeconds = req.leaseSeconds;
    if (p.expiresAt !== undefined) leaseSeconds = Math.min(leaseSeconds, Math.floor((p.expiresAt - Date.now()) / 1000));
    if (leaseSeconds < 1) return fail(401, "login", "token expires too soon for a subscription");
    result = await stub.subscribe({ ...req, events, leaseSeconds, origin: hubOrigin(request, env), clientId: p.clientId, tokenExpiresAt: p.expiresAt });
  } else {
    result = await stub.unsubscribe(req.endpoint, p.clientId);
  }
  if (!result.ok) return result;
  const response: SubscriptionResponse = { "hub.channel.endpoint": result.value.endpoint };
  return jsonResponse(202, response);
});

/** A publish (fhircast.hl7.org/STU3/2-6-SendEventNotification.html), its topic in the body (and, POST {hub.url}/{topic}, in the path); refusals as OperationOutcomes. */
const publish = errorsAs("outcome", async (request: Request, env: Env, body: unknown, pathTopic?: string) => {
  const { config, catalog } = hubSettings(env);
  const who = await authenticate(request, env, config.auth);
  if (!who.ok) return who;
  const req = validatePublish(body, catalog, pathTopic);
  if (!req.ok) return req;
  const topic = req.value.notification.event["hub.topic"];
  note(request, { topic, event: req.value.eventName });
  const denied =
    checkTopic(who.value, topic) ??
    (allows(who.value.grants, req.value.eventName, "write")
      ? undefined
      : fail(403, "forbidden", `the access token has no write scope for ${req.value.eventName} (fhircast/${req.value.eventName}.write)`)) ??
    (await rateLimit(env, request, who.value, "publish"));
  if (denied) return denied;
  const started = Date.now();
  const result = await topicStub(env, topic).publish({ ...req.value, notification: JSON.stringify(req.value.notification) });
  if (!result.ok) return result;
  observePublish(Date.now() - started);
  return new Response(null, { status: 202 });
});

/** POST {hub.url}/{topic}: publish the STU1/STU2 way (spec note A1). */
export const publishOnTopic = errorsAs("outcome", async (request: IRequest, env: Env) => {
  if (bodyKind(request) !== "json") return fail(415, "not-supported", "Content-Type must be application/json or application/fhir+json");
  const body = await readBody(request, hubSettings(env).config.maxBodyBytes);
  if (!body.ok) return body;
  const json = parseJson(body.value);
  if (!json.ok) return json;
  const topic = pathTopic(request);
  if (!topic.ok) return topic;
  return publish(request, env, json.value, topic.value);
});

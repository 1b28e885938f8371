// Subscriptions (fhircast.hl7.org/STU3/2-4-Subscribing.html): subscribe, re-subscribe and unsubscribe over RPC, and the socket
// that connects to an endpoint, with its confirmation and the replay of the current context. How a
// subscription ends is ./subscription-end.ts.
import { endpointUrl, hashSecret, newSecret, parseEndpoint } from "../endpoint";
import { HEARTBEAT } from "../fhircast/catalog";
import { topicHash } from "../log";
import { count, socketOpened } from "../metrics";
import type { SubscribeRequest } from "../protocol/subscription";
import { type Confirmation, fail, ok, type Result } from "../fhircast/wire";
import type { TopicCore } from "./core";
import { subscribersChanged } from "./inspector";
import { replay } from "./replay";
import { refusedUpgrade, sendFrame, type SocketAttachment } from "./sockets";
import type { SubscriptionRow } from "./store";
import { denial, endSubscription, removeSubscription } from "./subscription-end";

/** A subscribe as the Worker hands it over: the request plus who asked and when their token expires (ms). */
export type SubscribeCall = SubscribeRequest & { origin: string; clientId?: string; tokenExpiresAt?: number };

/**
 * Creates a subscription, or re-subscribes an existing one when `req.endpoint` is given (fhircast.hl7.org/STU3/2-4-Subscribing.html):
 * its events and lease are replaced and, if its socket is open, a new confirmation is sent followed
 * by the current context for newly added events.
 */
export async function subscribe(core: TopicCore, req: SubscribeCall): Promise<Result<{ endpoint: string }>> {
  const { config, store } = core;
  const now = Date.now();
  if (req.endpoint) {
    const ep = parseEndpoint(req.endpoint);
    const hash = ep ? await hashSecret(ep.secret) : undefined;
    const row = core.memory.hasStorage && hash ? store.subscriptionByHash(hash) : undefined;
    if (!row) return fail(404, "not-found", "hub.channel.endpoint does not name an active subscription of this topic");
    const notOwner = ownership(row, req.clientId);
    if (notOwner) return notOwner;
    return resubscribe(core, row, req, now);
  }
  const secret = newSecret();
  const hash = await hashSecret(secret);
  const hashOfTopic = core.memory.topicHash ?? (await topicHash(req.topic));
  // Checked after the awaits, so that concurrent subscribes cannot pass the cap together.
  if (core.memory.hasStorage && store.subscriptionCount() >= config.maxSubscriptionsPerTopic) {
    return fail(403, "too-costly", `this topic already has ${config.maxSubscriptionsPerTopic} subscriptions (MAX_SUBSCRIPTIONS_PER_TOPIC)`);
  }
  core.ensureStorage(req.topic, hashOfTopic);
  const id = crypto.randomUUID();
  core.ctx.storage.transactionSync(() => {
    store.insertSubscription({
      id,
      secret_hash: hash,
      events: req.events.join(","),
      name: req.name ?? null,
      client_id: req.clientId ?? null,
      lease_seconds: req.leaseSeconds,
      created_at: now,
      connected_at: null,
      // Until the socket connects: the token's expiry, which the lease must not outlive (fhircast.hl7.org/STU3/2-4-Subscribing.html).
      expires_at: req.tokenExpiresAt ?? null,
    });
    store.setDeadline("connect", id, now + config.endpointConnectSeconds * 1000);
    core.touch(now);
  });
  core.scheduleAlarm();
  core.log("subscribe", { sub: id, events: req.events.length });
  count("fhircast_subscriptions_total", { action: "subscribe" });
  core.sockets.toInspectors(subscribersChanged);
  return ok({ endpoint: endpointUrl(req.origin, core.ctx.id.toString(), secret) });
}

function resubscribe(core: TopicCore, row: SubscriptionRow, req: SubscribeCall, now: number): Result<{ endpoint: string }> {
  const { config, store, sockets } = core;
  const connected = row.connected_at !== null;
  const expiresAt = connected ? leaseEnd(now, req.leaseSeconds, req.tokenExpiresAt ?? null) : (req.tokenExpiresAt ?? null);
  const name = req.name ?? row.name;
  core.ctx.storage.transactionSync(() => {
    store.updateSubscription(row.id, req.events.join(","), name, req.leaseSeconds, expiresAt);
    if (connected && expiresAt !== null) store.setDeadline("lease", row.id, expiresAt);
    if (connected && wantsHeartbeat(core, req.events)) store.setDeadlineNoLater("heartbeat", "", now + config.heartbeatSeconds * 1000);
    core.touch(now);
  });
  core.scheduleAlarm();
  const ws = sockets.get(row.id);
  if (ws) {
    const before = new Set(row.events.split(","));
    sockets.update(row.id, req.events, name ?? undefined);
    sendFrame(ws, JSON.stringify(confirmation(core, req.events, expiresAt === null ? req.leaseSeconds : leaseLeft(expiresAt, now))));
    replay(core, ws, row.id, new Set(req.events), new Set(req.events.filter((e) => !before.has(e))));
  }
  core.log("resubscribe", { sub: row.id, events: req.events.length });
  return ok({ endpoint: req.endpoint! });
}

/** Cancels a subscription (fhircast.hl7.org/STU3/2-4-Subscribing.html): denial frame on its socket, close 1000, endpoint never reused. */
export async function unsubscribe(core: TopicCore, endpoint: string, clientId?: string): Promise<Result<{ endpoint: string }>> {
  const ep = parseEndpoint(endpoint);
  const hash = ep ? await hashSecret(ep.secret) : undefined;
  const row = core.memory.hasStorage && hash ? core.store.subscriptionByHash(hash) : undefined;
  if (!row) return fail(404, "not-found", "hub.channel.endpoint does not name an active subscription of this topic");
  const notOwner = ownership(row, clientId);
  if (notOwner) return notOwner;
  endSubscription(core, row, "unsubscribed");
  core.log("unsubscribe", { sub: row.id });
  count("fhircast_subscriptions_total", { action: "unsubscribe" });
  return ok({ endpoint });
}

/** The upgrade of `/ws/{id}/{secret}` (fhircast.hl7.org/STU3/2-4-Subscribing.html): confirmation, then the replay of current context. */
export async function connect(core: TopicCore, path: string): Promise<Response> {
  const { config, store } = core;
  const ep = parseEndpoint(path);
  const hash = ep ? await hashSecret(ep.secret) : undefined;
  const row = core.memory.hasStorage && hash ? store.subscriptionByHash(hash) : undefined;
  const now = Date.now();
  let refusal: string | undefined;
  if (!row) refusal = "unknown or expired endpoint";
  else if (row.connected_at !== null) refusal = "endpoint already connected; subscribe again for a new endpoint";
  else if (row.expires_at !== null && row.expires_at <= now) {
    // The token the subscription was made with expired before the socket came: no lease is left.
    refusal = "subscription expired: its token expired before the socket connected";
    removeSubscription(core, row.id);
  }
  if (refusal || !row) {
    // Whoever holds no valid secret learns nothing, not even the topic.
    const refused = denial(core, row?.events ?? "", refusal!);
    if (!row) refused["hub.topic"] = "";
    core.log("connect.denied", { reason: refusal });
    return refusedUpgrade(refused);
  }

  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];

  const events = row.events.split(",");
  // The lease starts now (spec note A32); it was capped by the token at subscribe time, in whole seconds from
  // then, so it still ends no later than the token (row.expires_at holds its expiry until now).
  const expiresAt = leaseEnd(now, row.lease_seconds, row.expires_at);
  core.ctx.storage.transactionSync(() => {
    store.markConnected(row.id, now, expiresAt);
    store.deleteDeadline("connect", row.id);
    store.setDeadline("lease", row.id, expiresAt);
    if (wantsHeartbeat(core, events)) store.setDeadlineNoLater("heartbeat", "", now + config.heartbeatSeconds * 1000);
    core.touch(now);
  });
  core.scheduleAlarm();
  const att: SocketAttachment = { sub: row.id, events, ...(row.name ? { name: row.name } : {}) };
  core.sockets.accept(server, att);
  socketOpened();
  core.sockets.toInspectors(subscribersChanged);
  // What remains of the lease as the confirmation leaves: a token-capped lease has been running down
  // since the subscribe, and the subscriber must not count past the token's expiry.
  sendFrame(server, JSON.stringify(confirmation(core, events, leaseLeft(expiresAt, now))));
  replay(core, server, row.id, new Set(events), new Set(events));
  core.log("connect", { sub: row.id });
  return new Response(null, { status: 101, webSocket: client });
}

function confirmation(core: TopicCore, events: string[], leaseSeconds: number): Confirmation {
  return {
    "hub.mode": "subscribe",
    "hub.topic": core.topicName(),
    "hub.events": events.join(","),
    "hub.lease_seconds": leaseSeconds,
  };
}

/** Whether a subscription to `events` gets the legacy heartbeat (the setting is on and it asked for it). */
function wantsHeartbeat(core: TopicCore, events: readonly string[]): boolean {
  return core.config.heartbeatSeconds > 0 && events.includes(HEARTBEAT.name);
}

/** Only the client that created a subscription may change or cancel it (fhircast.hl7.org/STU3/4-3-security-considerations.html). */
function ownership(row: SubscriptionRow, clientId: string | undefined) {
  if (row.client_id !== null && row.client_id !== clientId) {
    return fail(403, "forbidden", "only the client that created this subscription may change or cancel it");
  }
  return undefined;
}

/** When a lease of `seconds` starting at `now` ends: never after the token's expiry, when known. */
function leaseEnd(now: number, seconds: number, tokenExpiresAt: number | null): number {
  const end = now + seconds * 1000;
  return tokenExpiresAt === null ? end : Math.min(end, tokenExpiresAt);
}

/**
 * Whole seconds left at `now` (when the lease was set, just before the confirmation goes out) of a
 * lease ending at `expiresAt`, rounded down: never past its end.
 */
function leaseLeft(expiresAt: number, now: number): number {
  return Math.max(0, Math.floor((expiresAt - now) / 1000));
}

// The Topic Durable Object: one per hub.topic. It owns the topic's subscriptions and their WebSockets,
// the open contexts (multi-tab, §8), versions and content (§7), the event log and every deadline.
// Order per topic comes from the object's input gates: each request runs its storage writes in one
// synchronous transaction, then sends; the output gate holds frames until the write is durable.
import { DurableObject } from "cloudflare:workers";
import { hubSettings, type Env, type HubConfig } from "./config";
import { endpointUrl, hashSecret, newSecret, parseEndpoint } from "./endpoint";
import { type EventCatalog, HEARTBEAT } from "./events/catalog";
import type { PublishCall, PublishRequest } from "./protocol/publish";
import type { SubscribeRequest } from "./protocol/subscription";
import {
  type Confirmation,
  type ContextEntry,
  type CurrentContext,
  type Denial,
  fail,
  type InspectorFrame,
  type InspectView,
  type Notification,
  ok,
  type Result,
} from "./protocol/wire";
import { outcomeResponse } from "./protocol/errors";
import { hasSchema, migrate } from "./topic/schema";
import {
  type AnchorChange,
  type Awaited,
  CLOSE,
  closeSocket,
  MAX_AWAITED,
  sendFrame,
  type SocketAttachment,
  SocketIndex,
} from "./topic/sockets";
import { CONTEXT_TRIM_EVERY, type SubscriptionRow, TopicStore, TRIM_EVERY } from "./topic/store";
import { ACK_CHECK_GAP_MS, AckDeadlines } from "./topic/acks";
import { applyUpdate } from "./topic/content";
import { inspection } from "./topic/inspection";
import { ackOutcome, type SyncFailure, syncError } from "./topic/sync";
import { impliedOpens } from "./topic/derive";
import type { Ack } from "./protocol/wire";
import { log, topicHash } from "./log";
import { count, socketClosed, socketOpened } from "./metrics";

/** Largest frame a subscriber may send; acknowledgements are tiny. The socket is closed (1009) above it. */
export const MAX_FRAME_BYTES = 16_384;

/** A subscribe as the Worker hands it over: the request plus who asked and when their token expires (ms). */
type SubscribeCall = SubscribeRequest & { origin: string; clientId?: string; tokenExpiresAt?: number };

/** The path the Worker forwards the inspector's live socket to. */
export const INSPECTOR_PATH = "/inspect/live";
/** The header in which the Worker tells the topic when the inspector's token expires (ms since epoch). */
export const INSPECTOR_EXPIRES_HEADER = "X-Hub-Token-Expires";

/** Most open contexts a topic keeps (multi-tab); the least recently opened is dropped beyond it. */
export const MAX_OPEN_CONTEXTS = 100;

const EMPTY_CONTEXT: CurrentContext = { "context.type": "", context: [] };

export class Topic extends DurableObject<Env> {
  private readonly store: TopicStore;
  private readonly sockets: SocketIndex;
  private readonly config: HubConfig;
  private readonly catalog: EventCatalog;
  /** Whether this object has storage yet; reads on unknown topics must not create any. */
  private ready: boolean;
  /** The topic's hash for logs, once the object has storage. */
  private tag: string | undefined;
  /** The alarm time this instance last set; undefined when unknown (fresh instance, alarm just ran). */
  private alarmAt: number | undefined;
  /** Which delivered events still await acknowledgements, from how many recipients (rebuilt on wake). */
  private readonly acks = new AckDeadlines();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ({ config: this.config, catalog: this.catalog } = hubSettings(env));
    this.store = new TopicStore(ctx.storage.sql);
    this.sockets = new SocketIndex(ctx, this.config.socketBufferBytes);
    // Keep-alive without waking the object: the runtime answers "ping" with "pong" itself.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    this.ready = hasSchema(ctx.storage.sql);
    if (this.ready) {
      migrate(ctx.storage);
      this.tag = this.store.getMeta("topic_hash");
      this.reconcileSockets();
      this.acks.load(this.sockets.attachments().map((a) => a.pending));
    }
  }

  /**
   * After a restart of the runtime, subscriptions may be marked connected whose sockets died with the
   * process (no close event is ever delivered for them). A dropped socket ends its subscription.
   */
  private reconcileSockets(): void {
    const live = new Set(this.sockets.subscriptionIds());
    const dead = this.store.connectedSubscriptionIds().filter((id) => !live.has(id));
    if (dead.length === 0) return;
    this.ctx.storage.transactionSync(() => dead.forEach((id) => this.store.deleteSubscription(id)));
    this.log("subscriptions.reaped", { count: dead.length });
  }

  /** Logs with the topic's hash (never the topic: docs/operations.md "Observability"). */
  private log(msg: string, fields: Parameters<typeof log>[1], severity?: "info" | "warn"): void {
    log(msg, { topic: this.tag, ...fields }, severity);
  }

  /** Creates the schema on the first write; `tag` is the topic's hash for logs (computed by the caller). */
  private ensureSchema(topic: string, tag: string): void {
    if (this.ready) return;
    migrate(this.ctx.storage);
    const now = Date.now();
    this.store.setMeta("topic", topic);
    this.store.setMeta("topic_hash", tag);
    this.tag = tag;
    this.store.setMeta("last_activity", String(now));
    this.store.setDeadline("idle", "", now + this.config.topicIdleSeconds * 1000);
    this.ready = true;
    this.scheduleAlarm();
  }

  private topicName(): string {
    return this.store.getMeta("topic") ?? "";
  }

  private touch(now: number): void {
    this.store.setMeta("last_activity", String(now));
  }

  /** Points the object's single alarm at the earliest deadline. */
  private scheduleAlarm(): void {
    // Inspector sockets end with their tokens; their expiries live in their attachments, not in the
    // deadlines table, so that an inspected topic without storage gets none (docs/decisions.md).
    const next = earliest(this.ready ? this.store.nextDeadline() : undefined, this.sockets.nextInspectorExpiry());
    if (next === this.alarmAt) return;
    this.alarmAt = next;
    if (next === undefined) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(next);
  }

  // ---- subscribe / unsubscribe (§2.4, §2.5, §2.7) ------------------------------------------------

  /**
   * Creates a subscription, or re-subscribes an existing one when `req.endpoint` is given (§2.5):
   * its events and lease are replaced and, if its socket is open, a new confirmation is sent followed
   * by the current context for newly added events.
   */
  async subscribe(req: SubscribeCall): Promise<Result<{ endpoint: string }>> {
    const now = Date.now();
    if (req.endpoint) {
      const ep = parseEndpoint(req.endpoint);
      const hash = ep ? await hashSecret(ep.secret) : undefined;
      const row = this.ready && hash ? this.store.subscriptionByHash(hash) : undefined;
      if (!row) return fail(404, "not-found", "hub.channel.endpoint does not name an active subscription of this topic");
      const notOwner = ownership(row, req.clientId);
      if (notOwner) return notOwner;
      return this.resubscribe(row, req, now);
    }
    const secret = newSecret();
    const hash = await hashSecret(secret);
    const tag = this.tag ?? (await topicHash(req.topic));
    // Checked after the awaits, so that concurrent subscribes cannot pass the cap together.
    if (this.ready && this.store.subscriptionCount() >= this.config.maxSubscriptionsPerTopic) {
      return fail(403, "too-costly", `this topic already has ${this.config.maxSubscriptionsPerTopic} subscriptions (MAX_SUBSCRIPTIONS_PER_TOPIC)`);
    }
    this.ensureSchema(req.topic, tag);
    const id = crypto.randomUUID();
    this.ctx.storage.transactionSync(() => {
      this.store.insertSubscription({
        id,
        secret_hash: hash,
        events: req.events.join(","),
        name: req.name ?? null,
        client_id: req.clientId ?? null,
        lease_seconds: req.leaseSeconds,
        created_at: now,
        connected_at: null,
        // Until the socket connects: the token's expiry, which the lease must not outlive (§2.1).
        expires_at: req.tokenExpiresAt ?? null,
      });
      this.store.setDeadline("connect", id, now + this.config.endpointConnectSeconds * 1000);
      this.touch(now);
    });
    this.scheduleAlarm();
    this.log("subscribe", { sub: id, events: req.events.length });
    count("fhircast_subscriptions_total", { action: "subscribe" });
    this.sockets.toInspectors(subscribersChanged);
    return ok({ endpoint: endpointUrl(req.origin, this.ctx.id.toString(), secret) });
  }

  private resubscribe(row: SubscriptionRow, req: SubscribeCall, now: number): Result<{ endpoint: string }> {
    const connected = row.connected_at !== null;
    const expiresAt = connected ? leaseEnd(now, req.leaseSeconds, req.tokenExpiresAt ?? null) : (req.tokenExpiresAt ?? null);
    const name = req.name ?? row.name;
    this.ctx.storage.transactionSync(() => {
      this.store.updateSubscription(row.id, req.events.join(","), name, req.leaseSeconds, expiresAt);
      if (connected && expiresAt !== null) this.store.setDeadline("lease", row.id, expiresAt);
      if (connected && this.wantsHeartbeat(req.events)) this.store.setDeadlineNoLater("heartbeat", "", now + this.config.heartbeatSeconds * 1000);
      this.touch(now);
    });
    this.scheduleAlarm();
    const ws = this.sockets.get(row.id);
    if (ws) {
      const before = new Set(row.events.split(","));
      this.sockets.update(row.id, req.events, name ?? undefined);
      sendFrame(ws, JSON.stringify(this.confirmation(req.events, expiresAt === null ? req.leaseSeconds : leaseLeft(expiresAt, now))));
      this.replay(ws, row.id, new Set(req.events), new Set(req.events.filter((e) => !before.has(e))));
    }
    this.log("resubscribe", { sub: row.id, events: req.events.length });
    return ok({ endpoint: req.endpoint! });
  }

  /** Cancels a subscription (§2.7): denial frame on its socket, close 1000, endpoint never reused. */
  async unsubscribe(endpoint: string, clientId?: string): Promise<Result<{ endpoint: string }>> {
    const ep = parseEndpoint(endpoint);
    const hash = ep ? await hashSecret(ep.secret) : undefined;
    const row = this.ready && hash ? this.store.subscriptionByHash(hash) : undefined;
    if (!row) return fail(404, "not-found", "hub.channel.endpoint does not name an active subscription of this topic");
    const notOwner = ownership(row, clientId);
    if (notOwner) return notOwner;
    this.endSubscription(row, "unsubscribed");
    this.log("unsubscribe", { sub: row.id });
    count("fhircast_subscriptions_total", { action: "unsubscribe" });
    return ok({ endpoint });
  }

  /** Removes a subscription; if its socket is open, sends the denial and closes it with 1000. */
  private endSubscription(row: SubscriptionRow, reason: string): void {
    const ws = this.removeSubscription(row.id);
    if (ws) {
      sendFrame(ws, JSON.stringify(this.denial(row.events, reason)));
      closeSocket(ws, CLOSE.normal, reason);
    }
  }

  /**
   * The one way a subscription ends: its row and deadlines go, the alarm and the inspectors follow,
   * and its socket leaves the index. Returns the socket, still open, for the caller to close.
   */
  private removeSubscription(id: string): WebSocket | undefined {
    this.ctx.storage.transactionSync(() => {
      this.store.deleteSubscription(id);
      this.touch(Date.now());
    });
    this.scheduleAlarm();
    this.sockets.toInspectors(subscribersChanged);
    const ws = this.sockets.get(id);
    this.sockets.forget(id);
    if (ws) socketClosed();
    return ws;
  }

  private confirmation(events: string[], leaseSeconds: number): Confirmation {
    return {
      "hub.mode": "subscribe",
      "hub.topic": this.topicName(),
      "hub.events": events.join(","),
      "hub.lease_seconds": leaseSeconds,
    };
  }

  private denial(events: string, reason: string): Denial {
    return { "hub.mode": "denied", "hub.topic": this.topicName(), "hub.events": events, "hub.reason": reason };
  }

  // ---- WebSocket connect (§2.4) --------------------------------------------------------------

  /** The upgrade of `/ws/{id}/{secret}`: confirmation, then the replay of current context. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("this endpoint takes a WebSocket upgrade", { status: 426, headers: { Upgrade: "websocket" } });
    }
    const path = new URL(request.url).pathname;
    if (path === INSPECTOR_PATH) return this.acceptInspector(request);
    const ep = parseEndpoint(path);
    const hash = ep ? await hashSecret(ep.secret) : undefined;
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    const row = this.ready && hash ? this.store.subscriptionByHash(hash) : undefined;
    const now = Date.now();

    let refusal: string | undefined;
    if (!row) refusal = "unknown or expired endpoint";
    else if (row.connected_at !== null) refusal = "endpoint already connected; subscribe again for a new endpoint";
    else if (row.expires_at !== null && row.expires_at <= now) {
      // The token the subscription was made with expired before the socket came: no lease is left.
      refusal = "subscription expired: its token expired before the socket connected";
      this.removeSubscription(row.id);
    }
    if (refusal || !row) {
      server.accept();
      // Whoever holds no valid secret learns nothing, not even the topic.
      const denial = this.denial(row?.events ?? "", refusal!);
      if (!row) denial["hub.topic"] = "";
      sendFrame(server, JSON.stringify(denial));
      closeSocket(server, CLOSE.policy, refusal!);
      this.log("connect.denied", { reason: refusal });
      return new Response(null, { status: 101, webSocket: client });
    }

    const events = row.events.split(",");
    // The lease starts now (A32); it was capped by the token at subscribe time, in whole seconds from
    // then, so it still ends no later than the token (row.expires_at holds its expiry until now).
    const expiresAt = leaseEnd(now, row.lease_seconds, row.expires_at);
    this.ctx.storage.transactionSync(() => {
      this.store.markConnected(row.id, now, expiresAt);
      this.store.deleteDeadline("connect", row.id);
      this.store.setDeadline("lease", row.id, expiresAt);
      if (this.wantsHeartbeat(events)) this.store.setDeadlineNoLater("heartbeat", "", now + this.config.heartbeatSeconds * 1000);
      this.touch(now);
    });
    this.scheduleAlarm();
    const att: SocketAttachment = { sub: row.id, events, ...(row.name ? { name: row.name } : {}) };
    this.sockets.accept(server, att);
    socketOpened();
    this.sockets.toInspectors(subscribersChanged);
    // What remains of the lease as the confirmation leaves: a token-capped lease has been running down
    // since the subscribe, and the subscriber must not count past the token's expiry.
    sendFrame(server, JSON.stringify(this.confirmation(events, leaseLeft(expiresAt, now))));
    this.replay(server, row.id, new Set(events), new Set(events));
    this.log("connect", { sub: row.id });
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * The inspector's live socket. The Worker checked the caller's inspect scope before forwarding and
   * says when the token expires (INSPECTOR_EXPIRES_HEADER): the socket is closed then (1008 "token
   * expired"), as a subscriber's lease ends with its token. At most MAX_INSPECTORS_PER_TOPIC at once.
   */
  private acceptInspector(request: Request): Response {
    const max = this.config.maxInspectorsPerTopic;
    if (this.sockets.inspectorCount() >= max) {
      this.log("inspector.refused", { inspectors: max }, "warn");
      return outcomeResponse(403, "too-costly", `this topic already has ${max} live inspector sockets (MAX_INSPECTORS_PER_TOPIC)`);
    }
    const raw = request.headers.get(INSPECTOR_EXPIRES_HEADER);
    const expiresAt = raw ? Number(raw) : undefined;
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.sockets.acceptInspector(server, expiresAt !== undefined && Number.isFinite(expiresAt) ? expiresAt : undefined);
    this.scheduleAlarm();
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * The current-context replay (§2.4): for each anchor type, the most recent open that has not been
   * closed, if its event is in `only`; in original order, with original id and timestamp and the
   * anchor's current versionId. When the newest open context is of an event the subscription does not
   * hold, the opens it implies follow (derived, §2.5), as they would have been delivered live.
   */
  private replay(ws: WebSocket, sub: string, granted: Set<string>, only: Set<string>): void {
    if (only.size === 0 || !this.ready) return;
    const latestPerType = new Map<string, { event: Notification; version: string; seq: number; anchor: string }>();
    for (const row of this.store.latestContextPerType()) {
      latestPerType.set(row.anchor_type, { event: JSON.parse(row.open_event) as Notification, version: row.version_id, seq: row.opened_seq, anchor: row.anchor });
    }
    const chosen = [...latestPerType.entries()].sort(([, a], [, b]) => a.seq - b.seq);
    const sent: AnchorChange[] = [];
    // The replay is indistinguishable from live events (§2.4): each one is awaited like a live one.
    const due = Date.now() + this.config.ackTimeoutSeconds * 1000;
    const awaited: Awaited[] = [];
    for (const [type, c] of chosen) {
      if (!only.has(c.event.event["hub.event"])) continue;
      if (!sendFrame(ws, JSON.stringify(withVersion(c.event, c.version)))) continue;
      sent.push({ role: "open", type, id: c.anchor.slice(type.length + 1) });
      awaited.push([c.event.id, c.event.event["hub.event"], due]);
    }
    const newest = chosen[chosen.length - 1]?.[1];
    if (newest && !granted.has(newest.event.event["hub.event"])) {
      for (const d of impliedOpens(newest.event)) {
        if (!only.has(d.name) || sent.some((a) => a.type === d.anchorType && a.id === d.id)) continue;
        if (!sendFrame(ws, JSON.stringify(d.notification))) continue;
        sent.push({ role: "open", type: d.anchorType, id: d.id });
        awaited.push([d.notification.id, d.name, due]);
      }
    }
    const stalled = this.sockets.noteReplayed(sub, sent, awaited);
    if (awaited.length > 0) this.awaitAnswers(due);
    if (stalled) {
      const [id, name] = awaited[awaited.length - 1]!;
      this.outOfSync(sub, { eventId: id, eventName: name }, { kind: "stalled", pending: MAX_AWAITED + 1 }, true);
    }
  }

  /**
   * Makes sure the acknowledgement check runs no later than `due`, the time an answer just awaited
   * falls due. Nothing to write while the stored `ack` row stands: it is due no later than that.
   */
  private awaitAnswers(due: number): void {
    if (this.acks.rowSet) return;
    this.ctx.storage.transactionSync(() => this.store.setDeadlineNoLater("ack", "", due));
    this.acks.rowSet = true;
    if (this.alarmAt === undefined || due < this.alarmAt) this.scheduleAlarm();
  }

  // ---- publish (§2.6, §7, §8) --------------------------------------------------------------

  /**
   * Accepts a validated event: applies it to the topic's state and logs it in one transaction, then
   * sends it to every subscriber of that event (the requester included, when subscribed).
   */
  async publish(call: PublishCall): Promise<Result<{ seq: number }>> {
    const req: PublishRequest = { ...call, notification: JSON.parse(call.notification) as Notification };
    const topic = req.notification.event["hub.topic"];
    if (!this.ready) this.ensureSchema(topic, await topicHash(topic));
    const now = Date.now();
    // A resent event (same id) is how a subscriber restores sync (§2.6, §3.2.1): accept it again, but
    // not sooner than RESEND_MIN_SECONDS after the last time, so that resends cannot loop.
    const minGap = this.config.resendMinSeconds * 1000;
    const previous = this.loggedEvent(req.notification.id);
    if (previous && minGap > 0 && now - previous.accepted_at < minGap) {
      const wait = Math.ceil((previous.accepted_at + minGap - now) / 1000);
      return { ...fail(429, "throttled", `event ${req.notification.id} was accepted ${now - previous.accepted_at} ms ago; resend it no sooner than ${this.config.resendMinSeconds} s after the previous one`), retryAfter: wait };
    }
    // Acknowledgements are tracked for every event but SyncError: no SyncError about a SyncError.
    const tracked = req.eventName !== "SyncError";
    const ackDue = now + this.config.ackTimeoutSeconds * 1000;
    const wroteAckRow = tracked && !this.acks.rowSet;
    let out: Notification = req.notification;
    let frame = "";
    const applied = this.ctx.storage.transactionSync((): Result<number> => {
      // Serialized at most once: the same JSON is logged, stored as the open context and sent.
      const append = () => {
        frame = out === req.notification ? call.notification : JSON.stringify(out);
        const seq = this.store.appendEvent(out.id, req.eventName, frame, now, this.config.eventLogLimit);
        if (wroteAckRow) this.store.setDeadlineNoLater("ack", "", ackDue);
        return seq;
      };
      /** Applies the event to the topic's state and logs it; the log's seq, or why not. */
      const change = (): Result<number> => {
        switch (req.role) {
          case "open": {
            const versionId = crypto.randomUUID();
            out = withVersion(req.notification, versionId);
            const seq = append();
            this.store.upsertContext(req.anchor!, req.anchorType!, frame, versionId, seq);
            this.store.setCurrentAnchor(req.anchor);
            return ok(seq);
          }
          case "close": {
            const wasOpen = this.store.deleteContext(req.anchor!);
            if (this.store.currentAnchor() === req.anchor) this.store.setCurrentAnchor(undefined);
            // A close of something not open is broadcast anyway (idempotent for subscribers), and logged.
            if (!wasOpen) this.log("close.not-open", { event: req.eventName }, "warn");
            return ok(append());
          }
          case "home": {
            this.store.setCurrentAnchor(undefined);
            return ok(append());
          }
          case "update": {
            const result = applyUpdate(this.store, req, { perAnchor: this.config.maxContentBytesPerAnchor, perTopic: this.config.maxContentBytesPerTopic });
            if (!result.ok) return result;
            out = result.value;
            return ok(append());
          }
          default:
            return ok(append());
        }
      };
      const result = change();
      // Bounded every CONTEXT_TRIM_EVERY events of any kind, not on every open (docs/decisions.md).
      if (result.ok && result.value % CONTEXT_TRIM_EVERY === 0) {
        const dropped = this.store.trimContexts(MAX_OPEN_CONTEXTS);
        if (dropped > 0) this.log("contexts.trimmed", { count: dropped }, "warn");
      }
      return result;
    });
    if (!applied.ok) {
      this.log("publish.rejected", { event: req.eventName, status: applied.status });
      count("fhircast_events_rejected_total", { status: String(applied.status) });
      return applied;
    }
    const seq = applied.value;
    if (wroteAckRow) {
      this.acks.rowSet = true;
      if (this.alarmAt === undefined || ackDue < this.alarmAt) this.scheduleAlarm();
    }
    this.noteLogged(out.id, seq, req.eventName, now);
    const anchor = anchorChange(req);
    const { sent, stalled } = this.sockets.broadcast(req.eventName, frame, { track: tracked ? seq : undefined, anchor });
    if (tracked) this.acks.delivered(seq, now, sent);
    // Derived opens are awaited like the event itself (docs/decisions.md "Synchronization").
    const derivedStalled = new Set<string>();
    if (req.role === "open") {
      for (const d of impliedOpens(out)) {
        const derived = this.sockets.broadcastDerived(d, JSON.stringify(d.notification), req.eventName, { id: d.notification.id, due: ackDue });
        if (derived.sent > 0) this.awaitAnswers(ackDue);
        for (const sub of derived.stalled) derivedStalled.add(sub);
      }
    }
    this.sockets.toInspectors(() => inspectorEvent(seq, now, out), seq);
    // Past the count or the byte budget (SOCKET_BUFFER_BYTES): ended, so the hub stops sending to it.
    for (const s of stalled) {
      this.outOfSync(s.sub, { eventId: out.id, eventName: req.eventName }, { kind: "stalled", pending: s.pending, ...(s.bytes !== undefined ? { bytes: s.bytes } : {}) }, true);
    }
    for (const sub of derivedStalled) {
      if (!this.sockets.get(sub)) continue; // already ended above
      this.outOfSync(sub, { eventId: out.id, eventName: req.eventName }, { kind: "stalled", pending: MAX_AWAITED + 1 }, true);
    }
    this.log("publish", { event: req.eventName, seq, delivered: sent });
    count("fhircast_events_accepted_total", { event: req.eventName });
    count("fhircast_deliveries_total", {}, sent);
    return ok({ seq });
  }

  // ---- synchronization (§2.5, §3.2.1) -----------------------------------------------------------

  /**
   * The event log's index in memory, by id (a resend moves to the end): acknowledgements (N per event)
   * and the resend check never query SQL. Loaded once per instance; it keeps at least as many ids as
   * the log holds rows, so an id it lacks is not in the log either.
   */
  private logIndex: Map<string, { seq: number; name: string; accepted_at: number }> | undefined;

  private loggedEvents(): Map<string, { seq: number; name: string; accepted_at: number }> {
    if (!this.logIndex) {
      this.logIndex = new Map();
      for (const e of this.store.eventIndex()) this.noteLogged(e.id, e.seq, e.name, e.accepted_at);
    }
    return this.logIndex;
  }

  private noteLogged(id: string, seq: number, name: string, acceptedAt: number): void {
    const index = this.loggedEvents();
    index.delete(id);
    index.set(id, { seq, name, accepted_at: acceptedAt });
    // The log holds at most EVENT_LOG_LIMIT + TRIM_EVERY - 1 rows (store.appendEvent).
    if (index.size > this.config.eventLogLimit + TRIM_EVERY) index.delete(index.keys().next().value!);
  }

  private loggedEvent(id: string): { seq: number; name: string; accepted_at: number } | undefined {
    return this.loggedEvents().get(id);
  }

  /**
   * A subscriber failed an event: distribute one SyncError about it to the topic's other SyncError
   * subscribers (docs/decisions.md), and, when `unsubscribe`, end its subscription.
   */
  private outOfSync(sub: string, failed: { eventId: string; eventName: string }, failure: SyncFailure, unsubscribe: boolean): void {
    const row = this.store.subscription(sub);
    const ws = this.sockets.get(sub);
    const att = ws ? this.sockets.attachment(ws) : undefined;
    const name = att?.name ?? row?.name ?? row?.client_id ?? sub;
    const now = Date.now();
    const event = syncError(this.topicName(), name, failed, failure, now);
    const frame = JSON.stringify(event);
    const seq = this.ctx.storage.transactionSync(() => this.store.appendEvent(event.id, "SyncError", frame, now, this.config.eventLogLimit));
    this.noteLogged(event.id, seq, "SyncError", now);
    const { sent } = this.sockets.broadcast("SyncError", frame, { exclude: sub });
    this.sockets.noteSyncError(sub, failure.kind, event.timestamp);
    this.sockets.toInspectors(() => inspectorEvent(seq, now, event), seq);
    this.log("syncerror", { sub, reason: failure.kind, delivered: sent }, "warn");
    count("fhircast_syncerrors_total", { reason: failure.kind });
    count("fhircast_events_accepted_total", { event: "SyncError" });
    count("fhircast_deliveries_total", {}, sent);
    if (unsubscribe && row) {
      const reason =
        failure.kind === "stalled" ? "subscriber stopped reading" : "unresponsive: events were not acknowledged";
      this.endSubscription(row, reason);
    }
  }

  // ---- current context (§2.9) ----------------------------------------------------------------

  /**
   * The current context: the most recent open's context exactly as opened, plus its content Bundle;
   * `eventName` is that open's event, for the caller's scope check.
   */
  async currentContext(): Promise<{ context: CurrentContext; eventName?: string }> {
    if (!this.ready) return { context: EMPTY_CONTEXT };
    const anchor = this.store.currentAnchor();
    const row = anchor ? this.store.context(anchor) : undefined;
    if (!row) return { context: EMPTY_CONTEXT };
    const open = JSON.parse(row.open_event) as Notification;
    const content: ContextEntry = { key: "content", resource: this.store.contentBundle(row.anchor, row.version_id) };
    return {
      context: { "context.type": row.anchor_type, "context.versionId": row.version_id, context: [...open.event.context, content] },
      eventName: open.event["hub.event"],
    };
  }

  // ---- WebSocket events (hibernation API) --------------------------------------------------------

  /**
   * Acknowledgements `{id, status}` are the only frame subscribers send (§2.5). `status` may be a
   * number, a string or absent (success). Anything else is ignored, never thrown on (OHIF, for one,
   * sends {"hub.channel.endpoint": …} after connecting).
   */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (frameBytes(message) > MAX_FRAME_BYTES) {
      this.refuseFrame(ws);
      return;
    }
    if (typeof message !== "string") return;
    if (this.sockets.noteInspectorSeen(ws, message)) return;
    if (!this.ready) return;
    const parsed = parseAck(message);
    if (!parsed) return;
    const att = this.sockets.attachment(ws);
    if (!att) return;
    const outcome = ackOutcome(parsed.status);
    // A replayed or derived event this socket owes an answer to (a replayed one may also be in the log).
    const awaitedName = this.sockets.answerAwaited(att.sub, parsed.id, outcome.success);
    const event = this.loggedEvent(parsed.id);
    // Each event is judged once per subscriber: a second answer, or one for an untracked event, is ignored.
    const live = event !== undefined && this.sockets.answer(att.sub, event.seq, outcome.success);
    if (live) this.acks.answered(event.seq);
    if (!live && awaitedName === undefined) return;
    count("fhircast_acks_total", { outcome: outcome.success ? "success" : outcome.failure.kind });
    if (outcome.success) return;
    this.outOfSync(att.sub, { eventId: parsed.id, eventName: awaitedName ?? event!.name }, outcome.failure, false);
  }

  /**
   * An oversized frame: the hub ends the subscription and closes with 1009. The subscription is
   * removed first, so the echoed close is not mistaken for the subscriber's abnormal close.
   */
  private refuseFrame(ws: WebSocket): void {
    const att = this.sockets.attachment(ws);
    const row = att && this.ready ? this.store.subscription(att.sub) : undefined;
    if (row) {
      this.removeSubscription(row.id);
      this.log("frame.refused", { sub: row.id }, "warn");
    }
    closeSocket(ws, 1009, `frames over ${MAX_FRAME_BYTES} bytes are refused`);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.dropSocket(ws, code);
    void reason;
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.dropSocket(ws, 1006);
  }

  // ---- the inspector ------------------------------------------------------------------------

  /** A snapshot of the topic for the inspector: subscribers, open contexts, recent events. */
  async inspect(): Promise<InspectView> {
    const now = Date.now();
    if (!this.ready) return { topic: "", subscribers: [], contexts: [], events: [] };
    const atts = new Map(this.sockets.attachments().map((a) => [a.sub, a]));
    const current = this.store.currentAnchor();
    return {
      topic: this.topicName(),
      subscribers: this.store.subscriptions().map((r) => {
        const a = atts.get(r.id);
        return {
          id: r.id,
          name: r.name,
          events: r.events.split(","),
          connected: r.connected_at !== null,
          leaseSecondsLeft: r.connected_at === null || r.expires_at === null ? null : Math.max(0, Math.round((r.expires_at - now) / 1000)),
          pendingAcks: (a?.pending?.length ?? 0) + (a?.awaiting?.length ?? 0),
          missedAcks: a?.misses ?? 0,
          lastSyncError: a?.lastSyncError ?? null,
        };
      }),
      // Open contexts and recent events within a byte budget, whatever the topic holds.
      ...inspection(this.store, this.topicName(), current),
    };
  }

  /**
   * A socket that closed ends its subscription (requirements §3.6, A39). A close by the subscriber
   * with a code other than 1000/1001 is a SyncError (§2.5); closes the hub started are not.
   */
  private dropSocket(ws: WebSocket, code: number): void {
    if (this.sockets.isInspector(ws)) {
      this.sockets.forgetInspector(ws);
      reciprocateClose(ws, code);
      return;
    }
    const att = this.sockets.attachment(ws);
    if (!att || !this.ready) return;
    const row = this.store.subscription(att.sub);
    if (row && code !== 1000 && code !== 1001) {
      const pendingSeq = att.pending?.[0];
      const awaited = att.awaiting?.[0];
      const failed =
        (pendingSeq !== undefined ? this.store.eventBySeq(pendingSeq) : undefined) ??
        (awaited ? { id: awaited[0], name: awaited[1] } : undefined) ??
        this.store.lastEventOf(att.events);
      this.outOfSync(att.sub, { eventId: failed?.id ?? "none", eventName: failed?.name ?? "none" }, { kind: "closed", code }, false);
    }
    if (row) {
      this.removeSubscription(att.sub);
      this.log("disconnect", { sub: att.sub, code });
    } else {
      this.sockets.forget(att.sub);
    }
    reciprocateClose(ws, code);
  }

  // ---- deadlines -----------------------------------------------------------------------------

  /** Runs every due deadline. Alarms are at-least-once: each handler is idempotent. */
  override async alarm(): Promise<void> {
    this.alarmAt = undefined; // the alarm that fired is consumed
    const now = Date.now();
    if (this.sockets.expireInspectors(now) > 0) this.log("inspector.expired", {});
    if (!this.ready) {
      this.scheduleAlarm();
      return;
    }
    let acksDue = false;
    for (const d of this.store.dueDeadlines(now)) {
      if (d.kind === "connect") {
        const row = this.store.subscription(d.ref);
        if (row && row.connected_at === null) {
          this.store.deleteSubscription(d.ref);
          this.log("endpoint.expired", { sub: d.ref });
        }
        this.store.deleteDeadline("connect", d.ref);
      } else if (d.kind === "lease") {
        const row = this.store.subscription(d.ref);
        if (row && row.expires_at !== null && row.expires_at <= now) {
          this.endSubscription(row, "subscription expired");
          this.log("lease.expired", { sub: d.ref });
        } else if (!row) {
          this.store.deleteDeadline("lease", d.ref);
        }
      } else if (d.kind === "ack") {
        // One row (older versions kept one per event: any ref is consumed the same way).
        this.store.deleteDeadline("ack", d.ref);
        acksDue = true;
      } else if (d.kind === "heartbeat") {
        this.store.deleteDeadline("heartbeat", "");
        this.heartbeat(now);
      } else if (d.kind === "idle") {
        if (this.deleteIfIdle(now)) return;
      }
    }
    if (acksDue) this.checkAcks(now);
    this.scheduleAlarm();
  }

  /** Raises a timeout SyncError for every recipient that has not answered an event in time (§2.5). */
  private checkAcks(now: number): void {
    const timeoutMs = this.config.ackTimeoutSeconds * 1000;
    const timeout: SyncFailure = { kind: "timeout", seconds: this.config.ackTimeoutSeconds };
    const { seqs, next: nextLive } = this.acks.takeOverdue(now, timeoutMs, (from) => this.store.acceptedTimes(from));
    const misses: { sub: string; eventId: string; eventName: string; due: number }[] = [];
    for (const seq of seqs) {
      const missed = this.sockets.takeMissed(seq);
      const event = missed.length > 0 ? this.store.eventBySeq(seq) : undefined;
      const due = (event ? (this.loggedEvent(event.id)?.accepted_at ?? 0) : 0) + timeoutMs;
      for (const m of missed) misses.push({ sub: m.sub, eventId: event?.id ?? "unknown", eventName: event?.name ?? "unknown", due });
    }
    // Replayed and derived events, judged the same way (each socket holds their due times).
    const awaited = this.sockets.takeOverdueAwaited(now);
    for (const m of awaited.missed) misses.push({ sub: m.sub, eventId: m.id, eventName: m.name, due: m.due });
    // Oldest first, whichever kind: the event a subscriber failed first is the one reported, and the
    // miss that makes it unresponsive ends it before any later one is (each takes* counted them all).
    misses.sort((a, b) => a.due - b.due);
    const count = new Map<string, number>();
    for (const m of misses) count.set(m.sub, (count.get(m.sub) ?? 0) + 1);
    const seen = new Map<string, number>();
    for (const m of misses) {
      if (!this.sockets.get(m.sub)) continue; // already ended as unresponsive by an earlier miss
      const nth = (seen.get(m.sub) ?? 0) + 1;
      seen.set(m.sub, nth);
      const missesNow = this.sockets.misses(m.sub) - count.get(m.sub)! + nth;
      this.outOfSync(m.sub, { eventId: m.eventId, eventName: m.eventName }, timeout, missesNow >= this.config.unresponsiveThreshold);
    }
    const soonest = Math.min(nextLive ?? Infinity, awaited.next ?? Infinity);
    const next = soonest === Infinity ? undefined : Math.max(soonest, now + ACK_CHECK_GAP_MS);
    this.acks.rowSet = next !== undefined;
    if (next !== undefined) this.store.setDeadline("ack", "", next);
  }

  /** Whether a subscription to `events` gets the legacy heartbeat (the setting is on and it asked for it). */
  private wantsHeartbeat(events: readonly string[]): boolean {
    return this.config.heartbeatSeconds > 0 && events.includes(HEARTBEAT.name);
  }

  /**
   * The legacy `heartbeat` event (STU3 ballots; removed from 3.0.0) for older clients, only when
   * HEARTBEAT_SECONDS > 0 and only to subscriptions that list it (STU3 forbids sending events a
   * subscriber did not subscribe to). Not logged, not acknowledged. It stops when nobody wants it; a
   * connect or re-subscribe that asks for it starts it again.
   */
  private heartbeat(now: number): void {
    if (this.config.heartbeatSeconds === 0) return;
    const frame = JSON.stringify({
      timestamp: new Date(now).toISOString(),
      id: crypto.randomUUID(),
      event: { "hub.topic": this.topicName(), "hub.event": HEARTBEAT.name, context: [{ key: "period", decimal: String(this.config.heartbeatSeconds) }] },
    });
    const { sent } = this.sockets.broadcast(HEARTBEAT.name, frame);
    if (sent > 0) this.store.setDeadline("heartbeat", "", now + this.config.heartbeatSeconds * 1000);
  }

  /** Deletes the topic's storage when it has no subscribers and no activity for the idle time. */
  private deleteIfIdle(now: number): boolean {
    const idleMs = this.config.topicIdleSeconds * 1000;
    const last = Math.max(Number(this.store.getMeta("last_activity") ?? 0), this.store.lastEventAt());
    if (this.store.subscriptionCount() === 0 && this.sockets.subscriptionIds().length === 0 && last + idleMs <= now) {
      void this.ctx.storage.deleteAlarm();
      void this.ctx.storage.deleteAll();
      this.ready = false;
      this.alarmAt = undefined;
      this.acks.reset();
      this.logIndex = undefined;
      this.log("topic.deleted", {});
      this.scheduleAlarm(); // live inspector sockets still end with their tokens
      return true;
    }
    // Subscribed: look again a full idle period from now; otherwise when the quiet period ends.
    const due = this.store.subscriptionCount() > 0 ? now + idleMs : Math.max(last + idleMs, now + 1000);
    this.store.setDeadline("idle", "", due);
    return false;
  }
}

/** Only the client that created a subscription may change or cancel it (§4.3). */
function ownership(row: SubscriptionRow, clientId: string | undefined) {
  if (row.client_id !== null && row.client_id !== clientId) {
    return fail(403, "forbidden", "only the client that created this subscription may change or cancel it");
  }
  return undefined;
}

/** The anchor an open or close concerns, as `{role, type, id}`. */
function anchorChange(req: PublishRequest): AnchorChange | undefined {
  if ((req.role !== "open" && req.role !== "close") || !req.anchor || !req.anchorType) return undefined;
  return { role: req.role, type: req.anchorType, id: req.anchor.slice(req.anchorType.length + 1) };
}

/** Answers a close with the same code; 1005, 1006 and 1015 must never be sent in a close frame. */
function reciprocateClose(ws: WebSocket, code: number): void {
  if (code !== 1005 && code !== 1006 && code !== 1015) closeSocket(ws, code, "");
}

/** An acknowledgement `{id, status?}` (§2.5), or undefined for any other frame (ignored, never thrown). */
function parseAck(message: string): Ack | undefined {
  try {
    const v = JSON.parse(message) as { id?: unknown; status?: unknown };
    if (typeof v.id !== "string" || v.id === "") return undefined;
    if (v.status !== undefined && typeof v.status !== "number" && typeof v.status !== "string") return undefined;
    return { id: v.id, status: v.status as Ack["status"] };
  } catch {
    return undefined;
  }
}

/** The earlier of two optional times. */
function earliest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
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

/** A frame's size in bytes, counted exactly only when it can matter (a UTF-8 character takes up to 3). */
function frameBytes(message: string | ArrayBuffer): number {
  if (typeof message !== "string") return message.byteLength;
  return message.length * 3 <= MAX_FRAME_BYTES ? message.length : new TextEncoder().encode(message).byteLength;
}

function inspectorEvent(seq: number, acceptedAt: number, event: Notification): string {
  const frame: InspectorFrame = { type: "event", seq, acceptedAt: new Date(acceptedAt).toISOString(), event };
  return JSON.stringify(frame);
}

function subscribersChanged(): string {
  const frame: InspectorFrame = { type: "changed", what: "subscribers" };
  return JSON.stringify(frame);
}

/** The event as distributed: the hub's versionId at event level (requirements A3). */
function withVersion(n: Notification, versionId: string): Notification {
  return { ...n, event: { ...n.event, "context.versionId": versionId } };
}

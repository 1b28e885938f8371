// FhircastClient: a FHIRcast 3.0.0 subscriber over WebSocket for browsers, Node ≥ 22 and Workers.
// Discovery, subscription, confirmation, acknowledgements, publishing, current context, content
// sharing versions, reconnect with backoff, and a clean close. Platform APIs only.
import { EventCatalog, PROPRIETARY_NAME } from "../fhircast/catalog";
import { syncErrorContext, syncErrorDetails } from "../fhircast/syncerror";
import type { Confirmation, ContextEntry, CurrentContext, Denial, Notification, WellKnown } from "../fhircast/wire";
import { backoffDelay, RECONNECT_DEFAULTS, type ReconnectOptions } from "./backoff";
import type { AckStatus, ClientEventMap, ReceivedEvent } from "./client-events";
import { TypedEmitter, type Listener } from "./emitter";
import {
  buildEvent,
  checkEvent,
  type ContentChanges,
  contextFor,
  type ContextValues,
  EventValidationError,
  type EventOptions,
  type FhirResource,
  referenceEntry,
  type ReferenceLike,
  resourceEntry,
  updateBundle,
} from "./event-builder";
import { grantedEvents, parseFrame } from "./frames";
import { HubError, HubHttp } from "./hub-http";
import type { FhircastClientOptions } from "./options";
import { attach, defaultSocketFactory, type SocketFactory, type SocketLike, tryClose, trySend } from "./socket";
import { VersionTracker } from "./versions";

export type ClientState = "idle" | "connecting" | "connected" | "reconnecting" | "denied" | "closing" | "closed";

/** The hub denied the subscription (fhircast.hl7.org/STU3/2-4-Subscribing.html). */
export class DeniedError extends Error {
  override readonly name = "DeniedError";
  constructor(readonly denial: Denial) {
    super(`subscription denied${denial["hub.reason"] ? `: ${denial["hub.reason"]}` : ""}`);
  }
}

export interface PublishResult {
  /** The event id (the hub reuses it in the broadcast). */
  id: string;
  /** The hub's 2xx status (202). */
  status: number;
  /** Canonical event name. */
  eventName: string;
  notification: Notification;
}

export type UpdateResult =
  | (PublishResult & { accepted: true; basedOn: string })
  | {
      accepted: false;
      status: 409;
      error: HubError;
      /** The version the refused update was based on. */
      basedOn: string;
      /** The current context, re-read after the refusal. */
      current: CurrentContext;
      /** The anchor's version now tracked (send the retry against it); undefined if still unknown. */
      versionId?: string;
    };

interface Connection {
  ws: SocketLike;
  endpoint: string;
  confirmed: boolean;
  reconnect: boolean;
  closed: Promise<{ code: number; reason: string }>;
  pending?: { resolve(c: Confirmation): void; reject(e: Error): void; timer: ReturnType<typeof setTimeout> };
}

const MAX_TIMER_MS = 2_147_483_647;
/** How long close() waits for the connection to end once the hub has confirmed the unsubscribe. */
const CLOSE_GRACE_MS = 1500;

/** How the socket closed: `complete` is false when close() stopped waiting for the handshake. */
export interface CloseResult {
  code: number;
  reason: string;
  complete: boolean;
}

export class FhircastClient {
  readonly topic: string;
  /** Content-sharing versions per anchor (`Type/id` → `context.versionId`). */
  readonly versions: VersionTracker;
  private readonly http: HubHttp;
  private readonly emitter = new TypedEmitter<ClientEventMap>();
  private readonly events: readonly string[];
  private readonly options: FhircastClientOptions;
  private readonly timeoutMs: number;
  private readonly socketFactory: SocketFactory;
  private readonly reconnectOptions: Required<ReconnectOptions> | undefined;
  private catalogValue = new EventCatalog();
  private wellKnownValue: WellKnown | undefined;
  private conn: Connection | undefined;
  private stateValue: ClientState = "idle";
  private confirmationValue: Confirmation | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private leaseTimer: ReturnType<typeof setTimeout> | undefined;
  private disconnectedAt: number | undefined;
  private attempts = 0;
  private closing: Promise<CloseResult> | undefined;
  private lastClose: CloseResult = { code: 1000, reason: "", complete: true };

  constructor(options: FhircastClientOptions) {
    if (!options.hubUrl) throw new TypeError("hubUrl is required");
    if (!options.topic) throw new TypeError("topic is required");
    if (!options.events || options.events.length === 0) throw new TypeError("events must name at least one event");
    this.options = options;
    this.topic = options.topic;
    this.events = [...options.events];
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.socketFactory = options.webSocket ?? defaultSocketFactory();
    this.reconnectOptions = options.reconnect === false ? undefined : { ...RECONNECT_DEFAULTS, ...options.reconnect };
    const f = options.fetch ?? ((input: string, init?: RequestInit) => fetch(input, init));
    this.http = new HubHttp(options.hubUrl, options.token, f, this.timeoutMs);
    this.versions = new VersionTracker(() => this.catalogValue);
  }

  // ---- state -------------------------------------------------------------------------------------

  get hubUrl(): string {
    return this.http.hubUrl;
  }
  get state(): ClientState {
    return this.stateValue;
  }
  /** The current subscription's WebSocket endpoint. */
  get endpoint(): string | undefined {
    return this.conn?.endpoint;
  }
  /** The last confirmation received. */
  get confirmation(): Confirmation | undefined {
    return this.confirmationValue;
  }
  /** The events the hub granted (may be fewer than asked for). */
  get grantedEvents(): string[] {
    return this.confirmationValue ? grantedEvents(this.confirmationValue) : [];
  }
  /** The hub's well-known configuration, once discovered. */
  get configuration(): WellKnown | undefined {
    return this.wellKnownValue;
  }
  /** The event catalog used to build and check events (with the hub's proprietary events once discovered). */
  get catalog(): EventCatalog {
    return this.catalogValue;
  }

  // ---- events ------------------------------------------------------------------------------------

  on<K extends keyof ClientEventMap>(type: K, listener: Listener<ClientEventMap[K]>): () => void {
    return this.emitter.on(type, listener);
  }
  off<K extends keyof ClientEventMap>(type: K, listener: Listener<ClientEventMap[K]>): void {
    this.emitter.off(type, listener);
  }
  once<K extends keyof ClientEventMap>(type: K, listener: Listener<ClientEventMap[K]>): () => void {
    return this.emitter.once(type, listener);
  }
  /** The next `type` payload satisfying `filter`, or a rejection after `timeoutMs`. */
  next<K extends keyof ClientEventMap>(type: K, filter?: (p: ClientEventMap[K]) => boolean, timeoutMs = this.timeoutMs): Promise<ClientEventMap[K]> {
    return this.emitter.next(type, filter, timeoutMs);
  }

  // ---- discovery and subscription ----------------------------------------------------------------

  /** Reads `{hub.url}/.well-known/fhircast-configuration` (once) and learns the hub's proprietary events. */
  async discover(): Promise<WellKnown> {
    if (this.wellKnownValue) return this.wellKnownValue;
    const wk = await this.http.discover();
    const base = new EventCatalog();
    const proprietary = wk.eventsSupported.filter((n) => !base.get(n) && PROPRIETARY_NAME.test(n));
    this.catalogValue = new EventCatalog(proprietary);
    this.wellKnownValue = wk;
    return wk;
  }

  /**
   * Discovers the hub, subscribes, connects and resolves with the confirmation. The replay of current
   * context follows as "event"s. Rejects on a refusal (HubError), a denial (DeniedError) or a timeout.
   */
  async connect(): Promise<Confirmation> {
    if (this.stateValue === "connected" && this.confirmationValue) return this.confirmationValue;
    if (this.stateValue === "closing" || this.stateValue === "connecting" || this.stateValue === "reconnecting") {
      throw new Error(`connect() while ${this.stateValue}`);
    }
    this.stateValue = "connecting";
    try {
      return await this.establish(false);
    } catch (e) {
      if (this.stateValue === "connecting") this.stateValue = "idle";
      throw e;
    }
  }

  private async establish(reconnect: boolean): Promise<Confirmation> {
    await this.discover();
    const endpoint = await this.http.subscribe({
      topic: this.topic,
      events: this.events,
      leaseSeconds: this.options.leaseSeconds,
      subscriberName: this.options.subscriberName,
    });
    if (this.stateValue === "closing" || this.stateValue === "closed") {
      await this.http.unsubscribe(this.topic, endpoint).catch(() => undefined);
      throw new Error("the client was closed while subscribing");
    }
    return this.open(endpoint, reconnect);
  }

  private open(endpoint: string, reconnect: boolean): Promise<Confirmation> {
    return new Promise<Confirmation>((resolve, reject) => {
      let closedResolve!: (v: { code: number; reason: string }) => void;
      const closed = new Promise<{ code: number; reason: string }>((r) => (closedResolve = r));
      let ws: SocketLike;
      try {
        ws = this.socketFactory(endpoint);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      const conn: Connection = { ws, endpoint, confirmed: false, reconnect, closed };
      const timer = setTimeout(() => {
        conn.pending = undefined;
        tryClose(ws, 1000, "no confirmation");
        reject(new Error(`no subscription confirmation within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      conn.pending = { resolve, reject, timer };
      this.conn = conn;
      attach(ws, {
        open: () => this.emitter.emit("connect", { endpoint, reconnect }),
        message: (data) => this.onFrame(conn, data),
        close: (code, reason) => {
          closedResolve({ code, reason });
          this.onClose(conn, code, reason);
        },
      });
    });
  }

  private settle(conn: Connection, outcome: { confirmation: Confirmation } | { error: Error }): void {
    const p = conn.pending;
    if (!p) return;
    conn.pending = undefined;
    clearTimeout(p.timer);
    if ("error" in outcome) p.reject(outcome.error);
    else p.resolve(outcome.confirmation);
  }

  private onFrame(conn: Connection, data: unknown): void {
    const frame = parseFrame(data);
    switch (frame.kind) {
      case "confirmation": {
        const c = frame.confirmation;
        const renewal = conn.confirmed;
        conn.confirmed = true;
        this.confirmationValue = c;
        if (!renewal && this.stateValue !== "closing" && this.stateValue !== "closed") this.stateValue = "connected";
        const wasDown = renewal ? undefined : this.disconnectedAt;
        this.emitter.emit("confirmed", {
          confirmation: c,
          events: grantedEvents(c),
          leaseSeconds: c["hub.lease_seconds"],
          reconnect: conn.reconnect,
          renewal,
        });
        if (wasDown !== undefined) {
          // Emitted before the replay frames are handled, so the app sees the gap, then the context.
          const attempts = this.attempts;
          this.disconnectedAt = undefined;
          this.attempts = 0;
          this.emitter.emit("reconnected", { downMs: Date.now() - wasDown, attempts, disconnectedAt: wasDown, endpoint: conn.endpoint });
        }
        this.scheduleRenewal(c["hub.lease_seconds"]);
        this.settle(conn, { confirmation: c });
        return;
      }
      case "denial": {
        const closing = this.stateValue === "closing" || this.stateValue === "closed";
        if (!closing) {
          this.stateValue = "denied";
          this.clearTimers();
          this.emitter.emit("denied", { denial: frame.denial, reason: frame.denial["hub.reason"] });
        }
        this.settle(conn, { error: new DeniedError(frame.denial) });
        return;
      }
      case "event":
        void this.onEvent(conn, frame.notification);
        return;
      case "pong":
        return;
      case "unknown":
        this.emitter.emit("error", { error: new Error(`unexpected frame (${frame.problem}): ${frame.raw.slice(0, 200)}`), during: "frame" });
        return;
    }
  }

  private onClose(conn: Connection, code: number, reason: string): void {
    this.lastClose = { code, reason, complete: true };
    this.settle(conn, { error: new Error(`the socket closed (${code}${reason ? ` ${reason}` : ""}) before the subscription was confirmed`) });
    if (this.conn !== conn) return;
    this.conn = undefined;
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.leaseTimer = undefined;
    if (this.stateValue !== "connected" || !conn.confirmed) return;
    this.dropped(code, reason);
  }

  // ---- reconnect -----------------------------------------------------------------------------------

  private dropped(code: number, reason: string): void {
    const at = Date.now();
    this.disconnectedAt = at;
    this.attempts = 0;
    this.stateValue = this.reconnectOptions ? "reconnecting" : "closed";
    this.emitter.emit("disconnect", { code, reason, at });
    if (this.reconnectOptions) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const o = this.reconnectOptions!;
    this.attempts++;
    if (this.attempts > o.maxAttempts) {
      this.stateValue = "closed";
      this.emitter.emit("error", { error: new Error(`gave up re-subscribing after ${o.maxAttempts} attempts`), during: "reconnect" });
      return;
    }
    const delayMs = backoffDelay(this.attempts, o);
    this.emitter.emit("reconnect", { attempt: this.attempts, delayMs });
    this.reconnectTimer = setTimeout(() => void this.attemptReconnect(), delayMs);
  }

  private async attemptReconnect(): Promise<void> {
    this.reconnectTimer = undefined;
    if (this.stateValue !== "reconnecting") return;
    try {
      await this.establish(true);
    } catch (e) {
      if (this.stateValue !== "reconnecting") return; // denied or closed meanwhile
      this.emitter.emit("error", { error: e instanceof Error ? e : new Error(String(e)), during: "reconnect" });
      this.scheduleReconnect();
    }
  }

  // ---- lease renewal (re-subscribe on the same endpoint, fhircast.hl7.org/STU3/2-4-Subscribing.html) -------------------------------------

  private scheduleRenewal(leaseSeconds: number): void {
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.leaseTimer = undefined;
    if (this.options.renewLease === false || !(leaseSeconds > 0)) return;
    this.leaseTimer = setTimeout(() => void this.renew(leaseSeconds), Math.min(MAX_TIMER_MS, Math.max(1000, leaseSeconds * 800)));
  }

  private async renew(leaseSeconds: number): Promise<void> {
    this.leaseTimer = undefined;
    const conn = this.conn;
    if (!conn || this.stateValue !== "connected") return;
    try {
      await this.http.subscribe({
        topic: this.topic,
        events: this.events,
        leaseSeconds: this.options.leaseSeconds,
        subscriberName: this.options.subscriberName,
        endpoint: conn.endpoint,
      });
      // The hub answers with a new confirmation on the socket, which schedules the next renewal.
    } catch (e) {
      this.emitter.emit("error", { error: e instanceof Error ? e : new Error(String(e)), during: "renew" });
      if (this.conn === conn && this.stateValue === "connected") {
        this.leaseTimer = setTimeout(() => void this.renew(leaseSeconds), Math.max(1000, leaseSeconds * 100));
      }
    }
  }

  // ---- receiving -------------------------------------------------------------------------------------

  private describe(n: Notification): ReceivedEvent {
    const spec = this.catalogValue.get(n.event["hub.event"]);
    const anchor = this.versions.observe(n);
    const v = n.event["context.versionId"];
    const prior = n.event["context.priorVersionId"];
    return {
      id: n.id,
      timestamp: n.timestamp,
      name: spec?.name ?? n.event["hub.event"],
      role: spec?.role,
      anchor,
      context: n.event.context,
      ...(typeof v === "string" ? { versionId: v } : {}),
      ...(typeof prior === "string" ? { priorVersionId: prior } : {}),
      notification: n,
    };
  }

  /** Hands the event to the listeners, then acknowledges it with the status they chose (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html). */
  private async onEvent(conn: Connection, n: Notification): Promise<void> {
    // The legacy heartbeat (STU3 ballots) is neither an event for the app nor acknowledged.
    if (n.event["hub.event"].toLowerCase() === "heartbeat") return;
    const received = this.describe(n);
    if (received.name === "SyncError") this.emitter.emit("syncerror", { ...syncErrorDetails(n), event: received });
    const results = this.emitter.emit("event", received);
    const settled = await Promise.allSettled(results.map((r) => (r.ok ? Promise.resolve(r.value) : Promise.reject(r.error))));
    let status: AckStatus = 200;
    for (const s of settled) {
      if (s.status === "rejected") {
        status = 500;
        this.emitter.emit("error", { error: s.reason instanceof Error ? s.reason : new Error(String(s.reason)), during: "ack" });
        break;
      }
      if (typeof s.value === "number" && Number.isInteger(s.value)) {
        status = s.value;
        break;
      }
    }
    trySend(conn.ws, JSON.stringify({ id: n.id, status }));
  }

  // ---- sending ---------------------------------------------------------------------------------------

  /**
   * Publishes an event (fhircast.hl7.org/STU3/2-6-SendEventNotification.html). `context` is a list of entries or values by key (`{ patient }`), shaped
   * by the catalog. The event is checked with the hub's own validation first: an invalid one throws
   * EventValidationError without a request. A refusal by the hub throws HubError.
   */
  async publish(name: string, context: ContextEntry[] | ContextValues, opts: EventOptions = {}): Promise<PublishResult> {
    const entries = Array.isArray(context) ? context : contextFor(this.catalogValue, name, context);
    const n = buildEvent(this.topic, name, entries, opts);
    let req;
    try {
      req = checkEvent(n, this.catalogValue);
    } catch (e) {
      // A proprietary event is known only after discovery.
      if (!(e instanceof EventValidationError) || e.code !== "not-supported" || this.wellKnownValue) throw e;
      await this.discover();
      req = checkEvent(n, this.catalogValue);
    }
    n.event["hub.event"] = req.eventName;
    const status = await this.http.publish(n);
    return { id: n.id, status, eventName: req.eventName, notification: n };
  }

  /** GET current context (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html); also refreshes the tracked version of the current anchor. */
  async getContext(): Promise<CurrentContext> {
    const cc = await this.http.currentContext(this.topic);
    this.versions.observeCurrent(cc);
    return cc;
  }

  /**
   * Content sharing (fhircast.hl7.org/STU3/2-10-ContentSharing.html): sends `{Type}-update` for `anchor` ("DiagnosticReport/123") against its
   * tracked `context.versionId`. On 409 (someone else updated first) it re-reads the current context,
   * emits "resync" and resolves `{accepted: false, versionId}`: re-apply your change and call update again.
   */
  async update(
    anchor: string,
    changes: ContentChanges | FhirResource,
    opts: EventOptions & { patient?: ReferenceLike } = {},
  ): Promise<UpdateResult> {
    const type = anchor.split("/")[0] ?? "";
    const name = `${type}-update`;
    const spec = this.catalogValue.get(name);
    if (!spec?.anchorKey) throw new EventValidationError(400, "not-supported", `the catalog has no ${name} event`);
    let basedOn = opts.versionId ?? this.versions.get(anchor);
    if (!basedOn) {
      await this.getContext();
      basedOn = this.versions.get(anchor);
      if (!basedOn) throw new Error(`no context.versionId known for ${anchor}: it was not opened while subscribed and is not the current context`);
    }
    const bundle = "resourceType" in changes && changes.resourceType === "Bundle" ? (changes as FhirResource) : updateBundle(changes as ContentChanges);
    const context: ContextEntry[] = [
      referenceEntry(spec.anchorKey, anchor),
      ...(opts.patient ? [referenceEntry("patient", opts.patient)] : []),
      resourceEntry("updates", bundle),
    ];
    const { patient: _patient, ...eventOpts } = opts;
    try {
      const r = await this.publish(name, context, { ...eventOpts, versionId: basedOn });
      return { ...r, accepted: true, basedOn };
    } catch (e) {
      if (!(e instanceof HubError) || e.status !== 409) throw e;
      const current = await this.http.currentContext(this.topic);
      const currentAnchor = this.versions.observeCurrent(current);
      const now = this.versions.get(anchor);
      this.emitter.emit("resync", { cause: "conflict", anchor: currentAnchor, versionId: current["context.versionId"], context: current });
      return { accepted: false, status: 409, error: e, basedOn, current, ...(now !== undefined && now !== basedOn ? { versionId: now } : {}) };
    }
  }

  /**
   * After acknowledging an event with 202, reports that this app could not follow it (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html): a
   * SyncError the hub distributes to the topic's SyncError subscribers.
   */
  sendSyncError(about: ReceivedEvent | { id: string; name: string }, diagnostics: string, opts: { issueCode?: string } = {}): Promise<PublishResult> {
    const name = this.options.subscriberName ?? "fhircast-client";
    return this.publish("SyncError", syncErrorContext({ id: about.id, name: about.name }, name, diagnostics, opts.issueCode));
  }

  // ---- closing -------------------------------------------------------------------------------------

  private clearTimers(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.reconnectTimer = undefined;
    this.leaseTimer = undefined;
  }

  /**
   * Unsubscribes over HTTP and closes the socket with 1000 (fhircast.hl7.org/STU3/2-4-Subscribing.html). Resolves with the close code once
   * the closing handshake completes, or, when the hub has ended the subscription but not yet torn the
   * connection down, after a short grace period (`complete: false`).
   */
  close(): Promise<CloseResult> {
    if (this.stateValue === "closed") return Promise.resolve(this.lastClose);
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<CloseResult> {
    this.stateValue = "closing";
    this.clearTimers();
    const conn = this.conn;
    let result: CloseResult = this.lastClose;
    if (conn) {
      let unsubscribed = false;
      try {
        await this.http.unsubscribe(this.topic, conn.endpoint);
        unsubscribed = true;
      } catch (e) {
        this.emitter.emit("error", { error: e instanceof Error ? e : new Error(String(e)), during: "unsubscribe" });
      }
      tryClose(conn.ws, 1000, "client closed");
      // After an unsubscribe the hub has sent its denial and close frame (1000); some runtimes
      // (wrangler dev) are slow to drop the connection after that, so do not wait long for it.
      const waitMs = unsubscribed ? Math.min(this.timeoutMs, CLOSE_GRACE_MS) : this.timeoutMs;
      let timer: ReturnType<typeof setTimeout> | undefined;
      result = await Promise.race([
        conn.closed.then((c) => ({ ...c, complete: true })),
        new Promise<CloseResult>((r) => {
          timer = setTimeout(() => r(unsubscribed ? { code: 1000, reason: "unsubscribed", complete: false } : { code: 1006, reason: "close timed out", complete: false }), waitMs);
        }),
      ]);
      clearTimeout(timer);
      this.settle(conn, { error: new Error("the client was closed") });
    }
    this.conn = undefined;
    this.stateValue = "closed";
    this.lastClose = result;
    this.emitter.emit("close", result);
    return result;
  }
}

// What a check gets to work with: sessions (topic + token), subscribe / publish / get-context over
// HTTP, subscriber sockets, and the hub's advertised features. Every socket a check opens is closed
// when the check ends; every wait is bounded by the kit's timeouts.
import { FORM, form, type HttpResult, isObject, jwtPayload, request } from "./http.ts";
import { type Feature, assert, brief, fail, skip, TransportError } from "./outcome.ts";
import { HubSocket, type AckPolicy, type WebSocketConstructor } from "./ws.ts";

export interface KitOptions {
  /** The hub's hub.url. */
  hubUrl: string;
  /** A fixed bearer token for every request. */
  token?: string;
  /** An OAuth token endpoint for client_credentials grants (scopes per check). */
  tokenUrl?: string;
  clientId?: string;
  clientSecret?: string;
  /** A fixed hub.topic for every check (then checks run one at a time). */
  topic?: string;
  /** HTTP request timeout (ms). */
  timeoutMs?: number;
  /** How long to wait for a frame that should arrive (ms). */
  waitMs?: number;
  /** How long to wait to be sure a frame does not arrive (ms). */
  quietMs?: number;
  /** Longest a single check may run (ms). */
  checkTimeoutMs?: number;
  /** Checks run at the same time (each on its own topic). */
  concurrency?: number;
  /** The WebSocket constructor (default: the global one; Node 20 has none, the CLI passes ws's). */
  webSocket?: WebSocketConstructor;
}

export const DEFAULTS = { timeoutMs: 10_000, waitMs: 5_000, quietMs: 1_000, checkTimeoutMs: 30_000, concurrency: 8 };

/** The probe that tells a hub that is gone from one slow request waits at most this long (ms). */
const PROBE_TIMEOUT_MS = 5_000;
/** Attempts of a probe whose requests are reset (see Shared.probe). */
const PROBE_ATTEMPTS = 5;

export const ALL_SCOPES = "fhircast/*.read fhircast/*.write";
export const DEFAULT_CLIENT = "fhircast-conformance";

/** A topic and the credentials a check uses for it. */
export interface Session {
  topic: string;
  token?: string;
  clientId: string;
  scope: string;
  /** Token lifetime in seconds, when known (token response `expires_in` or the JWT `exp`). */
  expiresIn?: number;
}

/** State shared by every check of a run. */
export class Shared {
  readonly opts: KitOptions & typeof DEFAULTS;
  wellKnown: Record<string, any> | undefined;
  features: Record<Feature, boolean>;
  /** The topic every check uses when topics cannot be fresh (fixed topic or topic-bound static token). */
  fixedTopic: string | undefined;
  /** Why reading the well-known document got no answer at all (the hub may be down from the start). */
  discoveryError: TransportError | undefined;
  private probing: Promise<TransportError | undefined> | undefined;
  private readonly tokens = new Map<string, Promise<{ token: string; topic?: string; expiresIn?: number }>>();

  constructor(opts: KitOptions) {
    this.opts = { ...DEFAULTS, ...stripUndefined(opts), hubUrl: opts.hubUrl.replace(/\/+$/, "") };
    this.wellKnown = undefined;
    const credentials = Boolean(opts.token || opts.tokenUrl);
    this.features = { getCurrentContext: false, contentSharing: false, syncError: false, credentials, tokenMinting: Boolean(opts.tokenUrl) };
    this.fixedTopic = opts.topic;
    if (!this.fixedTopic && opts.token && !opts.tokenUrl) {
      const claim = jwtPayload(opts.token)?.["hub.topic"];
      if (typeof claim === "string" && claim !== "") this.fixedTopic = claim;
    }
  }

  /** Reads `.well-known/fhircast-configuration` and derives the advertised features. */
  async discover(): Promise<void> {
    const url = `${this.opts.hubUrl}/.well-known/fhircast-configuration`;
    try {
      let res = await request(url, { timeoutMs: this.opts.timeoutMs });
      if ((res.status === 401 || res.status === 403) && this.opts.token) {
        res = await request(url, { timeoutMs: this.opts.timeoutMs, token: this.opts.token });
      }
      if (res.status === 200 && isObject(res.json)) this.wellKnown = res.json;
    } catch (e) {
      this.wellKnown = undefined;
      if (e instanceof TransportError) this.discoveryError = e;
    }
    const wk = this.wellKnown;
    this.features.getCurrentContext = wk?.capabilities?.supportsGetCurrentContext === true || wk?.getCurrentSupport === true;
    this.features.contentSharing = this.supports("DiagnosticReport-open", false) && this.supports("DiagnosticReport-update", false);
    this.features.syncError = this.supports("SyncError", false);
  }

  /**
   * Whether the hub still answers: a GET of its well-known document, with a short timeout. Any HTTP
   * answer counts; the TransportError when there is none. A reset is tried again (a few times, 50 ms
   * apart): right after a hub dies, requests go out on pooled keep-alive connections it had open and
   * are reset, which says less than a refused connect or a timeout, which are final. Concurrent
   * callers share one probe.
   */
  probe(): Promise<TransportError | undefined> {
    const once = () =>
      request(`${this.opts.hubUrl}/.well-known/fhircast-configuration`, { timeoutMs: Math.min(this.opts.timeoutMs, PROBE_TIMEOUT_MS) }).then(
        () => undefined,
        (e: unknown) => (e instanceof TransportError ? e : new TransportError(String(e))),
      );
    this.probing ??= (async () => {
      let e = await once();
      for (let i = 1; i < PROBE_ATTEMPTS && e && e.code !== "TIMEOUT" && e.code !== "ECONNREFUSED"; i++) {
        await new Promise((r) => setTimeout(r, 50));
        e = await once();
      }
      return e;
    })().finally(() => (this.probing = undefined));
    return this.probing;
  }

  /** Whether `eventsSupported` lists the event (case-insensitive); `fallback` when there is no list. */
  supports(event: string, fallback = true): boolean {
    const list = this.wellKnown?.eventsSupported;
    if (!Array.isArray(list)) return fallback;
    return list.some((e) => typeof e === "string" && e.toLowerCase() === event.toLowerCase());
  }

  /** A token from the token endpoint (client_credentials), cached per topic, scope and client. */
  mint(topic: string | undefined, scope: string, clientId: string): Promise<{ token: string; topic?: string; expiresIn?: number }> {
    const key = `${topic ?? ""}\n${scope}\n${clientId}`;
    let p = this.tokens.get(key);
    if (!p) {
      p = (async () => {
        const res = await request(this.opts.tokenUrl!, {
          method: "POST",
          headers: { "Content-Type": FORM, Accept: "application/json" },
          body: form({ grant_type: "client_credentials", client_id: clientId, client_secret: this.opts.clientSecret, scope, "hub.topic": topic }),
          timeoutMs: this.opts.timeoutMs,
        });
        const body = res.json;
        if (res.status !== 200 || !isObject(body) || typeof body.access_token !== "string") {
          throw new Error(`token endpoint ${this.opts.tokenUrl} answered ${res.status} ${brief(res.text, 200)} for scope "${scope}"`);
        }
        const expiresIn = typeof body.expires_in === "number" ? body.expires_in : undefined;
        const bound = typeof body["hub.topic"] === "string" && body["hub.topic"] !== "" ? (body["hub.topic"] as string) : undefined;
        return { token: body.access_token, topic: bound, expiresIn };
      })();
      this.tokens.set(key, p);
      p.catch(() => this.tokens.delete(key));
    }
    return p;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function tokenLifetime(token: string | undefined): number | undefined {
  const exp = token ? jwtPayload(token)?.exp : undefined;
  return typeof exp === "number" ? Math.floor(exp - Date.now() / 1000) : undefined;
}

export interface SubscribeOptions {
  /** Send the parameters as a JSON object instead of a form. */
  json?: boolean;
  /** A different token; `null` sends no Authorization header. */
  token?: string | null;
}

export interface PublishOptions {
  contentType?: string;
  /** POST to `{hub.url}/{topic}` instead of `{hub.url}`. */
  topicPath?: boolean;
  token?: string | null;
}

/** The toolbox of one check. */
export class CheckContext {
  readonly shared: Shared;
  private readonly sockets: HubSocket[] = [];

  constructor(shared: Shared) {
    this.shared = shared;
  }

  get hubUrl(): string {
    return this.shared.opts.hubUrl;
  }
  get waitMs(): number {
    return this.shared.opts.waitMs;
  }
  get quietMs(): number {
    return this.shared.opts.quietMs;
  }
  get wellKnown(): Record<string, any> | undefined {
    return this.shared.wellKnown;
  }

  /** Whether the hub lists `event` in eventsSupported (true when it serves no list). */
  supports(event: string): boolean {
    return this.shared.supports(event);
  }

  /** Skips the check unless the hub lists every event in eventsSupported. */
  needEvents(...events: string[]): void {
    const missing = events.filter((e) => !this.supports(e));
    if (missing.length > 0) skip(`the hub does not list ${missing.join(", ")} in eventsSupported`);
  }

  /** A fresh topic (or the fixed one) with a token for it (scopes: all events, read and write, unless given). */
  async session(o: { scope?: string; clientId?: string } = {}): Promise<Session> {
    const scope = o.scope ?? ALL_SCOPES;
    const clientId = o.clientId ?? this.shared.opts.clientId ?? DEFAULT_CLIENT;
    const topic = this.shared.fixedTopic ?? `conformance-${crypto.randomUUID()}`;
    if (this.shared.opts.tokenUrl) {
      const t = await this.shared.mint(topic, scope, clientId);
      return { topic: t.topic ?? topic, token: t.token, clientId, scope, expiresIn: t.expiresIn ?? tokenLifetime(t.token) };
    }
    return { topic, token: this.shared.opts.token, clientId, scope, expiresIn: tokenLifetime(this.shared.opts.token) };
  }

  /** Another token for the same topic, with other scopes or another client id (needs --token-url). */
  async sessionFor(base: Session, o: { scope?: string; clientId?: string }): Promise<Session> {
    if (!this.shared.opts.tokenUrl) skip("needs tokens with chosen scopes or client ids (--token-url)");
    const scope = o.scope ?? base.scope;
    const clientId = o.clientId ?? base.clientId;
    const t = await this.shared.mint(base.topic, scope, clientId);
    if (t.topic !== undefined && t.topic !== base.topic) skip(`the token endpoint binds tokens to topics of its own choosing (${t.topic})`);
    return { topic: base.topic, token: t.token, clientId, scope, expiresIn: t.expiresIn ?? tokenLifetime(t.token) };
  }

  private tokenOf(s: Session, override: string | null | undefined): string | undefined {
    return override === null ? undefined : (override ?? s.token);
  }

  /** POST a subscription request; `params` are added to hub.channel.type=websocket, hub.mode=subscribe, hub.topic. */
  subscribeRaw(s: Session, params: Record<string, string | undefined>, o: SubscribeOptions = {}): Promise<HttpResult> {
    const all: Record<string, string | undefined> = { "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": s.topic, ...params };
    const body = o.json ? JSON.stringify(Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined))) : form(all);
    return request(this.hubUrl, {
      method: "POST",
      headers: { "Content-Type": o.json ? "application/json" : FORM },
      body,
      token: this.tokenOf(s, o.token),
      timeoutMs: this.shared.opts.timeoutMs,
    });
  }

  /** Subscribes (form); fails the check unless the hub answers 202 with an endpoint. */
  async subscribe(s: Session, events: string, extra: Record<string, string | undefined> = {}, o: SubscribeOptions = {}): Promise<string> {
    const res = await this.subscribeRaw(s, { "hub.events": events, ...extra }, o);
    return endpointOf(res, `subscribe to ${events}`);
  }

  /** Opens a socket on an endpoint (kept until the check ends). */
  async connect(endpoint: string, ack?: Partial<AckPolicy>): Promise<HubSocket> {
    const ws = new HubSocket(endpoint, this.shared.opts.webSocket);
    if (ack) ws.ack = { ...ws.ack, ...ack };
    this.sockets.push(ws);
    await ws.waitOpen(this.waitMs);
    return ws;
  }

  /** Opens a socket without requiring the handshake to succeed (for endpoints that should be refused). */
  open(endpoint: string): HubSocket {
    const ws = new HubSocket(endpoint, this.shared.opts.webSocket);
    this.sockets.push(ws);
    return ws;
  }

  /** Subscribe, connect, and wait for the confirmation frame. */
  async subscriber(
    s: Session,
    events: string,
    extra: Record<string, string | undefined> = {},
    ack?: Partial<AckPolicy>,
  ): Promise<{ endpoint: string; ws: HubSocket; confirmation: Record<string, any> }> {
    const endpoint = await this.subscribe(s, events, extra);
    const ws = await this.connect(endpoint, ack);
    const confirmation = await ws.first(this.waitMs);
    assert(confirmation["hub.mode"] === "subscribe", `expected a subscription confirmation, got ${brief(confirmation)}`);
    return { endpoint, ws, confirmation };
  }

  unsubscribe(s: Session, endpoint: string, o: { param?: string; token?: string | null; json?: boolean } = {}): Promise<HttpResult> {
    return this.subscribeRaw(s, { "hub.mode": "unsubscribe", [o.param ?? "hub.channel.endpoint"]: endpoint }, o);
  }

  publish(s: Session, body: unknown, o: PublishOptions = {}): Promise<HttpResult> {
    const url = o.topicPath ? `${this.hubUrl}/${encodeURIComponent(s.topic)}` : this.hubUrl;
    return request(url, {
      method: "POST",
      headers: { "Content-Type": o.contentType ?? "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
      token: this.tokenOf(s, o.token),
      timeoutMs: this.shared.opts.timeoutMs,
    });
  }

  /** Publishes; fails the check unless the hub answers 2xx. */
  async publishOk(s: Session, body: Record<string, any>, o: PublishOptions = {}): Promise<HttpResult> {
    const res = await this.publish(s, body, o);
    const name = body.event?.["hub.event"] ?? "event";
    if (res.status < 200 || res.status > 299) fail(`publishing ${name} was refused: ${res.status} ${brief(res.text)}`);
    return res;
  }

  getContext(s: Session, o: { token?: string | null } = {}): Promise<HttpResult> {
    return request(`${this.hubUrl}/${encodeURIComponent(s.topic)}`, { token: this.tokenOf(s, o.token), timeoutMs: this.shared.opts.timeoutMs });
  }

  /** GET current context; fails the check unless 200 with a JSON object. */
  async currentContext(s: Session): Promise<Record<string, any>> {
    const res = await this.getContext(s);
    assert(res.status === 200 && isObject(res.json), `GET {hub.url}/{topic} answered ${res.status} ${brief(res.text)}`);
    return res.json as Record<string, any>;
  }

  /** Waits `ms` (default: the quiet period) for frames that must not arrive. */
  sleep(ms = this.quietMs): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  /** Closes every socket the check opened. */
  cleanup(): void {
    for (const ws of this.sockets.splice(0)) ws.close();
  }
}

/** The endpoint of a 202 subscribe response; fails the check on anything else. */
export function endpointOf(res: HttpResult, what: string): string {
  if (res.status !== 202) fail(`${what}: expected 202, got ${res.status} ${brief(res.text)}`);
  const ep = isObject(res.json) ? res.json["hub.channel.endpoint"] : undefined;
  if (typeof ep !== "string" || ep === "") fail(`${what}: the 202 body has no "hub.channel.endpoint": ${brief(res.text)}`);
  return ep;
}

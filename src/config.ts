// Hub settings, read from the Worker's environment ([vars] in wrangler.toml). Every setting is
// documented in README.md "Settings". A setting that does not parse is a deployment bug: throw.
import { EventCatalog, parseProprietaryEvents } from "./events/catalog";
import { setLogLevel } from "./log";
import { setAnalytics } from "./metrics";

/** How requests are authenticated (README "Security"). */
export interface AuthConfig {
  mode: "smart" | "dev" | "open";
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** Signature algorithms accepted; `none` is never among them. */
  algorithms: string[];
  /** The token claim that binds a token to one topic. */
  topicClaim: string;
  /** Lifetime of development-issuer tokens. */
  devTokenSeconds: number;
  /** Set when smart mode lacks a setting, or the mode is refused here: the hub then refuses every request (fails closed). */
  misconfigured?: string;
  /** Where the hub runs (HUB_ENV): decides which modes are allowed at all. */
  hubEnv: HubEnv;
  /** `required`: a token without the topic claim is refused (403); `optional`: such a token is valid for every topic. */
  topicBinding: "required" | "optional";
  /** How long a fetched SMART key set is trusted before it is fetched again. */
  jwksCacheSeconds: number;
  /** How long a verified token is remembered per isolate (never past its exp). */
  tokenCacheSeconds: number;
  /** A mode allowed here but dangerous (dev on a self-hosted server): said at error level at every start. */
  risk?: string;
  /** RFC 7662 token introspection (smart mode); undefined: every token must be a JWT. */
  introspection?: IntrospectionConfig;
}

/** How the hub asks the authorization server about a token (docs/operations.md "Connect your authorization server"). */
export interface IntrospectionConfig {
  /** SMART_INTROSPECTION_URL; undefined: the discovery document's `introspection_endpoint`. */
  url?: string;
  /** The hub's own client credentials at the authorization server (secrets). */
  clientId: string;
  clientSecret: string;
  /** `opaque`: only tokens that are not JWTs; `always`: every token. */
  when: "opaque" | "always";
  /** The member of the introspection answer that binds the token to one topic. */
  topicMember: string;
}

/**
 * `development`: `npm start` and the tests (every mode allowed); `selfhost`: the self-host build (no open
 * mode; dev allowed, said loudly); `production`: the edge deployment and the default when unset (smart only).
 */
export type HubEnv = "development" | "selfhost" | "production";
const HUB_ENVS = ["development", "selfhost", "production"] as const satisfies readonly HubEnv[];

/**
 * Longest time a key removed from the issuer's JWKS can still be honoured: a key set is trusted for
 * JWKS_CACHE_SECONDS after its fetch, and a token verified at the end of that is remembered for
 * TOKEN_CACHE_SECONDS more. Their sum may not exceed this (docs/operations.md "Key rotation").
 */
export const KEY_REVOCATION_MAX_SECONDS = 300;

export interface HubConfig {
  auth: AuthConfig;
  /** Browser origins allowed to subscribe and call the API; empty allows any. */
  allowedOrigins: string[];
  /** Most subscriptions one topic holds. */
  maxSubscriptionsPerTopic: number;
  /** Most live inspector sockets one topic holds at once. */
  maxInspectorsPerTopic: number;
  /** Most bytes a socket may owe (unacknowledged events, or unsent) before the hub stops sending to it. */
  socketBufferBytes: number;
  /** Lease granted when the subscriber asks for none (§2.1). */
  leaseDefaultSeconds: number;
  /** Longest lease the hub grants; longer requests are capped. */
  leaseMaxSeconds: number;
  /** An endpoint nobody connects to within this time expires. */
  endpointConnectSeconds: number;
  /** A topic with no subscribers and no activity for this long is deleted. */
  topicIdleSeconds: number;
  /** How many events the per-topic event log keeps. */
  eventLogLimit: number;
  /** Largest request body accepted (413 above it). */
  maxBodyBytes: number;
  /** Most bytes of shared content (§7) one anchor holds; an update beyond it is refused (413). */
  maxContentBytesPerAnchor: number;
  /** Most bytes of shared content all of a topic's anchors hold together (413 beyond it). */
  maxContentBytesPerTopic: number;
  /** Reverse-domain proprietary events the hub accepts besides the standard catalog. */
  proprietaryEvents: string[];
  /** A subscriber that does not acknowledge an event within this time is out of sync (§2.5). */
  ackTimeoutSeconds: number;
  /** Consecutive missed acknowledgements after which a subscriber is unsubscribed. */
  unresponsiveThreshold: number;
  /** A resent event (same id) is accepted again only this long after the previous one. */
  resendMinSeconds: number;
  /** Send the legacy `heartbeat` event this often to subscriptions that list it; 0 (the default) offers none. */
  heartbeatSeconds: number;
  /** Public origin override (e.g. behind a TLS proxy); otherwise the request's origin is used. */
  publicUrl?: string;
  /** Where topic objects live (docs/operations.md "Data placement"). */
  placement: Placement;
  /** Bearer secret for GET /metrics; unset: the endpoint does not exist (404). */
  metricsToken?: string;
}

const JURISDICTIONS = ["eu", "fedramp", "fedramp-high", "us"] as const satisfies readonly DurableObjectJurisdiction[];
const LOCATION_HINTS = [
  "wnam", "enam", "sam", "weur", "eeur", "apac", "apac-ne", "apac-se", "oc", "afr", "me",
] as const satisfies readonly DurableObjectLocationHint[];

/**
 * Durable Object placement for topics. A jurisdiction is part of every object id: switching it (or
 * turning it on or off) makes existing topics unreachable by name. A location hint only steers where
 * a topic object is created the first time; it changes no id.
 */
export interface Placement {
  jurisdiction?: DurableObjectJurisdiction;
  locationHint?: DurableObjectLocationHint;
}

/** The environment the Worker and the Topic object receive. */
export interface Env {
  TOPIC: DurableObjectNamespace<import("./topic").Topic>;
  ISSUER: DurableObjectNamespace<import("./auth/dev-issuer").DevIssuer>;
  /** Workers rate limiting binding (optional): per-client limits on subscribe and publish. */
  RATE_LIMITER?: RateLimit;
  /** Workers Analytics Engine dataset (optional, edge only): metric data points. */
  ANALYTICS?: AnalyticsEngineDataset;
  DO_JURISDICTION?: string;
  DO_LOCATION_HINT?: string;
  METRICS_TOKEN?: string;
  AUTH_MODE?: string;
  SMART_JWKS_URL?: string;
  SMART_ISSUER?: string;
  SMART_AUDIENCE?: string;
  AUTH_ALGORITHMS?: string;
  TOPIC_CLAIM?: string;
  DEV_TOKEN_SECONDS?: string;
  HUB_ENV?: string;
  TOPIC_BINDING?: string;
  JWKS_CACHE_SECONDS?: string;
  TOKEN_CACHE_SECONDS?: string;
  SMART_INTROSPECTION_URL?: string;
  INTROSPECTION_CLIENT_ID?: string;
  INTROSPECTION_CLIENT_SECRET?: string;
  INTROSPECT?: string;
  INTROSPECTION_TOPIC_MEMBER?: string;
  ALLOWED_ORIGINS?: string;
  MAX_SUBSCRIPTIONS_PER_TOPIC?: string;
  MAX_INSPECTORS_PER_TOPIC?: string;
  SOCKET_BUFFER_BYTES?: string;
  HUB_LEASE_DEFAULT_SECONDS?: string;
  HUB_LEASE_MAX_SECONDS?: string;
  ENDPOINT_CONNECT_SECONDS?: string;
  TOPIC_IDLE_SECONDS?: string;
  EVENT_LOG_LIMIT?: string;
  MAX_BODY_BYTES?: string;
  MAX_CONTENT_BYTES_PER_ANCHOR?: string;
  MAX_CONTENT_BYTES_PER_TOPIC?: string;
  PROPRIETARY_EVENTS?: string;
  PUBLIC_URL?: string;
  LOG_LEVEL?: string;
  ACK_TIMEOUT_SECONDS?: string;
  UNRESPONSIVE_THRESHOLD?: string;
  RESEND_MIN_SECONDS?: string;
  HEARTBEAT_SECONDS?: string;
}

function nonNegativeInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw == null || raw.trim() === "") return fallback; // null: an unset fromEnvironment binding (self-host)
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`setting ${name}="${raw}" must be a non-negative integer`);
  return n;
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw == null || raw.trim() === "") return fallback; // null: an unset fromEnvironment binding (self-host)
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`setting ${name}="${raw}" must be a positive integer`);
  return n;
}

function oneOf<T extends string>(name: string, raw: string | undefined, allowed: readonly T[]): T | undefined {
  const v = raw?.trim().toLowerCase();
  if (!v) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new Error(`setting ${name}="${raw}" must be one of ${allowed.join(", ")}`);
  return v as T;
}

function httpUrl(raw: string): boolean {
  try {
    return ["https:", "http:"].includes(new URL(raw).protocol);
  } catch {
    return false;
  }
}

const list = (raw: string | undefined): string[] =>
  (raw ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);

/**
 * Unknown or missing AUTH_MODE means smart: the hub never runs open by accident. Where HUB_ENV says
 * production (or is unset), only smart runs; in the self-host build, dev runs too but never open. A
 * refused mode leaves the hub in unconfigured smart mode: 503 for every authenticated request, and
 * overriding AUTH_MODE alone (`--var AUTH_MODE:open`) cannot open it.
 */
function readAuth(env: Env): AuthConfig {
  const raw = (env.AUTH_MODE ?? "").trim().toLowerCase();
  const hubEnv = oneOf("HUB_ENV", env.HUB_ENV, HUB_ENVS) ?? "production";
  const wanted = raw === "dev" || raw === "open" ? raw : "smart";
  const refused = (wanted === "open" && hubEnv !== "development") || (wanted === "dev" && hubEnv === "production");
  const mode = refused ? "smart" : wanted;
  const jwksCacheSeconds = nonNegativeInt("JWKS_CACHE_SECONDS", env.JWKS_CACHE_SECONDS, 240);
  const tokenCacheSeconds = nonNegativeInt("TOKEN_CACHE_SECONDS", env.TOKEN_CACHE_SECONDS, 60);
  if (jwksCacheSeconds + tokenCacheSeconds > KEY_REVOCATION_MAX_SECONDS) {
    throw new Error(`settings JWKS_CACHE_SECONDS (${jwksCacheSeconds}) + TOKEN_CACHE_SECONDS (${tokenCacheSeconds}) must not exceed ${KEY_REVOCATION_MAX_SECONDS}: their sum is how long a revoked key can still be honoured`);
  }
  const algorithms = list(env.AUTH_ALGORITHMS ?? "RS256,ES256").filter((a) => a.toLowerCase() !== "none");
  const auth: AuthConfig = {
    mode,
    jwksUrl: env.SMART_JWKS_URL?.trim() || undefined,
    issuer: env.SMART_ISSUER?.trim() || undefined,
    audience: env.SMART_AUDIENCE?.trim() || undefined,
    algorithms: mode === "dev" ? ["ES256"] : algorithms,
    topicClaim: env.TOPIC_CLAIM?.trim() || "hub.topic",
    devTokenSeconds: positiveInt("DEV_TOKEN_SECONDS", env.DEV_TOKEN_SECONDS, 3600),
    hubEnv,
    topicBinding: oneOf("TOPIC_BINDING", env.TOPIC_BINDING, ["required", "optional"] as const) ?? "required",
    jwksCacheSeconds,
    tokenCacheSeconds,
  };
  if (refused) {
    auth.misconfigured = `AUTH_MODE=${wanted} is refused where HUB_ENV=${hubEnv}` +
      (hubEnv === "production" ? " (only AUTH_MODE=smart runs in production)" : " (the self-host build allows smart and dev)");
    return auth;
  }
  if (mode === "dev" && hubEnv === "selfhost") {
    auth.risk = "AUTH_MODE=dev on a self-hosted hub: anyone who reaches it can mint tokens for any topic at /auth/token; for trying the build locally only, use AUTH_MODE=smart on a server";
  }
  if (mode === "smart") {
    const introspectionUrl = env.SMART_INTROSPECTION_URL?.trim() || undefined;
    const clientId = env.INTROSPECTION_CLIENT_ID?.trim() || undefined;
    const clientSecret = env.INTROSPECTION_CLIENT_SECRET ?? undefined;
    const when = oneOf("INTROSPECT", env.INTROSPECT, ["opaque", "always"] as const) ?? "opaque";
    // Introspection is on when the hub has credentials for it; the endpoint may come from discovery.
    if (clientId && clientSecret) {
      auth.introspection = { url: introspectionUrl, clientId, clientSecret, when, topicMember: env.INTROSPECTION_TOPIC_MEMBER?.trim() || "hub.topic" };
    }
    const missing = [
      // Without SMART_JWKS_URL the keys come from the issuer's discovery document (src/auth/discovery.ts).
      !auth.issuer && "SMART_ISSUER",
      auth.issuer && !auth.jwksUrl && !httpUrl(auth.issuer) && `SMART_ISSUER (discovery needs an http(s) URL: "${auth.issuer}")`,
      introspectionUrl && !httpUrl(introspectionUrl) && `SMART_INTROSPECTION_URL (not an http(s) URL: "${introspectionUrl}")`,
      (introspectionUrl || when === "always") && !auth.introspection && "INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET (introspection is configured)",
      !auth.audience && "SMART_AUDIENCE",
      auth.jwksUrl && !httpUrl(auth.jwksUrl) && `SMART_JWKS_URL (not an http(s) URL: "${auth.jwksUrl}")`,
      auth.algorithms.length === 0 && "AUTH_ALGORITHMS",
      raw !== "" && raw !== "smart" && `AUTH_MODE (unknown value "${raw}")`,
    ].filter(Boolean);
    if (missing.length > 0) {
      // Unset is the usual mistake on a new server (an EnvironmentFile not read): say so.
      auth.misconfigured = `AUTH_MODE=smart needs ${missing.join(", ")}` + (raw === "" ? " (AUTH_MODE is unset, and unset means smart)" : "");
    }
  }
  return auth;
}

/**
 * The largest answer a read can give is the current context: an open event (a request body) plus its
 * anchor's content. It crosses RPC, whose values are limited to 32 MiB, and a string holding one
 * character beyond Latin-1 travels as UTF-16, twice its UTF-8 size: 12 MiB keeps even that below the
 * limit, so that everything the hub accepts can be read back (docs/guarantees.md "Limits").
 */
export const MAX_READ_BYTES = 12 * 1024 * 1024;

export function readConfig(env: Env): HubConfig {
  const config = readSettings(env);
  if (config.maxBodyBytes + config.maxContentBytesPerAnchor > MAX_READ_BYTES) {
    throw new Error(`settings MAX_BODY_BYTES + MAX_CONTENT_BYTES_PER_ANCHOR must not exceed ${MAX_READ_BYTES} (the current context must stay readable)`);
  }
  return config;
}

function readSettings(env: Env): HubConfig {
  const leaseDefaultSeconds = positiveInt("HUB_LEASE_DEFAULT_SECONDS", env.HUB_LEASE_DEFAULT_SECONDS, 3600);
  const leaseMaxSeconds = positiveInt("HUB_LEASE_MAX_SECONDS", env.HUB_LEASE_MAX_SECONDS, 86400);
  return {
    auth: readAuth(env),
    allowedOrigins: list(env.ALLOWED_ORIGINS),
    maxSubscriptionsPerTopic: positiveInt("MAX_SUBSCRIPTIONS_PER_TOPIC", env.MAX_SUBSCRIPTIONS_PER_TOPIC, 1000),
    maxInspectorsPerTopic: positiveInt("MAX_INSPECTORS_PER_TOPIC", env.MAX_INSPECTORS_PER_TOPIC, 10),
    socketBufferBytes: positiveInt("SOCKET_BUFFER_BYTES", env.SOCKET_BUFFER_BYTES, 4_194_304),
    leaseDefaultSeconds: Math.min(leaseDefaultSeconds, leaseMaxSeconds),
    leaseMaxSeconds,
    endpointConnectSeconds: positiveInt("ENDPOINT_CONNECT_SECONDS", env.ENDPOINT_CONNECT_SECONDS, 60),
    topicIdleSeconds: positiveInt("TOPIC_IDLE_SECONDS", env.TOPIC_IDLE_SECONDS, 86400),
    eventLogLimit: positiveInt("EVENT_LOG_LIMIT", env.EVENT_LOG_LIMIT, 1000),
    maxBodyBytes: positiveInt("MAX_BODY_BYTES", env.MAX_BODY_BYTES, 1_048_576),
    maxContentBytesPerAnchor: positiveInt("MAX_CONTENT_BYTES_PER_ANCHOR", env.MAX_CONTENT_BYTES_PER_ANCHOR, 4_194_304),
    maxContentBytesPerTopic: positiveInt("MAX_CONTENT_BYTES_PER_TOPIC", env.MAX_CONTENT_BYTES_PER_TOPIC, 8_388_608),
    proprietaryEvents: parseProprietaryEvents(env.PROPRIETARY_EVENTS),
    ackTimeoutSeconds: positiveInt("ACK_TIMEOUT_SECONDS", env.ACK_TIMEOUT_SECONDS, 10),
    unresponsiveThreshold: positiveInt("UNRESPONSIVE_THRESHOLD", env.UNRESPONSIVE_THRESHOLD, 1),
    resendMinSeconds: nonNegativeInt("RESEND_MIN_SECONDS", env.RESEND_MIN_SECONDS, 10),
    heartbeatSeconds: nonNegativeInt("HEARTBEAT_SECONDS", env.HEARTBEAT_SECONDS, 0),
    publicUrl: env.PUBLIC_URL?.trim() ? env.PUBLIC_URL.trim().replace(/\/+$/, "") : undefined,
    placement: {
      jurisdiction: oneOf("DO_JURISDICTION", env.DO_JURISDICTION, JURISDICTIONS),
      locationHint: oneOf("DO_LOCATION_HINT", env.DO_LOCATION_HINT, LOCATION_HINTS),
    },
    metricsToken: env.METRICS_TOKEN?.trim() || undefined,
  };
}

/** Config and catalog are derived from env once per isolate, not once per request. */
let cached: { env: Env; config: HubConfig; catalog: EventCatalog } | undefined;
export function hubSettings(env: Env): { config: HubConfig; catalog: EventCatalog } {
  if (cached?.env !== env) {
    setLogLevel(env.LOG_LEVEL); // first: a setting that does not parse is then logged at this level
    const config = readConfig(env);
    setAnalytics(env.ANALYTICS);
    cached = { env, config, catalog: new EventCatalog(config.proprietaryEvents, { heartbeat: config.heartbeatSeconds > 0 }) };
  }
  return cached;
}

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
  /** Set when smart mode lacks a setting: the hub then refuses every request (fails closed). */
  misconfigured?: string;
}

export interface HubConfig {
  auth: AuthConfig;
  /** Browser origins allowed to subscribe and call the API; empty allows any. */
  allowedOrigins: string[];
  /** Most subscriptions one topic holds. */
  maxSubscriptionsPerTopic: number;
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
  ALLOWED_ORIGINS?: string;
  MAX_SUBSCRIPTIONS_PER_TOPIC?: string;
  HUB_LEASE_DEFAULT_SECONDS?: string;
  HUB_LEASE_MAX_SECONDS?: string;
  ENDPOINT_CONNECT_SECONDS?: string;
  TOPIC_IDLE_SECONDS?: string;
  EVENT_LOG_LIMIT?: string;
  MAX_BODY_BYTES?: string;
  PROPRIETARY_EVENTS?: string;
  PUBLIC_URL?: string;
  LOG_LEVEL?: string;
  ACK_TIMEOUT_SECONDS?: string;
  UNRESPONSIVE_THRESHOLD?: string;
  RESEND_MIN_SECONDS?: string;
  HEARTBEAT_SECONDS?: string;
}

function nonNegativeInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`setting ${name}="${raw}" must be a non-negative integer`);
  return n;
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
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

const list = (raw: string | undefined): string[] =>
  (raw ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);

/** Unknown or missing AUTH_MODE means smart: the hub never runs open by accident. */
function readAuth(env: Env): AuthConfig {
  const raw = (env.AUTH_MODE ?? "").trim().toLowerCase();
  const mode = raw === "dev" || raw === "open" ? raw : "smart";
  const algorithms = list(env.AUTH_ALGORITHMS ?? "RS256,ES256").filter((a) => a.toLowerCase() !== "none");
  const auth: AuthConfig = {
    mode,
    jwksUrl: env.SMART_JWKS_URL?.trim() || undefined,
    issuer: env.SMART_ISSUER?.trim() || undefined,
    audience: env.SMART_AUDIENCE?.trim() || undefined,
    algorithms: mode === "dev" ? ["ES256"] : algorithms,
    topicClaim: env.TOPIC_CLAIM?.trim() || "hub.topic",
    devTokenSeconds: positiveInt("DEV_TOKEN_SECONDS", env.DEV_TOKEN_SECONDS, 3600),
  };
  if (mode === "smart") {
    const missing = [
      !auth.jwksUrl && "SMART_JWKS_URL",
      !auth.issuer && "SMART_ISSUER",
      !auth.audience && "SMART_AUDIENCE",
      auth.algorithms.length === 0 && "AUTH_ALGORITHMS",
      raw !== "" && raw !== "smart" && `AUTH_MODE (unknown value "${raw}")`,
    ].filter(Boolean);
    if (missing.length > 0) auth.misconfigured = `AUTH_MODE=smart needs ${missing.join(", ")}`;
  }
  return auth;
}

export function readConfig(env: Env): HubConfig {
  const leaseDefaultSeconds = positiveInt("HUB_LEASE_DEFAULT_SECONDS", env.HUB_LEASE_DEFAULT_SECONDS, 3600);
  const leaseMaxSeconds = positiveInt("HUB_LEASE_MAX_SECONDS", env.HUB_LEASE_MAX_SECONDS, 86400);
  return {
    auth: readAuth(env),
    allowedOrigins: list(env.ALLOWED_ORIGINS),
    maxSubscriptionsPerTopic: positiveInt("MAX_SUBSCRIPTIONS_PER_TOPIC", env.MAX_SUBSCRIPTIONS_PER_TOPIC, 1000),
    leaseDefaultSeconds: Math.min(leaseDefaultSeconds, leaseMaxSeconds),
    leaseMaxSeconds,
    endpointConnectSeconds: positiveInt("ENDPOINT_CONNECT_SECONDS", env.ENDPOINT_CONNECT_SECONDS, 60),
    topicIdleSeconds: positiveInt("TOPIC_IDLE_SECONDS", env.TOPIC_IDLE_SECONDS, 86400),
    eventLogLimit: positiveInt("EVENT_LOG_LIMIT", env.EVENT_LOG_LIMIT, 1000),
    maxBodyBytes: positiveInt("MAX_BODY_BYTES", env.MAX_BODY_BYTES, 1_048_576),
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
    const config = readConfig(env);
    setLogLevel(env.LOG_LEVEL);
    setAnalytics(env.ANALYTICS);
    cached = { env, config, catalog: new EventCatalog(config.proprietaryEvents, { heartbeat: config.heartbeatSeconds > 0 }) };
  }
  return cached;
}

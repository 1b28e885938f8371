// The hub's configuration, read from the Worker's environment ([vars] in wrangler.toml). Each setting
// is parsed by its row of the table in src/settings.ts (which also documents it, docs/operations.md
// "Settings"); this module adds what relates settings to each other. A setting that does not parse
// is a deployment bug: throw. Reading settings changes nothing else: `applySettings` (called where
// the Worker and the Topic object start) is the one place the log level and analytics are set.
import { EventCatalog } from "./fhircast/catalog";
import { setLogLevel } from "./log";
import { setAnalytics } from "./metrics";
import { JURISDICTIONS, LOCATION_HINTS, setting, type HubEnv, type SettingVars } from "./settings";

export type { HubEnv };

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
  /** Lease granted when the subscriber asks for none (fhircast.hl7.org/STU3/2-4-Subscribing.html). */
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
  /** Most bytes of shared content (fhircast.hl7.org/STU3/2-10-ContentSharing.html) one anchor holds; an update beyond it is refused (413). */
  maxContentBytesPerAnchor: number;
  /** Most bytes of shared content all of a topic's anchors hold together (413 beyond it). */
  maxContentBytesPerTopic: number;
  /** Reverse-domain proprietary events the hub accepts besides the standard catalog. */
  proprietaryEvents: string[];
  /** A subscriber that does not acknowledge an event within this time is out of sync (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html). */
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

// The table's lists, checked against the runtime's own types.
JURISDICTIONS satisfies readonly DurableObjectJurisdiction[];
LOCATION_HINTS satisfies readonly DurableObjectLocationHint[];

/**
 * Durable Object placement for topics. A jurisdiction is part of every object id: switching it (or
 * turning it on or off) makes existing topics unreachable by name. A location hint only steers where
 * a topic object is created the first time; it changes no id.
 */
export interface Placement {
  jurisdiction?: DurableObjectJurisdiction;
  locationHint?: DurableObjectLocationHint;
}

/**
 * What settings are read from: the table's settings (text) and the Analytics Engine binding. The
 * Worker's whole environment (src/env.ts) extends it; the Topic object needs no more than this.
 */
export interface SettingsEnv extends SettingVars {
  /** Workers Analytics Engine dataset (optional, edge only): metric data points. */
  ANALYTICS?: AnalyticsEngineDataset;
}

function httpUrl(raw: string): boolean {
  try {
    return ["https:", "http:"].includes(new URL(raw).protocol);
  } catch {
    return false;
  }
}

/**
 * Unknown or missing AUTH_MODE means smart: the hub never runs open by accident. Where HUB_ENV says
 * production (or is unset), only smart runs; in the self-host build, dev runs too but never open. A
 * refused mode leaves the hub in unconfigured smart mode: 503 for every authenticated request, and
 * overriding AUTH_MODE alone (`--var AUTH_MODE:open`) cannot open it.
 */
function readAuth(env: SettingVars): AuthConfig {
  const raw = setting(env, "AUTH_MODE");
  const hubEnv = setting(env, "HUB_ENV");
  const wanted = raw === "dev" || raw === "open" ? raw : "smart";
  const refused = (wanted === "open" && hubEnv !== "development") || (wanted === "dev" && hubEnv === "production");
  const mode = refused ? "smart" : wanted;
  const jwksCacheSeconds = setting(env, "JWKS_CACHE_SECONDS");
  const tokenCacheSeconds = setting(env, "TOKEN_CACHE_SECONDS");
  if (jwksCacheSeconds + tokenCacheSeconds > KEY_REVOCATION_MAX_SECONDS) {
    throw new Error(`settings JWKS_CACHE_SECONDS (${jwksCacheSeconds}) + TOKEN_CACHE_SECONDS (${tokenCacheSeconds}) must not exceed ${KEY_REVOCATION_MAX_SECONDS}: their sum is how long a revoked key can still be honoured`);
  }
  const algorithms = setting(env, "AUTH_ALGORITHMS");
  const auth: AuthConfig = {
    mode,
    jwksUrl: setting(env, "SMART_JWKS_URL"),
    issuer: setting(env, "SMART_ISSUER"),
    audience: setting(env, "SMART_AUDIENCE"),
    algorithms: mode === "dev" ? ["ES256"] : algorithms,
    topicClaim: setting(env, "TOPIC_CLAIM"),
    devTokenSeconds: setting(env, "DEV_TOKEN_SECONDS"),
    hubEnv,
    topicBinding: setting(env, "TOPIC_BINDING"),
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
    const introspectionUrl = setting(env, "SMART_INTROSPECTION_URL");
    const clientId = setting(env, "INTROSPECTION_CLIENT_ID");
    const clientSecret = setting(env, "INTROSPECTION_CLIENT_SECRET");
    const when = setting(env, "INTROSPECT");
    // Introspection is on when the hub has credentials for it; the endpoint may come from discovery.
    if (clientId && clientSecret) {
      auth.introspection = { url: introspectionUrl, clientId, clientSecret, when, topicMember: setting(env, "INTROSPECTION_TOPIC_MEMBER") };
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

export function readConfig(env: SettingVars): HubConfig {
  const config = readSettings(env);
  if (config.maxBodyBytes + config.maxContentBytesPerAnchor > MAX_READ_BYTES) {
    throw new Error(`settings MAX_BODY_BYTES + MAX_CONTENT_BYTES_PER_ANCHOR must not exceed ${MAX_READ_BYTES} (the current context must stay readable)`);
  }
  return config;
}

function readSettings(env: SettingVars): HubConfig {
  const leaseDefaultSeconds = setting(env, "HUB_LEASE_DEFAULT_SECONDS");
  const leaseMaxSeconds = setting(env, "HUB_LEASE_MAX_SECONDS");
  return {
    auth: readAuth(env),
    allowedOrigins: setting(env, "ALLOWED_ORIGINS"),
    maxSubscriptionsPerTopic: setting(env, "MAX_SUBSCRIPTIONS_PER_TOPIC"),
    maxInspectorsPerTopic: setting(env, "MAX_INSPECTORS_PER_TOPIC"),
    socketBufferBytes: setting(env, "SOCKET_BUFFER_BYTES"),
    leaseDefaultSeconds: Math.min(leaseDefaultSeconds, leaseMaxSeconds),
    leaseMaxSeconds,
    endpointConnectSeconds: setting(env, "ENDPOINT_CONNECT_SECONDS"),
    topicIdleSeconds: setting(env, "TOPIC_IDLE_SECONDS"),
    eventLogLimit: setting(env, "EVENT_LOG_LIMIT"),
    maxBodyBytes: setting(env, "MAX_BODY_BYTES"),
    maxContentBytesPerAnchor: setting(env, "MAX_CONTENT_BYTES_PER_ANCHOR"),
    maxContentBytesPerTopic: setting(env, "MAX_CONTENT_BYTES_PER_TOPIC"),
    proprietaryEvents: setting(env, "PROPRIETARY_EVENTS"),
    ackTimeoutSeconds: setting(env, "ACK_TIMEOUT_SECONDS"),
    unresponsiveThreshold: setting(env, "UNRESPONSIVE_THRESHOLD"),
    resendMinSeconds: setting(env, "RESEND_MIN_SECONDS"),
    heartbeatSeconds: setting(env, "HEARTBEAT_SECONDS"),
    publicUrl: setting(env, "PUBLIC_URL"),
    placement: {
      jurisdiction: setting(env, "DO_JURISDICTION"),
      locationHint: setting(env, "DO_LOCATION_HINT"),
    },
    metricsToken: setting(env, "METRICS_TOKEN"),
  };
}

/** Config and catalog are derived from env once per isolate, not once per request. Changes nothing else. */
let cached: { env: SettingVars; config: HubConfig; catalog: EventCatalog } | undefined;
export function hubSettings(env: SettingVars): { config: HubConfig; catalog: EventCatalog } {
  if (cached?.env !== env) {
    const config = readConfig(env);
    cached = { env, config, catalog: new EventCatalog(config.proprietaryEvents, { heartbeat: config.heartbeatSeconds > 0 }) };
  }
  return cached;
}

/**
 * Sets what settings change outside the configuration: the log level and the analytics dataset.
 * Called where the code starts running (the Worker's module and each request, the Topic object's
 * constructor), before anything is read, so that a setting that does not parse is logged at the
 * configured level. Cheap after the first call with an environment.
 */
let applied: SettingsEnv | undefined;
export function applySettings(env: SettingsEnv): void {
  if (applied === env) return;
  applied = env;
  setLogLevel(setting(env, "LOG_LEVEL"));
  setAnalytics(env.ANALYTICS);
}

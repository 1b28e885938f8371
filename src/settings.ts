// Every hub setting, as data: its name, how its text is parsed, its default and what it means. The
// environment's type (src/env.ts), the settings section of docs/operations.md (`npm run
// docs:settings`) and the parsing in src/config.ts all come from this one table; config.ts adds only
// what relates settings to each other (the AUTH_MODE/HUB_ENV refusal, the cache and size sums).
// test/e2e/settings.e2e.test.ts checks that every `[vars]` entry of wrangler.toml is here and that
// the docs say what this table says.
//
// Pure module (no runtime globals, .ts import paths): Node runs it for the docs.
import { parseProprietaryEvents } from "./fhircast/catalog.ts";

export interface Setting<T> {
  /** Turns the text of the setting (undefined or null: unset) into its value; throws on text that does not parse. */
  parse: (raw: string | undefined | null, name: string) => T;
  /** The default, as the docs state it (Markdown). */
  default: string;
  /** What it means (Markdown, one line). */
  doc: string;
  /** A secret (`wrangler secret put`): never in wrangler.toml, never logged. */
  secret?: true;
}

/** Unset: undefined, or null (an unset `fromEnvironment` binding of the self-host build), or blank text. */
const unset = (raw: string | undefined | null): raw is undefined | null => raw == null || raw.trim() === "";

function nonNegativeInt(fallback: number, doc: string, defaultDoc = `\`${fallback}\``): Setting<number> {
  return {
    default: defaultDoc,
    doc,
    parse: (raw, name) => {
      if (unset(raw)) return fallback;
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) throw new Error(`setting ${name}="${raw}" must be a non-negative integer`);
      return n;
    },
  };
}

function positiveInt(fallback: number, doc: string): Setting<number> {
  return {
    default: `\`${fallback}\``,
    doc,
    parse: (raw, name) => {
      if (unset(raw)) return fallback;
      const n = Number(raw);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`setting ${name}="${raw}" must be a positive integer`);
      return n;
    },
  };
}

/** One of `allowed`, matched trimmed and case-insensitively; unset gives `fallback`. */
function oneOf<T extends string, F extends T | undefined>(allowed: readonly T[], fallback: F, doc: string, defaultDoc?: string): Setting<T | F> {
  return {
    default: defaultDoc ?? (fallback === undefined ? "unset" : `\`${fallback}\``),
    doc,
    parse: (raw, name) => {
      const v = raw?.trim().toLowerCase();
      if (!v) return fallback;
      if (!(allowed as readonly string[]).includes(v)) throw new Error(`setting ${name}="${raw}" must be one of ${allowed.join(", ")}`);
      return v as T;
    },
  };
}

/** Trimmed text; unset or blank gives `fallback`. */
function text<F extends string | undefined>(fallback: F, doc: string, defaultDoc?: string): Setting<string | F> {
  return {
    default: defaultDoc ?? (fallback === undefined ? "unset" : `\`${fallback}\``),
    doc,
    parse: (raw) => raw?.trim() || fallback,
  };
}

/** Comma-separated, trimmed, empty items dropped. */
export const list = (raw: string | undefined | null): string[] =>
  (raw ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);

/**
 * `development`: `npm start` and the tests (every mode allowed); `selfhost`: the self-host build (no open
 * mode; dev allowed, said loudly); `production`: the edge deployment and the default when unset (smart only).
 */
export type HubEnv = "development" | "selfhost" | "production";
export const HUB_ENVS = ["development", "selfhost", "production"] as const satisfies readonly HubEnv[];
/** Durable Object jurisdictions and location hints (src/config.ts checks them against the runtime's types). */
export const JURISDICTIONS = ["eu", "fedramp", "fedramp-high", "us"] as const;
export const LOCATION_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "apac-ne", "apac-se", "oc", "afr", "me"] as const;

/** The table. Order is the order of the docs. */
export const SETTINGS = {
  HUB_ENV: oneOf(HUB_ENVS, "production",
    `where the hub runs: \`production\` runs only \`AUTH_MODE=smart\`, \`selfhost\` also \`dev\` (logged as an error at every start), \`development\` every mode; a refused mode answers 503 ([Environments](#environments))`,
    "`production` when unset; `development` at the top level of `wrangler.toml`, `production` in `[env.production]`, `selfhost` fixed by the self-host build"),
  AUTH_MODE: {
    default: "`smart` when unset; `dev` in `wrangler.toml` for local use",
    doc: "`smart`: tokens from your authorization server; `dev`: the hub's own issuer at `/auth/token`; `open`: no tokens (`HUB_ENV=development` only, logged as a warning). Any other value is smart mode, refused as misconfigured (503)",
    // Not refused here: an unknown mode is smart mode, misconfigured (src/config.ts), so that it fails closed.
    parse: (raw) => (raw ?? "").trim().toLowerCase(),
  } satisfies Setting<string>,
  SMART_ISSUER: text(undefined,
    "required in `smart` mode; without it every request is refused (503). The issuer's discovery document (`{issuer}/.well-known/openid-configuration`, else `/.well-known/smart-configuration`) supplies `jwks_uri` and `introspection_endpoint` ([Connect your authorization server](#connect-your-authorization-server))"),
  SMART_AUDIENCE: text(undefined, "required in `smart` mode: the audience (`aud`) the authorization server puts into tokens for the hub"),
  SMART_JWKS_URL: text(undefined, "the issuer's key set; when set it wins over discovery (not http(s): 503)", "from discovery"),
  SMART_INTROSPECTION_URL: text(undefined, "RFC 7662 introspection endpoint, for opaque access tokens", "from discovery"),
  INTROSPECTION_CLIENT_ID: {
    ...text(undefined,
      "the hub's client id at the authorization server (HTTP Basic, with `INTROSPECTION_CLIENT_SECRET`); setting both turns introspection on",
      "unset (no introspection)"),
    secret: true,
  },
  INTROSPECTION_CLIENT_SECRET: {
    default: "unset (no introspection)",
    doc: "the hub's client secret at the authorization server; setting it and `INTROSPECTION_CLIENT_ID` turns introspection on; never logged",
    secret: true,
    // Taken as it is: a secret's spaces are its own.
    parse: (raw) => raw ?? undefined,
  } satisfies Setting<string | undefined>,
  INTROSPECT: oneOf(["opaque", "always"] as const, "opaque",
    "`opaque`: tokens that are not JWTs are introspected, JWTs verified with the keys; `always`: every token is introspected"),
  INTROSPECTION_TOPIC_MEMBER: text("hub.topic", "member of the introspection answer that binds the token to one topic (same rules as `TOPIC_CLAIM`)"),
  AUTH_ALGORITHMS: {
    default: "`RS256,ES256`",
    doc: "accepted token signature algorithms (`none` is never accepted; an empty list is misconfigured, 503)",
    // `??`, not blank-means-default: an empty value is an empty list, which smart mode refuses.
    parse: (raw) => list(raw ?? "RS256,ES256").filter((a) => a.toLowerCase() !== "none"),
  } satisfies Setting<string[]>,
  TOPIC_CLAIM: text("hub.topic", "token claim that binds a token to one topic"),
  TOPIC_BINDING: oneOf(["required", "optional"] as const, "required",
    "`required`: a token without the topic claim gets 403; `optional`: such a token is valid for every topic ([The topic claim](#the-topic-claim))"),
  JWKS_CACHE_SECONDS: nonNegativeInt(240, "how long the SMART key set (and the discovery document) is trusted before it is fetched again"),
  TOKEN_CACHE_SECONDS: nonNegativeInt(60,
    "how long a verified or introspected token is remembered (never past its `exp`); with `JWKS_CACHE_SECONDS` at most 300: their sum is how long a key removed from the JWKS is still honoured, and this alone how long a revoked opaque token still works"),
  DEV_TOKEN_SECONDS: positiveInt(3600, "lifetime of development tokens (`AUTH_MODE=dev`)"),
  ALLOWED_ORIGINS: {
    default: "empty (any)",
    doc: "comma-separated browser origins allowed to call the hub and open sockets",
    parse: list,
  } satisfies Setting<string[]>,
  MAX_SUBSCRIPTIONS_PER_TOPIC: positiveInt(1000, "more subscriptions on a topic are refused (403)"),
  SOCKET_BUFFER_BYTES: positiveInt(4_194_304,
    "most bytes of unacknowledged events the hub sends a subscriber (or leaves unsent on any socket); an event over it is not sent and the subscriber is ended as stalled (SyncError)"),
  MAX_INSPECTORS_PER_TOPIC: positiveInt(10,
    "more live inspector sockets (`/api/inspect/{topic}/live`) on a topic at once are refused (403 OperationOutcome)"),
  MAX_BODY_BYTES: positiveInt(1_048_576, "larger request bodies get 413"),
  MAX_CONTENT_BYTES_PER_ANCHOR: positiveInt(4_194_304,
    "shared content ([content sharing](https://fhircast.hl7.org/STU3/2-10-ContentSharing.html)) one anchor holds; an update beyond it gets 413 (`MAX_BODY_BYTES` + this at most 12 MiB, [Size limits](#size-limits))"),
  MAX_CONTENT_BYTES_PER_TOPIC: positiveInt(8_388_608,
    "shared content all of a topic's open anchors hold together; an update beyond it gets 413"),
  HUB_LEASE_DEFAULT_SECONDS: positiveInt(3600, "lease when the subscriber asks for none (never above `HUB_LEASE_MAX_SECONDS`)"),
  HUB_LEASE_MAX_SECONDS: positiveInt(86400, "longest lease granted (never beyond the token's expiry)"),
  ENDPOINT_CONNECT_SECONDS: positiveInt(60, "an endpoint nobody connects to within this time expires"),
  ACK_TIMEOUT_SECONDS: positiveInt(10, "an event not acknowledged within this time raises a SyncError"),
  UNRESPONSIVE_THRESHOLD: positiveInt(1, "consecutive missed acknowledgements after which a subscriber is unsubscribed"),
  RESEND_MIN_SECONDS: nonNegativeInt(10, "a resent event (same `id`) is accepted again only after this long (429 before)"),
  HEARTBEAT_SECONDS: nonNegativeInt(0,
    "offer the legacy `heartbeat` event (listed in `eventsSupported`, subscribable as `hub.events=…,heartbeat`, never publishable) and send it this often to the subscriptions that list it, for pre-3.0.0 clients",
    "`0` (off)"),
  TOPIC_IDLE_SECONDS: positiveInt(86400, "a topic with no subscribers and no activity this long is deleted"),
  EVENT_LOG_LIMIT: positiveInt(1000, "events kept in each topic's log"),
  PROPRIETARY_EVENTS: {
    default: "empty",
    doc: "extra reverse-domain event names to accept (e.g. `org.example.viewer_layout`)",
    parse: (raw) => parseProprietaryEvents(raw ?? undefined),
  } satisfies Setting<string[]>,
  PUBLIC_URL: {
    default: "the request's origin",
    doc: "origin to put in endpoint URLs, e.g. behind a TLS proxy (trailing slashes dropped)",
    parse: (raw) => (raw?.trim() ? raw.trim().replace(/\/+$/, "") : undefined),
  } satisfies Setting<string | undefined>,
  LOG_LEVEL: {
    default: "`info`",
    doc: "`info`, `warn` (warnings and errors) or `silent`; any other value is `info`",
    parse: (raw): "info" | "warn" | "silent" => (raw === "silent" || raw === "warn" ? raw : "info"),
  } satisfies Setting<"info" | "warn" | "silent">,
  METRICS_TOKEN: {
    ...text(undefined, "bearer secret for `GET /metrics` ([Metrics](#metrics))", "unset (no `/metrics`)"),
    secret: true,
  },
  DO_JURISDICTION: oneOf(JURISDICTIONS, undefined,
    "keep topic objects in a jurisdiction (`eu`, `fedramp`, …); changes every topic's object id ([Data placement](#data-placement))"),
  DO_LOCATION_HINT: oneOf(LOCATION_HINTS, undefined, "where new topic objects are created (`weur`, `enam`, …)"),
} satisfies Record<string, Setting<unknown>>;

export type SettingName = keyof typeof SETTINGS;

/** The settings as the environment holds them: text, each optional. */
export type SettingVars = { [K in SettingName]?: string };

/** One setting read from the environment, parsed by its row of the table. */
export function setting<K extends SettingName>(vars: SettingVars, name: K): ReturnType<(typeof SETTINGS)[K]["parse"]> {
  return SETTINGS[name].parse(vars[name], name) as ReturnType<(typeof SETTINGS)[K]["parse"]>;
}

// ---- the docs ------------------------------------------------------------------------------------

export const DOCS_START = "<!-- settings: generated from src/settings.ts by `npm run docs:settings`; do not edit by hand -->";
export const DOCS_END = "<!-- settings: end -->";

const cell = (s: string) => s.replace(/\|/g, "\\|");

/** The settings table of docs/operations.md "Settings". */
export function settingsMarkdown(): string {
  const rows = Object.entries(SETTINGS).map(([name, s]: [string, Setting<unknown>]) =>
    `| \`${name}\`${s.secret ? " (secret)" : ""} | ${cell(s.default)} | ${cell(s.doc)} |`);
  return ["| setting | default | meaning |", "|---|---|---|", ...rows].join("\n");
}

/** `doc` with the text between the markers replaced by `body`; undefined when the markers are missing. */
export function withSettingsBlock(doc: string, body: string): string | undefined {
  const start = doc.indexOf(DOCS_START);
  const end = doc.indexOf(DOCS_END);
  if (start < 0 || end < start) return undefined;
  return `${doc.slice(0, start + DOCS_START.length)}\n${body}\n${doc.slice(end)}`;
}

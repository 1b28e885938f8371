// Parsing and validation of subscribe / unsubscribe requests (fhircast.hl7.org/STU3/2-4-Subscribing.html).
// Input is the list of form parameters (or a JSON object's members); output a typed request or a 400
// with a plain-text reason for developers. Pure module.
import type { EventCatalog } from "../fhircast/catalog";
import type { HubConfig } from "../config";
import { MAX_TOPIC_LENGTH, parseTopic } from "../fhircast/topic-name";
import { fail, ok, type Result } from "../fhircast/wire";

export interface SubscribeRequest {
  mode: "subscribe";
  topic: string;
  /** Canonical, de-duplicated, in request order. */
  events: string[];
  leaseSeconds: number;
  name?: string;
  /** Present on a re-subscribe of an existing subscription (fhircast.hl7.org/STU3/2-4-Subscribing.html). */
  endpoint?: string;
}

export interface UnsubscribeRequest {
  mode: "unsubscribe";
  topic: string;
  endpoint: string;
}

export type SubscriptionRequest = SubscribeRequest | UnsubscribeRequest;

export { MAX_TOPIC_LENGTH };
export const MAX_NAME_LENGTH = 256;

/** Parameters whose value is one string. Aliases seen in the wild map to their spec name. */
const ALIASES: Record<string, string> = {
  "hub.lease": "hub.lease_seconds", // OHIF sends hub.lease
  endpoint: "hub.channel.endpoint", // older @medplum/core
};

/** Turns form pairs or JSON members into a single-valued map; a repeated parameter is a 400 (fhircast.hl7.org/STU3/2-4-Subscribing.html). */
export function collectParams(pairs: Iterable<[string, unknown]>): Result<Map<string, string>> {
  const params = new Map<string, string>();
  for (const [rawKey, rawValue] of pairs) {
    const key = ALIASES[rawKey] ?? rawKey;
    let value: string;
    if (typeof rawValue === "string") value = rawValue;
    else if (typeof rawValue === "number" || typeof rawValue === "boolean") value = String(rawValue);
    else if (Array.isArray(rawValue) && key === "hub.events" && rawValue.every((v) => typeof v === "string")) {
      value = rawValue.join(",");
    } else {
      return fail(400, "invalid", `parameter ${rawKey} must be a string`);
    }
    if (params.has(key)) return fail(400, "invalid", `parameter ${key} appears more than once`);
    // The spec's own unsubscribe example ends the endpoint with %0A: trim (fhircast.hl7.org/STU3/2-4-Subscribing.html).
    params.set(key, value.trim());
  }
  return ok(params);
}

/** Parses `hub.events`: trimmed, de-duplicated case-insensitively, `*` and unknown events refused. */
export function parseEvents(raw: string | undefined, catalog: EventCatalog): Result<string[]> {
  if (raw === undefined || raw === "") return fail(400, "required", "hub.events is required and must name at least one event");
  const out: string[] = [];
  for (const part of raw.split(",")) {
    const name = part.trim();
    if (name === "") continue;
    if (name.includes("*")) {
      return fail(400, "not-supported", `hub.events: wildcards ("${name}") are not supported by FHIRcast 3.0.0 hubs; list the events`);
    }
    const spec = catalog.get(name);
    if (!spec) return fail(400, "not-supported", `hub.events: "${name}" is not an event this hub supports`);
    if (!out.includes(spec.name)) out.push(spec.name);
  }
  if (out.length === 0) return fail(400, "required", "hub.events must name at least one event");
  return ok(out);
}

/** Validates a subscribe or unsubscribe request (fhircast.hl7.org/STU3/2-4-Subscribing.html). */
export function parseSubscription(
  params: Map<string, string>,
  catalog: EventCatalog,
  config: HubConfig,
): Result<SubscriptionRequest> {
  const channel = params.get("hub.channel.type");
  if (channel === undefined || channel === "") return fail(400, "required", "hub.channel.type is required (websocket)");
  if (channel.toLowerCase() !== "websocket") {
    return fail(400, "not-supported", `hub.channel.type "${channel}" is not supported: FHIRcast 3.0.0 hubs use websocket`);
  }
  const mode = params.get("hub.mode");
  if (mode !== "subscribe" && mode !== "unsubscribe") {
    return fail(400, "invalid", `hub.mode must be "subscribe" or "unsubscribe"${mode ? `, got "${mode}"` : ""}`);
  }
  const parsedTopic = parseTopic(params.get("hub.topic") ?? "");
  if (!parsedTopic.ok) return parsedTopic;
  const topic = parsedTopic.value;
  const endpoint = params.get("hub.channel.endpoint") || undefined;

  if (mode === "unsubscribe") {
    if (!endpoint) return fail(400, "required", "hub.channel.endpoint is required to unsubscribe");
    return ok({ mode, topic, endpoint });
  }

  const events = parseEvents(params.get("hub.events"), catalog);
  if (!events.ok) return events;

  let leaseSeconds = config.leaseDefaultSeconds;
  const leaseRaw = params.get("hub.lease_seconds");
  if (leaseRaw !== undefined && leaseRaw !== "") {
    // Any positive integer is a valid request, however many digits: it is capped at the hub's maximum
    // (Number() of a huge one is a huge float or Infinity, which the cap absorbs).
    if (!/^\d+$/.test(leaseRaw) || Number(leaseRaw) <= 0) {
      return fail(400, "invalid", `hub.lease_seconds must be a positive integer, got "${leaseRaw}"`);
    }
    leaseSeconds = Math.min(Number(leaseRaw), config.leaseMaxSeconds);
  }

  const name = params.get("subscriber.name") || undefined;
  if (name && name.length > MAX_NAME_LENGTH) {
    return fail(400, "invalid", `subscriber.name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  return ok({ mode, topic, events: events.value, leaseSeconds, name, endpoint });
}

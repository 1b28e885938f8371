// Validation of a publish (Request Context Change, fhircast.hl7.org/STU3/2-6-SendEventNotification.html) against the event catalog.
// Turns an untrusted JSON body into a typed request for the topic object, or a 4xx naming the problem.
// The hub runs it on every publish; the subscriber client runs the same code before it sends one.
// Pure module, no dependencies (docs/decisions.md "One FHIRcast model").
import { requiredAnchor, referenceId } from "./anchors";
import { EXTENSION_KEY, type EventCatalog, type EventRole, type EventSpec } from "./catalog";
import { parseTopic } from "./topic-name";
import { type ContentOp, parseUpdateBundle } from "./update-bundle";
import { type ContextEntry, type EventBody, type Failure, fail, isObject, type Notification, ok, type Result } from "./wire";

/** A publish that passed every stateless check; the topic object does what needs state. */
export interface PublishRequest {
  notification: Notification;
  /** Canonical event name (catalog spelling). */
  eventName: string;
  role: EventRole;
  /** `Type/id` of the anchor for open/close/update/select events. */
  anchor?: string;
  anchorType?: string;
  /** The version an update is based on (fhircast.hl7.org/STU3/2-10-ContentSharing.html). */
  versionId?: string;
  /** An update's Bundle as operations, applied all or nothing by the topic object. */
  ops?: ContentOp[];
}

function checkReference(value: unknown, spec: { resourceType: string }, where: string): string | undefined {
  if (!isObject(value)) return `${where}.reference must be a FHIR Reference object`;
  if (value.reference !== undefined && typeof value.reference !== "string") return `${where}.reference.reference must be a string`;
  if (spec.resourceType && typeof value.reference === "string" && !referenceId(value, spec.resourceType)) {
    return `${where}.reference.reference must refer to a ${spec.resourceType} ("${spec.resourceType}/<id>")`;
  }
  return undefined;
}

/** Checks `context` against the event's key table (fhircast.hl7.org/STU3/2-3-Events.html, fhircast.hl7.org/STU3/3_Events.html): keys, cardinality, value kind, type. */
function checkContext(spec: EventSpec, context: unknown[]): Result<ContextEntry[]> {
  const counts = new Map<string, number>();
  for (const [i, entry] of context.entries()) {
    const where = `event.context[${i}]`;
    if (!isObject(entry) || typeof entry.key !== "string") {
      return fail(400, "invalid", `${where} must be an object with a string "key"`);
    }
    if (entry.key === EXTENSION_KEY || spec.proprietary) continue;
    const keySpec = spec.keys.find((k) => k.key === entry.key);
    if (!keySpec) {
      const allowed = [...spec.keys.map((k) => k.key), EXTENSION_KEY].join(", ");
      return fail(400, "invalid", `${where}: key "${entry.key}" is not defined for ${spec.name} (allowed: ${allowed})`);
    }
    counts.set(keySpec.key, (counts.get(keySpec.key) ?? 0) + 1);
    if (keySpec.kind === "resource") {
      const r = entry.resource;
      if (!isObject(r)) return fail(400, "invalid", `${where} ("${entry.key}") must carry a "resource" object`);
      if (r.resourceType !== keySpec.resourceType) {
        return fail(400, "invalid",
          `${where} ("${entry.key}"): resource.resourceType must be "${keySpec.resourceType}", got ${JSON.stringify(r.resourceType ?? null)}`);
      }
    } else {
      const values = keySpec.lenientArray && Array.isArray(entry.reference) ? entry.reference : [entry.reference];
      for (const v of values) {
        const problem = checkReference(v, keySpec, where);
        if (problem) return fail(400, "invalid", `${problem} ("${entry.key}")`);
      }
    }
  }
  if (!spec.proprietary) {
    for (const k of spec.keys) {
      const n = counts.get(k.key) ?? 0;
      if (n < k.min) return fail(400, "required", `event.context: ${spec.name} requires key "${k.key}"`);
      if (n > k.max) return fail(400, "invalid", `event.context: ${spec.name} allows key "${k.key}" at most ${k.max} time(s), got ${n}`);
    }
  }
  return ok(context as ContextEntry[]);
}

/**
 * What zod's `PublishEnvelope` schema named a value of the wrong type (the hub answered with that
 * schema's messages before this check was written by hand; its messages are kept word for word).
 */
function typeName(v: unknown): string {
  if (typeof v === "number") return Number.isNaN(v) ? "NaN" : Number.isFinite(v) ? "number" : String(v);
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "object" && Object.getPrototypeOf(v) !== Object.prototype && "constructor" in v && v.constructor) {
    return (v.constructor as { name: string }).name;
  }
  return typeof v;
}

const wrongType = (path: string, expected: string, v: unknown): Failure =>
  fail(400, "invalid", `${path}: Invalid input: expected ${expected}, received ${typeName(v)}`);

/** A string member of at most `max` characters, and non-empty if `required`. */
function checkString(v: unknown, path: string, max: number, required: boolean): Failure | undefined {
  if (typeof v !== "string") return wrongType(path, "string", v);
  if (required && v.length < 1) return fail(400, "invalid", `${path}: ${path} must be a non-empty string`);
  if (v.length > max) return fail(400, "invalid", `${path}: Too big: expected string to have <=${max} characters`);
  return undefined;
}

/** The members of `event` the envelope check reads; any other member is carried through as it came. */
const ENVELOPE_MEMBERS = new Set(["hub.topic", "hub.event", "context", "context.versionId", "versionId"]);

/**
 * The envelope of a publish request, checked before the catalog looks at the context
 * (fhircast.hl7.org/STU3/2-6-SendEventNotification.html): the first problem, in member order, as a 400.
 * The event comes back with its envelope members first, then the others in their order, without a
 * `__proto__` member (JSON.parse makes one an own member; it never reaches a subscriber).
 */
function checkEnvelope(body: unknown): Result<{ timestamp: string; id: string; event: EventBody & { versionId?: string } }> {
  if (!isObject(body)) return wrongType("body", "object", body);
  const problem = checkString(body.timestamp, "timestamp", 64, true) ?? checkString(body.id, "id", 256, true);
  if (problem) return problem;
  const event = body.event;
  if (!isObject(event)) return wrongType("event", "object", event);
  const optional = (name: string) => (name in event && event[name] !== undefined ? checkString(event[name], `event.${name}`, 256, false) : undefined);
  const eventProblem =
    checkString(event["hub.topic"], "event.hub.topic", 512, true) ??
    checkString(event["hub.event"], "event.hub.event", 256, true) ??
    (Array.isArray(event.context) ? undefined : fail(400, "invalid", "event.context: event.context must be an array")) ??
    optional("context.versionId") ??
    optional("versionId");
  if (eventProblem) return eventProblem;
  const out: Record<string, unknown> = { "hub.topic": event["hub.topic"], "hub.event": event["hub.event"], context: [...(event.context as unknown[])] };
  for (const name of ["context.versionId", "versionId"]) if (name in event) out[name] = event[name];
  for (const name of Object.keys(event)) if (!ENVELOPE_MEMBERS.has(name) && name !== "__proto__") out[name] = event[name];
  return ok({ timestamp: body.timestamp as string, id: body.id as string, event: out as EventBody & { versionId?: string } });
}

/**
 * Validates a publish body. `pathTopic` is the topic from `POST {hub.url}/{topic}` (older clients);
 * when present it must equal `event.hub.topic` (fhircast.hl7.org/STU3/2-6-SendEventNotification.html).
 */
export function validatePublish(body: unknown, catalog: EventCatalog, pathTopic?: string): Result<PublishRequest> {
  const parsed = checkEnvelope(body);
  if (!parsed.ok) return parsed;
  const { event } = parsed.value;
  const spec = catalog.get(event["hub.event"]);
  if (!spec) {
    return fail(400, "not-supported", `event.hub.event "${event["hub.event"]}" is not an event this hub supports (see eventsSupported in .well-known/fhircast-configuration)`);
  }
  if (spec.hubOnly) {
    return fail(400, "not-supported", `event.hub.event "${spec.name}" is sent by the hub itself; it cannot be published`);
  }
  const topic = parseTopic(event["hub.topic"], "event.hub.topic");
  if (!topic.ok) return topic;
  if (pathTopic !== undefined && pathTopic !== topic.value) {
    return fail(400, "invalid", `the topic in the URL does not equal event.hub.topic`);
  }
  const context = checkContext(spec, event.context);
  if (!context.ok) return context;
  const anchor = requiredAnchor(spec, context.value);
  if (!anchor.ok) return anchor;

  // spec note A3: accept `versionId` on input, emit the dotted form.
  const versionId = event["context.versionId"] ?? event.versionId;
  if (spec.role === "update" && !versionId) {
    return fail(400, "required", `event["context.versionId"] is required for ${spec.name} (the version the update is based on)`);
  }
  let ops: ContentOp[] | undefined;
  if (spec.role === "update") {
    const parsedOps = parseUpdateBundle(context.value.find((e) => e.key === "updates")?.resource);
    if (!parsedOps.ok) return parsedOps;
    ops = parsedOps.value;
  }
  const { versionId: _alias, "context.priorVersionId": _prior, ...rest } = event;
  const notification: Notification = {
    timestamp: parsed.value.timestamp,
    id: parsed.value.id,
    event: { ...rest, "hub.topic": topic.value, "hub.event": spec.name, context: context.value },
  };
  delete notification.event["context.versionId"];
  return ok({
    notification,
    eventName: spec.name,
    role: spec.role,
    anchor: anchor.value,
    anchorType: spec.anchorType,
    versionId,
    ops,
  });
}

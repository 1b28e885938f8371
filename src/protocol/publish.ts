// Validation of a publish (Request Context Change, fhircast.hl7.org/STU3/2-6-SendEventNotification.html) against the event catalog.
// Turns an untrusted JSON body into a typed request for the topic object, or a 4xx naming the problem.
import { EXTENSION_KEY, type EventCatalog, type EventRole, type EventSpec } from "../events/catalog";
import { parseTopic } from "./topic-name";
import { type ContentOp, parseUpdateBundle } from "./update-bundle";
import { type ContextEntry, fail, type Notification, ok, PublishEnvelope, type Result } from "./wire";

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

/**
 * A validated publish as the Worker hands it to the topic object: the notification travels as its
 * JSON text, which crosses the RPC boundary more cheaply than a structured clone of the object, and is
 * the very frame the object sends for events it does not change (docs/performance.md).
 */
export type PublishCall = Omit<PublishRequest, "notification"> & { notification: string };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** `Type/id`, `Type/id/_history/v` or an absolute URL ending so; returns the id or undefined. */
export function referenceId(reference: unknown, type: string): string | undefined {
  if (!isObject(reference) || typeof reference.reference !== "string") return undefined;
  const m = new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})(?:/_history/[^/]+)?$`).exec(reference.reference);
  return m?.[1];
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

/** Finds the anchor's `Type/id` in a validated context, or explains why it cannot. */
function anchorOf(spec: EventSpec, context: ContextEntry[]): Result<string | undefined> {
  if (!spec.anchorType || !spec.anchorKey) return ok(undefined);
  const entry = context.find((e) => e.key === spec.anchorKey);
  if (spec.role === "open" || spec.role === "close") {
    const r = entry?.resource as Record<string, unknown> | undefined;
    const id = r?.id;
    if (typeof id !== "string" || id.trim() === "") {
      return fail(400, "required", `event.context "${spec.anchorKey}": the ${spec.anchorType} resource needs an "id" (the hub pairs close with open by it)`);
    }
    return ok(`${spec.anchorType}/${id}`);
  }
  const id = referenceId(entry?.reference, spec.anchorType);
  if (!id) {
    return fail(400, "required", `event.context "${spec.anchorKey}": reference must be "${spec.anchorType}/<id>"`);
  }
  return ok(`${spec.anchorType}/${id}`);
}

/**
 * Validates a publish body. `pathTopic` is the topic from `POST {hub.url}/{topic}` (older clients);
 * when present it must equal `event.hub.topic` (fhircast.hl7.org/STU3/2-6-SendEventNotification.html).
 */
export function validatePublish(body: unknown, catalog: EventCatalog, pathTopic?: string): Result<PublishRequest> {
  const parsed = PublishEnvelope.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.join(".") || "body";
    return fail(400, "invalid", `${path}: ${issue.message}`);
  }
  const { event } = parsed.data;
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
  const anchor = anchorOf(spec, context.value);
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
    timestamp: parsed.data.timestamp,
    id: parsed.data.id,
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

// Building events from the event catalog (the table the hub validates with) and checking them with
// the hub's own validatePublish, so an invalid event fails here, before it is sent (fhircast.hl7.org/STU3/2-6-SendEventNotification.html, fhircast.hl7.org/STU3/3_Events.html).
import { EXTENSION_KEY, type EventCatalog } from "../fhircast/catalog";
import { type PublishRequest, validatePublish } from "../fhircast/publish";
import type { ContextEntry, Notification } from "../fhircast/wire";

/** A FHIR resource as far as this client needs to know it. */
export interface FhirResource {
  resourceType: string;
  id?: string;
  [element: string]: unknown;
}

/** A FHIR Reference, or its `Type/id` string. */
export type ReferenceLike = string | { reference: string; [element: string]: unknown };

/**
 * Context given by key, e.g. `{ report, patient, study: [s1, s2] }`: each value becomes a `resource`
 * or `reference` entry as the catalog defines the key for the event (`extension` becomes `data`).
 */
export type ContextValues = Record<string, FhirResource | ReferenceLike | readonly (FhirResource | ReferenceLike)[] | Record<string, unknown>>;

/** An event that failed the hub's validation locally (the status the hub would answer, and why). */
export class EventValidationError extends Error {
  override readonly name = "EventValidationError";
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(`invalid event (the hub would answer ${status}): ${detail}`);
  }
}

export const resourceEntry = (key: string, resource: FhirResource): ContextEntry => ({ key, resource });

export const referenceEntry = (key: string, reference: ReferenceLike): ContextEntry => ({
  key,
  reference: typeof reference === "string" ? { reference } : reference,
});

/** The changes of one content update: resources to add or replace, `Type/id`s to remove. */
export interface ContentChanges {
  put?: readonly FhirResource[];
  delete?: readonly string[];
  /** The Bundle id (the hub distributes it unchanged); default: a new UUID. */
  id?: string;
}

/** A `*-update` Bundle (profile fhircast-content-update-bundle): transaction, PUT and DELETE entries. */
export function updateBundle(changes: ContentChanges): FhirResource {
  const entry: Record<string, unknown>[] = [];
  for (const r of changes.put ?? []) {
    entry.push({ request: { method: "PUT", url: r.id ? `${r.resourceType}/${r.id}` : r.resourceType }, resource: r });
  }
  for (const key of changes.delete ?? []) entry.push({ fullUrl: key, request: { method: "DELETE", url: key } });
  return { resourceType: "Bundle", id: changes.id ?? crypto.randomUUID(), type: "transaction", entry };
}

const isResource = (v: unknown): v is FhirResource =>
  typeof v === "object" && v !== null && !Array.isArray(v) && typeof (v as { resourceType?: unknown }).resourceType === "string";

/** Context entries for `eventName` from values given by key, shaped as the catalog says. */
export function contextFor(catalog: EventCatalog, eventName: string, values: ContextValues): ContextEntry[] {
  const spec = catalog.get(eventName);
  const out: ContextEntry[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (key === EXTENSION_KEY) {
      out.push({ key, data: value });
      continue;
    }
    const keySpec = spec?.keys.find((k) => k.key === key);
    const list = Array.isArray(value) ? (value as readonly unknown[]) : [value];
    for (const v of list) {
      if (keySpec?.kind === "reference") {
        out.push(referenceEntry(key, isResource(v) && v.id ? `${v.resourceType}/${v.id}` : (v as ReferenceLike)));
      } else if (isResource(v)) {
        out.push(resourceEntry(key, v));
      } else {
        out.push({ key, reference: typeof v === "string" ? { reference: v } : v });
      }
    }
  }
  return out;
}

export interface EventOptions {
  id?: string;
  timestamp?: string;
  /** For `*-update`: the version the update is based on (`context.versionId`, fhircast.hl7.org/STU3/2-10-ContentSharing.html). */
  versionId?: string;
  /** Extra members of `event` (rarely needed). */
  extra?: Record<string, unknown>;
}

/** A notification envelope as a subscriber POSTs it (fhircast.hl7.org/STU3/2-6-SendEventNotification.html). */
export function buildEvent(topic: string, name: string, context: ContextEntry[], opts: EventOptions = {}): Notification {
  const event: Notification["event"] = { ...opts.extra, "hub.topic": topic, "hub.event": name, context };
  if (opts.versionId !== undefined) event["context.versionId"] = opts.versionId;
  return { timestamp: opts.timestamp ?? new Date().toISOString(), id: opts.id ?? crypto.randomUUID(), event };
}

/**
 * Runs the hub's validatePublish on the event; throws EventValidationError with the hub's own
 * message when it would be refused. Returns the validated request (canonical name, role, anchor).
 */
export function checkEvent(notification: Notification, catalog: EventCatalog): PublishRequest {
  const result = validatePublish(notification, catalog);
  if (!result.ok) throw new EventValidationError(result.status, result.code, result.detail);
  return result.value;
}

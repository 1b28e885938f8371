// Anchors and references (fhircast.hl7.org/STU3/2-3-Events.html, fhircast.hl7.org/STU3/4-2-2-multitab-considerations.html):
// the `Type/id` an event concerns, read from a FHIR Reference, a resource URL or the anchor's
// resource. One place for this parsing: the hub's publish validation (strict: it refuses what it
// cannot pair) and the client's version tracking (lenient: it reads whatever arrived). Pure module.
import type { EventSpec } from "./catalog";
import { type ContextEntry, fail, isObject, ok, type Result } from "./wire";

/** A FHIR id, as the hub accepts it in references and resource URLs. */
export const ID_PATTERN = "[A-Za-z0-9\\-.]{1,64}";
/** A FHIR resourceType, as the hub accepts it in resource URLs. */
export const TYPE_PATTERN = "[A-Z][A-Za-z]{1,63}";

const KEY_AT_END = new RegExp(`(?:^|/)(${TYPE_PATTERN})/(${ID_PATTERN})(?:/_history/[^/]+)?$`);

/** `Type/id`, `Type/id/_history/v` or an absolute URL ending so; returns the id or undefined. */
export function referenceId(reference: unknown, type: string): string | undefined {
  if (!isObject(reference) || typeof reference.reference !== "string") return undefined;
  const m = new RegExp(`(?:^|/)${type}/(${ID_PATTERN})(?:/_history/[^/]+)?$`).exec(reference.reference);
  return m?.[1];
}

/** `Type/id` from a relative or absolute resource URL; undefined for urn: and other forms. */
export function resourceKeyFromUrl(url: unknown): string | undefined {
  if (typeof url !== "string" || url.startsWith("urn:")) return undefined;
  const m = KEY_AT_END.exec(url);
  return m ? `${m[1]}/${m[2]}` : undefined;
}

/** The context entry holding the event's anchor, if the event has one and the entry is there. */
function anchorEntry(spec: EventSpec, context: readonly ContextEntry[]): ContextEntry | undefined {
  return context.find((e) => e.key === spec.anchorKey);
}

/**
 * `Type/id` of the anchor an event concerns, per the catalog; undefined for anchorless events and
 * when it cannot be read. Lenient, for events already accepted (the client's version tracking): the
 * anchor's resource id when it carries one, else its reference.
 */
export function anchorOf(spec: EventSpec | undefined, context: readonly ContextEntry[]): string | undefined {
  if (!spec?.anchorType || !spec.anchorKey) return undefined;
  const entry = anchorEntry(spec, context);
  if (!entry) return undefined;
  const r = entry.resource as { resourceType?: unknown; id?: unknown } | undefined;
  if (r && typeof r.id === "string" && r.id !== "") return `${spec.anchorType}/${r.id}`;
  const id = referenceId(entry.reference, spec.anchorType);
  return id ? `${spec.anchorType}/${id}` : undefined;
}

/**
 * The anchor's `Type/id` in a context that passed the catalog's checks, or a 400 saying why it cannot
 * be read. Strict, for publishes: open and close carry the resource, whose id pairs close with open;
 * update and select carry a reference.
 */
export function requiredAnchor(spec: EventSpec, context: readonly ContextEntry[]): Result<string | undefined> {
  if (!spec.anchorType || !spec.anchorKey) return ok(undefined);
  const entry = anchorEntry(spec, context);
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

// Parsing of a `*-update` event's `updates` Bundle (fhircast.hl7.org/STU3/2-10-ContentSharing.html, profile
// fhircast-content-update-bundle) into a list of operations. Stateless checks only: the topic object
// does the version compare and the checks against the open context. Pure module.
import { ID_PATTERN, resourceKeyFromUrl, TYPE_PATTERN } from "./anchors";
import { fail, isObject, ok, type Result } from "./wire";

/** Most entries one update may carry; the spec recommends "dozens" and 413 beyond the hub's limit. */
export const MAX_UPDATE_ENTRIES = 200;

export type ContentOp =
  | { method: "PUT"; key: string; fullUrl?: string; resource: Record<string, unknown> }
  | { method: "DELETE"; key: string };

const RESOURCE_KEY = new RegExp(`^${TYPE_PATTERN}/${ID_PATTERN}$`);

/**
 * Turns the Bundle into operations: PUT adds or replaces a resource (identified by its own
 * resourceType/id), DELETE removes one (identified by request.url, else fullUrl). POST, a resource
 * listed twice, or a malformed entry rejects the whole update (fhircast.hl7.org/STU3/2-10-ContentSharing.html: never apply part of a Bundle).
 */
export function parseUpdateBundle(bundle: unknown): Result<ContentOp[]> {
  if (!isObject(bundle) || bundle.resourceType !== "Bundle") return fail(400, "invalid", `"updates" must be a Bundle`);
  if (bundle.type !== "transaction") {
    return fail(400, "invalid", `"updates" Bundle.type must be "transaction", got ${JSON.stringify(bundle.type ?? null)}`);
  }
  const entries = bundle.entry ?? [];
  if (!Array.isArray(entries)) return fail(400, "invalid", `"updates" Bundle.entry must be an array`);
  if (entries.length > MAX_UPDATE_ENTRIES) {
    return fail(413, "too-long", `"updates" has ${entries.length} entries; this hub accepts at most ${MAX_UPDATE_ENTRIES} per update`);
  }
  const ops: ContentOp[] = [];
  const seen = new Set<string>();
  for (const [i, entry] of entries.entries()) {
    const where = `updates.entry[${i}]`;
    if (!isObject(entry)) return fail(400, "invalid", `${where} must be an object`);
    const request = isObject(entry.request) ? entry.request : undefined;
    const method = typeof request?.method === "string" ? request.method.toUpperCase() : undefined;
    let op: ContentOp;
    if (method === "PUT") {
      const r = entry.resource;
      if (!isObject(r) || typeof r.resourceType !== "string" || typeof r.id !== "string" || r.id === "") {
        return fail(400, "invalid", `${where}: a PUT needs a resource with resourceType and id`);
      }
      const key = `${r.resourceType}/${r.id}`;
      if (!RESOURCE_KEY.test(key)) return fail(400, "invalid", `${where}: "${key}" is not a valid resourceType/id`);
      op = { method, key, resource: r, ...(typeof entry.fullUrl === "string" ? { fullUrl: entry.fullUrl } : {}) };
    } else if (method === "DELETE") {
      if (entry.resource !== undefined) return fail(400, "invalid", `${where}: a DELETE carries no resource`);
      const key = resourceKeyFromUrl(request?.url) ?? resourceKeyFromUrl(entry.fullUrl);
      if (!key) return fail(400, "invalid", `${where}: a DELETE needs request.url or fullUrl of the form "Type/id"`);
      op = { method, key };
    } else if (method === "POST") {
      return fail(422, "not-supported", `${where}: POST is not allowed in content updates (the content model cannot assign ids); use PUT with an id`);
    } else {
      return fail(400, "invalid", `${where}: request.method must be PUT or DELETE`);
    }
    if (seen.has(op.key)) return fail(400, "invalid", `${where}: ${op.key} appears more than once in the Bundle`);
    seen.add(op.key);
    ops.push(op);
  }
  return ok(ops);
}

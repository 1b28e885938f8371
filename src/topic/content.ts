// Content sharing in the topic object (FHIRcast 3.0.0 §2.10): the versionId compare-and-set and the
// all-or-nothing application of an update's operations. Runs inside the caller's transactionSync.
import type { PublishRequest } from "../protocol/publish";
import { fail, type Notification, ok, type Result } from "../protocol/wire";
import type { TopicStore } from "./store";

/** `Type/id` of every resource in an open event's context: these may be updated, never deleted. */
function openContextKeys(open: Notification): Set<string> {
  const keys = new Set<string>();
  for (const e of open.event.context) {
    const r = e.resource as { resourceType?: unknown; id?: unknown } | undefined;
    if (r && typeof r.resourceType === "string" && typeof r.id === "string") keys.add(`${r.resourceType}/${r.id}`);
  }
  return keys;
}

/**
 * Applies an update to its anchor's content when `req.versionId` is the anchor's current version;
 * returns the event to distribute (new `context.versionId`, `context.priorVersionId` = the request's).
 * Every check runs before the first write, so a refusal leaves content and version unchanged.
 */
export function applyUpdate(store: TopicStore, req: PublishRequest): Result<Notification> {
  const row = store.context(req.anchor!);
  if (!row) return fail(409, "conflict", `${req.anchor} is not open in this topic; open it before updating its content`);
  if (req.versionId !== row.version_id) {
    return fail(409, "conflict",
      `context.versionId "${req.versionId}" is not the current version of ${req.anchor}; the current version is "${row.version_id}"`);
  }
  const protectedKeys = openContextKeys(JSON.parse(row.open_event) as Notification);
  for (const op of req.ops ?? []) {
    if (op.method === "DELETE" && protectedKeys.has(op.key)) {
      return fail(422, "business-rule", `${op.key} is part of the open event's context and cannot be deleted by an update`);
    }
  }
  for (const op of req.ops ?? []) {
    if (op.method === "PUT") store.putContent(row.anchor, op.key, op.fullUrl, op.resource);
    else store.deleteContent(row.anchor, op.key);
  }
  const versionId = crypto.randomUUID();
  store.setContextVersion(row.anchor, versionId);
  return ok({
    ...req.notification,
    event: { ...req.notification.event, "context.versionId": versionId, "context.priorVersionId": req.versionId! },
  });
}

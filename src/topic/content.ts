// Content sharing in the topic object (fhircast.hl7.org/STU3/2-10-ContentSharing.html): the versionId compare-and-set and the
// all-or-nothing application of an update's operations. Runs inside the caller's transactionSync.
import type { PublishRequest } from "../fhircast/publish";
import { fail, type Notification, ok, type Result } from "../fhircast/wire";
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
/** How much shared content the topic object keeps (HubConfig, docs/operations.md "Settings"). */
export interface ContentLimits {
  perAnchor: number;
  perTopic: number;
}

const utf8 = new TextEncoder();

export function applyUpdate(store: TopicStore, req: PublishRequest, limits: ContentLimits): Result<Notification> {
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
  // Each PUT's JSON, serialized once: measured here and stored as is.
  const texts = new Map<string, string>();
  for (const op of req.ops ?? []) if (op.method === "PUT") texts.set(op.key, JSON.stringify(op.resource));
  const tooMuch = checkContentSize(store, row.anchor, req, texts, limits);
  if (tooMuch) return tooMuch;
  for (const op of req.ops ?? []) {
    if (op.method === "PUT") store.putContent(row.anchor, op.key, op.fullUrl, texts.get(op.key)!);
    else store.deleteContent(row.anchor, op.key);
  }
  const versionId = crypto.randomUUID();
  store.setContextVersion(row.anchor, versionId);
  return ok({
    ...req.notification,
    event: { ...req.notification.event, "context.versionId": versionId, "context.priorVersionId": req.versionId! },
  });
}

/**
 * Refuses (413) an update that would grow the anchor's content beyond `limits.perAnchor` or the topic's
 * beyond `limits.perTopic`, so that the current context (GET), the inspector and a restart can always
 * read the state back whole (docs/guarantees.md "Limits"). An update that does not grow the content
 * passes even above a limit (e.g. after the setting was lowered): it can only help.
 */
function checkContentSize(
  store: TopicStore, anchor: string, req: PublishRequest, texts: Map<string, string>, limits: ContentLimits,
): Result<never> | undefined {
  if (!req.ops?.length) return undefined;
  const sizes = store.contentSizes(anchor);
  let anchorBytes = 0;
  for (const n of sizes.values()) anchorBytes += n;
  let growth = 0;
  for (const op of req.ops) {
    growth -= sizes.get(op.key) ?? 0;
    if (op.method === "PUT") growth += utf8.encode(texts.get(op.key)!).byteLength;
  }
  if (growth <= 0) return undefined;
  if (anchorBytes + growth > limits.perAnchor) {
    return fail(413, "too-long",
      `this update would bring the content shared in ${anchor} to ${anchorBytes + growth} bytes; this hub keeps at most ${limits.perAnchor} bytes per anchor (MAX_CONTENT_BYTES_PER_ANCHOR)`);
  }
  const topicBytes = store.contentBytes();
  if (topicBytes + growth > limits.perTopic) {
    return fail(413, "too-long",
      `this update would bring the content shared in this topic to ${topicBytes + growth} bytes; this hub keeps at most ${limits.perTopic} bytes per topic, all open anchors together (MAX_CONTENT_BYTES_PER_TOPIC)`);
  }
  return undefined;
}

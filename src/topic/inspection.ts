// The inspector's view of a topic's open contexts and recent events, within a byte budget
// (docs/inspector.md). Whatever the topic holds — up to 163 open contexts of a request body each, their
// content, a log of 1 MiB events — the answer stays far below what RPC and the inspector's browser can
// take: items are measured in SQL first (octet_length reads no text), loaded newest first while they
// fit, and the rest are replaced by markers that say what was left out.
import type { InspectView, Notification, Truncated } from "../fhircast/wire";
import type { TopicStore } from "./store";

/** Most bytes of stored JSON (open events, content, logged events) one inspector snapshot carries. */
export const INSPECT_MAX_BYTES = 4 * 1024 * 1024;
/** How many logged events the snapshot lists. */
export const INSPECT_EVENTS = 50;
/** Characters read from the start of an item left out: its timestamp, id and event name are there. */
const HEAD_CHARS = 2048;

type Views = Pick<InspectView, "contexts" | "events">;

export function inspection(store: TopicStore, topic: string, current: string | undefined, budget = INSPECT_MAX_BYTES): Views {
  let left = budget;
  /** Takes `bytes` from the budget when they fit. */
  const take = (bytes: number): boolean => {
    if (bytes > left) return false;
    left -= bytes;
    return true;
  };
  const contexts: Views["contexts"] = store.contextSizes().map((c) => {
    const json = take(c.event_bytes) ? store.openEvent(c.anchor) : undefined;
    const event = json !== undefined
      ? withVersion(JSON.parse(json) as Notification, c.version_id)
      : stub(store.openEventHead(c.anchor, HEAD_CHARS), topic, `${c.anchor_type}-open`, c.event_bytes);
    const entry: Record<string, unknown>[] = [];
    let omitted = 0;
    let omittedBytes = 0;
    if (c.content_entries > 0) {
      for (const r of store.contentRowSizes(c.anchor)) {
        const resource = take(r.bytes) ? store.contentResource(r.rowid) : undefined;
        if (resource === undefined) {
          omitted++;
          omittedBytes += r.bytes;
          continue;
        }
        entry.push({ ...(r.full_url ? { fullUrl: r.full_url } : {}), resource: JSON.parse(resource) as unknown });
      }
    }
    const content: Record<string, unknown> = { resourceType: "Bundle", id: c.version_id, type: "collection", entry };
    if (omitted > 0) content.truncated = marker(omittedBytes, omitted);
    return { anchor: c.anchor, type: c.anchor_type, current: c.anchor === current, versionId: c.version_id, event, content };
  });
  const events: Views["events"] = store.eventSizes(INSPECT_EVENTS).map((e) => {
    const body = take(e.bytes) ? store.eventBody(e.seq) : undefined;
    return {
      seq: e.seq,
      acceptedAt: new Date(e.accepted_at).toISOString(),
      event: body !== undefined ? (JSON.parse(body) as Notification) : stub(store.eventHead(e.seq, HEAD_CHARS), topic, e.name, e.bytes, e.id),
    };
  });
  return { contexts, events };
}

function marker(bytes: number, entries?: number): Truncated {
  return {
    bytes,
    ...(entries !== undefined ? { entries } : {}),
    reason: `left out: over the inspector's ${INSPECT_MAX_BYTES}-byte budget per snapshot (newest first)`,
  };
}

/**
 * What stands for an event left out: its timestamp, id and name, read from the start of its stored JSON
 * (the hub writes `{"timestamp":…,"id":…,"event":{"hub.topic":…,"hub.event":…` in that order), an empty
 * context, and the marker.
 */
function stub(head: string, topic: string, name: string, bytes: number, id?: string): Notification & { truncated: Truncated } {
  const field = (key: string): string | undefined => {
    const m = new RegExp(`"${key.replace(".", "\\.")}":("(?:[^"\\\\]|\\\\.)*")`).exec(head);
    try {
      return m ? (JSON.parse(m[1]!) as string) : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    timestamp: field("timestamp") ?? "",
    id: id ?? field("id") ?? "",
    event: { "hub.topic": topic, "hub.event": field("hub.event") ?? name, context: [] },
    truncated: marker(bytes),
  };
}

/** The event as distributed: the hub's versionId at event level (spec note A3). */
function withVersion(n: Notification, versionId: string): Notification {
  return { ...n, event: { ...n.event, "context.versionId": versionId } };
}

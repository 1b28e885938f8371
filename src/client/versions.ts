// Content-sharing versions (fhircast.hl7.org/STU3/2-10-ContentSharing.html): the `context.versionId` of every anchor this client
// has seen opened (live or replayed), updated, or read with GET current context. Updates are sent
// against the tracked version.
import { anchorOf } from "../fhircast/anchors";
import { ANCHORS, type EventCatalog } from "../fhircast/catalog";
import type { CurrentContext, Notification } from "../fhircast/wire";

export class VersionTracker {
  private readonly versions = new Map<string, string>();

  constructor(private readonly catalog: () => EventCatalog) {}

  /** Notes an event's effect on versions; returns its anchor. */
  observe(n: Notification): string | undefined {
    const spec = this.catalog().get(n.event["hub.event"]);
    const anchor = anchorOf(spec, n.event.context);
    if (!anchor || !spec) return anchor;
    const v = n.event["context.versionId"];
    if ((spec.role === "open" || spec.role === "update") && typeof v === "string" && v !== "") this.versions.set(anchor, v);
    else if (spec.role === "close") this.versions.delete(anchor);
    return anchor;
  }

  /** Notes the version of the current context (GET, fhircast.hl7.org/STU3/2-9-GetCurrentContext.html); returns its anchor. */
  observeCurrent(cc: CurrentContext): string | undefined {
    const type = cc["context.type"];
    const key = ANCHORS.find((a) => a.type === type)?.key ?? type.toLowerCase();
    const r = cc.context.find((e) => e.key === key)?.resource as { id?: unknown } | undefined;
    if (!type || typeof r?.id !== "string") return undefined;
    const anchor = `${type}/${r.id}`;
    if (cc["context.versionId"]) this.versions.set(anchor, cc["context.versionId"]);
    return anchor;
  }

  get(anchor: string): string | undefined {
    return this.versions.get(anchor);
  }

  set(anchor: string, versionId: string): void {
    this.versions.set(anchor, versionId);
  }

  delete(anchor: string): void {
    this.versions.delete(anchor);
  }

  /** Every tracked anchor and its version. */
  entries(): [string, string][] {
    return [...this.versions.entries()];
  }
}

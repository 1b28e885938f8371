// Typed access to the topic object's SQLite tables (schema in ./schema.ts, docs/storage.md).
// Every method is synchronous: callers group writes with transactionSync and never await in between.

export type SubscriptionRow = {
  id: string;
  secret_hash: string;
  /** Canonical event names, comma-joined. */
  events: string;
  name: string | null;
  client_id: string | null;
  lease_seconds: number;
  created_at: number;
  connected_at: number | null;
  expires_at: number | null;
};

export type ContextRow = {
  anchor: string;
  anchor_type: string;
  open_event: string;
  version_id: string;
  opened_seq: number;
};

/** How often (in events) the event log is trimmed back to its bound. */
export const TRIM_EVERY = 16;
/** How often (in events) the open contexts are trimmed back to their bound (each trim sorts them). */
export const CONTEXT_TRIM_EVERY = 64;

export type DeadlineKind = "connect" | "lease" | "idle" | "ack" | "heartbeat";

export class TopicStore {
  constructor(private readonly sql: SqlStorage) {}

  // ---- meta -------------------------------------------------------------------------------
  getMeta(key: string): string | undefined {
    return this.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, key).toArray()[0]?.value;
  }
  setMeta(key: string, value: string): void {
    this.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)`, key, value);
  }

  // ---- subscriptions ------------------------------------------------------------------------
  insertSubscription(row: SubscriptionRow): void {
    this.sql.exec(
      `INSERT INTO subscriptions (id, secret_hash, events, name, client_id, lease_seconds, created_at, connected_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      row.id, row.secret_hash, row.events, row.name, row.client_id, row.lease_seconds, row.created_at,
      row.connected_at, row.expires_at,
    );
  }
  subscriptionByHash(hash: string): SubscriptionRow | undefined {
    return this.sql.exec<SubscriptionRow>(`SELECT * FROM subscriptions WHERE secret_hash = ?`, hash).toArray()[0];
  }
  subscription(id: string): SubscriptionRow | undefined {
    return this.sql.exec<SubscriptionRow>(`SELECT * FROM subscriptions WHERE id = ?`, id).toArray()[0];
  }
  subscriptions(): SubscriptionRow[] {
    return this.sql.exec<SubscriptionRow>(`SELECT * FROM subscriptions ORDER BY created_at`).toArray();
  }
  connectedSubscriptionIds(): string[] {
    return this.sql
      .exec<{ id: string }>(`SELECT id FROM subscriptions WHERE connected_at IS NOT NULL`)
      .toArray()
      .map((r) => r.id);
  }
  subscriptionCount(): number {
    return this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM subscriptions`).one().n;
  }
  updateSubscription(id: string, events: string, name: string | null, leaseSeconds: number, expiresAt: number | null): void {
    this.sql.exec(
      `UPDATE subscriptions SET events = ?, name = ?, lease_seconds = ?, expires_at = ? WHERE id = ?`,
      events, name, leaseSeconds, expiresAt, id,
    );
  }
  markConnected(id: string, now: number, expiresAt: number): void {
    this.sql.exec(`UPDATE subscriptions SET connected_at = ?, expires_at = ? WHERE id = ?`, now, expiresAt, id);
  }
  deleteSubscription(id: string): void {
    this.sql.exec(`DELETE FROM subscriptions WHERE id = ?`, id);
    this.sql.exec(`DELETE FROM deadlines WHERE kind IN ('connect', 'lease') AND ref = ?`, id);
  }

  // ---- open contexts (fhircast.hl7.org/STU3/4-2-2-multitab-considerations.html) ----------------------------------------------------------------
  context(anchor: string): ContextRow | undefined {
    return this.sql.exec<ContextRow>(`SELECT * FROM contexts WHERE anchor = ?`, anchor).toArray()[0];
  }
  /** Open contexts, least recently opened first. */
  contexts(): ContextRow[] {
    return this.sql.exec<ContextRow>(`SELECT * FROM contexts ORDER BY opened_seq`).toArray();
  }
  /**
   * The most recently opened context of each anchor type, least recently opened first: what the replay
   * sends. Only these open events are loaded, not up to 163 of a request body each.
   */
  latestContextPerType(): ContextRow[] {
    const latest = new Map<string, { anchor: string; seq: number }>();
    for (const r of this.sql.exec<{ anchor: string; anchor_type: string; opened_seq: number }>(
      `SELECT anchor, anchor_type, opened_seq FROM contexts`)) {
      if ((latest.get(r.anchor_type)?.seq ?? -1) < r.opened_seq) latest.set(r.anchor_type, { anchor: r.anchor, seq: r.opened_seq });
    }
    return [...latest.values()].sort((a, b) => a.seq - b.seq).map((l) => this.context(l.anchor)!);
  }
  /**
   * Records an open. `openEvent` is the event as distributed (JSON); the versionId inside it is the one
   * it opened with, superseded by `version_id` after updates: readers always take `version_id`.
   */
  upsertContext(anchor: string, anchorType: string, openEvent: string, versionId: string, seq: number): void {
    this.sql.exec(
      `INSERT INTO contexts (anchor, anchor_type, open_event, version_id, opened_seq) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (anchor) DO UPDATE SET open_event = excluded.open_event, version_id = excluded.version_id,
         opened_seq = excluded.opened_seq`,
      anchor, anchorType, openEvent, versionId, seq,
    );
  }
  /** Removes an anchor's context and its content; returns whether it was open. */
  deleteContext(anchor: string): boolean {
    const removed = this.sql.exec(`DELETE FROM contexts WHERE anchor = ?`, anchor).rowsWritten > 0;
    this.sql.exec(`DELETE FROM content WHERE anchor = ?`, anchor);
    return removed;
  }
  /**
   * Keeps at most `limit` open contexts, dropping the least recently opened and their content; returns
   * how many were dropped. Two statements whatever the count (it runs every CONTEXT_TRIM_EVERY events).
   */
  trimContexts(limit: number): number {
    const dropped = this.sql.exec(
      `DELETE FROM contexts WHERE anchor IN (SELECT anchor FROM contexts ORDER BY opened_seq DESC LIMIT -1 OFFSET ?)`, limit,
    ).rowsWritten;
    if (dropped > 0) this.sql.exec(`DELETE FROM content WHERE anchor NOT IN (SELECT anchor FROM contexts)`);
    return dropped;
  }
  setContextVersion(anchor: string, versionId: string): void {
    this.sql.exec(`UPDATE contexts SET version_id = ? WHERE anchor = ?`, versionId, anchor);
  }

  // ---- content (fhircast.hl7.org/STU3/2-10-ContentSharing.html): each open anchor's shared resources, by `Type/id` ---------------------------
  /** Stores a resource given as its JSON text. */
  putContent(anchor: string, key: string, fullUrl: string | undefined, resourceJson: string): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO content (anchor, resource_key, full_url, resource) VALUES (?, ?, ?, ?)`,
      anchor, key, fullUrl ?? null, resourceJson,
    );
  }
  /**
   * The size in bytes (UTF-8 JSON) of each resource an anchor holds, by key. `octet_length` of a
   * column reads only the record header, never the text itself.
   */
  contentSizes(anchor: string): Map<string, number> {
    const rows = this.sql
      .exec<{ resource_key: string; bytes: number }>(`SELECT resource_key, octet_length(resource) AS bytes FROM content WHERE anchor = ?`, anchor)
      .toArray();
    return new Map(rows.map((r) => [r.resource_key, r.bytes]));
  }
  /** The bytes of content the topic holds, all anchors together. */
  contentBytes(): number {
    return this.sql.exec<{ n: number | null }>(`SELECT sum(octet_length(resource)) AS n FROM content`).one().n ?? 0;
  }
  deleteContent(anchor: string, key: string): void {
    this.sql.exec(`DELETE FROM content WHERE anchor = ? AND resource_key = ?`, anchor, key);
  }
  /** The anchor's content as a `collection` Bundle without `request` (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html); empty when none. */
  contentBundle(anchor: string, bundleId: string): Record<string, unknown> {
    const entry = this.sql
      .exec<{ full_url: string | null; resource: string }>(
        `SELECT full_url, resource FROM content WHERE anchor = ? ORDER BY rowid`, anchor)
      .toArray()
      .map((r) => ({ ...(r.full_url ? { fullUrl: r.full_url } : {}), resource: JSON.parse(r.resource) as unknown }));
    return { resourceType: "Bundle", id: bundleId, type: "collection", entry };
  }

  currentAnchor(): string | undefined {
    const v = this.getMeta("current");
    return v ? v : undefined;
  }
  setCurrentAnchor(anchor: string | undefined): void {
    this.setMeta("current", anchor ?? "");
  }

  // ---- event log ------------------------------------------------------------------------
  /**
   * Appends an accepted event (`body`: its JSON as distributed) and trims the log to `limit` entries;
   * returns its sequence number.
   */
  appendEvent(id: string, name: string, body: string, acceptedAt: number, limit: number): number {
    const seq = this.sql
      .exec<{ seq: number }>(`INSERT INTO events (id, name, accepted_at, body) VALUES (?, ?, ?, ?) RETURNING seq`, id, name, acceptedAt, body)
      .one().seq;
    // Trimmed every TRIM_EVERY events, not every time: the log holds `limit` to `limit + TRIM_EVERY - 1`.
    if (seq > limit && seq % TRIM_EVERY === 0) this.sql.exec(`DELETE FROM events WHERE seq <= ?`, seq - limit);
    return seq;
  }
  /** Id, name and acceptance time of every logged event, oldest first (the in-memory index of the log). */
  eventIndex(): { id: string; seq: number; name: string; accepted_at: number }[] {
    return this.sql
      .exec<{ id: string; seq: number; name: string; accepted_at: number }>(`SELECT id, seq, name, accepted_at FROM events ORDER BY seq`)
      .toArray();
  }
  eventBySeq(seq: number): { id: string; name: string } | undefined {
    return this.sql.exec<{ id: string; name: string }>(`SELECT id, name FROM events WHERE seq = ?`, seq).toArray()[0];
  }
  /** Acceptance time of every logged event from seq `from` on, by seq. */
  acceptedTimes(from: number): Map<number, number> {
    const rows = this.sql.exec<{ seq: number; accepted_at: number }>(`SELECT seq, accepted_at FROM events WHERE seq >= ?`, from).toArray();
    return new Map(rows.map((r) => [r.seq, r.accepted_at]));
  }
  /** The newest logged event among `names`, for a SyncError about a subscriber with nothing pending. */
  lastEventOf(names: string[]): { id: string; name: string } | undefined {
    if (names.length === 0) return undefined;
    return this.sql
      .exec<{ id: string; name: string }>(
        `SELECT id, name FROM events WHERE name IN (${names.map(() => "?").join(",")}) ORDER BY seq DESC LIMIT 1`, ...names)
      .toArray()[0];
  }
  lastEventAt(): number {
    return this.sql.exec<{ t: number | null }>(`SELECT max(accepted_at) AS t FROM events`).one().t ?? 0;
  }

  // ---- sizes and single items, for reads that must stay within a budget (the inspector) ----------
  /** Open contexts, most recently opened first, with the bytes of their open event and content. */
  contextSizes(): { anchor: string; anchor_type: string; version_id: string; event_bytes: number; content_bytes: number; content_entries: number }[] {
    return this.sql
      .exec<{ anchor: string; anchor_type: string; version_id: string; event_bytes: number; content_bytes: number; content_entries: number }>(
        `SELECT c.anchor, c.anchor_type, c.version_id, octet_length(c.open_event) AS event_bytes,
           coalesce(sum(octet_length(n.resource)), 0) AS content_bytes, count(n.resource_key) AS content_entries
         FROM contexts c LEFT JOIN content n ON n.anchor = c.anchor
         GROUP BY c.anchor ORDER BY c.opened_seq DESC`)
      .toArray();
  }
  /** The first `chars` characters of an anchor's open event (enough for its timestamp, id and name). */
  openEventHead(anchor: string, chars: number): string {
    return this.sql.exec<{ head: string }>(`SELECT substr(open_event, 1, ?) AS head FROM contexts WHERE anchor = ?`, chars, anchor).toArray()[0]?.head ?? "";
  }
  openEvent(anchor: string): string | undefined {
    return this.sql.exec<{ open_event: string }>(`SELECT open_event FROM contexts WHERE anchor = ?`, anchor).toArray()[0]?.open_event;
  }
  /** An anchor's content rows in order with their sizes, without the resources. */
  contentRowSizes(anchor: string): { rowid: number; full_url: string | null; bytes: number }[] {
    return this.sql
      .exec<{ rowid: number; full_url: string | null; bytes: number }>(
        `SELECT rowid, full_url, octet_length(resource) AS bytes FROM content WHERE anchor = ? ORDER BY rowid`, anchor)
      .toArray();
  }
  contentResource(rowid: number): string | undefined {
    return this.sql.exec<{ resource: string }>(`SELECT resource FROM content WHERE rowid = ?`, rowid).toArray()[0]?.resource;
  }
  /** The newest `limit` logged events, newest first, with the bytes of their body instead of it. */
  eventSizes(limit: number): { seq: number; id: string; name: string; accepted_at: number; bytes: number }[] {
    return this.sql
      .exec<{ seq: number; id: string; name: string; accepted_at: number; bytes: number }>(
        `SELECT seq, id, name, accepted_at, octet_length(body) AS bytes FROM events ORDER BY seq DESC LIMIT ?`, limit)
      .toArray();
  }
  eventBody(seq: number): string | undefined {
    return this.sql.exec<{ body: string }>(`SELECT body FROM events WHERE seq = ?`, seq).toArray()[0]?.body;
  }
  eventHead(seq: number, chars: number): string {
    return this.sql.exec<{ head: string }>(`SELECT substr(body, 1, ?) AS head FROM events WHERE seq = ?`, chars, seq).toArray()[0]?.head ?? "";
  }

  // ---- deadlines (one alarm multiplexed over this table) ----------------------------------
  setDeadline(kind: DeadlineKind, ref: string, due: number): void {
    this.sql.exec(`INSERT OR REPLACE INTO deadlines (kind, ref, due) VALUES (?, ?, ?)`, kind, ref, due);
  }
  /** Sets a deadline, or moves an existing one earlier, never later. */
  setDeadlineNoLater(kind: DeadlineKind, ref: string, due: number): void {
    this.sql.exec(
      `INSERT INTO deadlines (kind, ref, due) VALUES (?, ?, ?) ON CONFLICT (kind, ref) DO UPDATE SET due = min(due, excluded.due)`,
      kind, ref, due,
    );
  }
  deleteDeadline(kind: DeadlineKind, ref: string): void {
    this.sql.exec(`DELETE FROM deadlines WHERE kind = ? AND ref = ?`, kind, ref);
  }
  dueDeadlines(now: number): { kind: DeadlineKind; ref: string; due: number }[] {
    return this.sql
      .exec<{ kind: DeadlineKind; ref: string; due: number }>(`SELECT * FROM deadlines WHERE due <= ? ORDER BY due`, now)
      .toArray();
  }
  nextDeadline(): number | undefined {
    return this.sql.exec<{ t: number | null }>(`SELECT min(due) AS t FROM deadlines`).one().t ?? undefined;
  }
}

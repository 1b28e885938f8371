// The topic object's SQLite schema as an ordered list of migrations (docs/storage.md describes every
// table). `PRAGMA user_version` is not available in Durable Objects, so the version lives in `meta`.

export const MIGRATIONS: readonly { version: number; statements: readonly string[] }[] = [
  {
    version: 1,
    statements: [
      `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS subscriptions (
         id TEXT PRIMARY KEY,
         secret_hash TEXT NOT NULL UNIQUE,
         events TEXT NOT NULL,
         name TEXT,
         client_id TEXT,
         lease_seconds INTEGER NOT NULL,
         created_at INTEGER NOT NULL,
         connected_at INTEGER,
         expires_at INTEGER
       )`,
      `CREATE TABLE IF NOT EXISTS contexts (
         anchor TEXT PRIMARY KEY,
         anchor_type TEXT NOT NULL,
         open_event TEXT NOT NULL,
         version_id TEXT NOT NULL,
         opened_seq INTEGER NOT NULL
       )`,
      `CREATE TABLE IF NOT EXISTS content (
         anchor TEXT NOT NULL,
         resource_key TEXT NOT NULL,
         full_url TEXT,
         resource TEXT NOT NULL,
         PRIMARY KEY (anchor, resource_key)
       )`,
      `CREATE TABLE IF NOT EXISTS events (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         id TEXT NOT NULL,
         name TEXT NOT NULL,
         accepted_at INTEGER NOT NULL,
         body TEXT NOT NULL
       )`,
      `CREATE INDEX IF NOT EXISTS events_id ON events (id)`,
      `CREATE TABLE IF NOT EXISTS deadlines (
         kind TEXT NOT NULL,
         ref TEXT NOT NULL,
         due INTEGER NOT NULL,
         PRIMARY KEY (kind, ref)
       )`,
      `CREATE INDEX IF NOT EXISTS deadlines_due ON deadlines (due)`,
    ],
  },
  {
    // The event log without AUTOINCREMENT (which costs a sqlite_sequence write per event) and without
    // the index on id (events are found by id in the object's in-memory index of the log). Seqs stay
    // increasing: the newest row is never trimmed, so max(seq) + 1 never reuses a seq.
    version: 2,
    statements: [
      `CREATE TABLE events_v2 (
         seq INTEGER PRIMARY KEY,
         id TEXT NOT NULL,
         name TEXT NOT NULL,
         accepted_at INTEGER NOT NULL,
         body TEXT NOT NULL
       )`,
      `INSERT INTO events_v2 (seq, id, name, accepted_at, body) SELECT seq, id, name, accepted_at, body FROM events`,
      `DROP TABLE events`,
      `ALTER TABLE events_v2 RENAME TO events`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** True when this object has ever stored anything (reads on unknown topics must not create storage). */
export function hasSchema(sql: SqlStorage): boolean {
  return sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'`).toArray().length > 0;
}

/** Applies every migration newer than the stored version, each in its own transaction. */
export function migrate(storage: DurableObjectStorage): void {
  const sql = storage.sql;
  sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
  const row = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'schema_version'`).toArray()[0];
  const current = row ? Number(row.value) : 0;
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    storage.transactionSync(() => {
      for (const s of m.statements) sql.exec(s);
      sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)`, String(m.version));
    });
  }
}

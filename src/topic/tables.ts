// The current schema's DDL text (version SCHEMA_VERSION in ./schema.ts, which creates and upgrades
// it; docs/storage.md describes every table). Plain strings with no runtime types, so the memory
// probes (test/bench/probes.ts) create exactly these tables outside the hub.

/** The table that holds the schema version, created first whatever the version. */
export const META = `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`;

/** The current schema (version SCHEMA_VERSION), as a fresh object creates it after `META`. */
export const CURRENT: readonly string[] = [
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
  // No AUTOINCREMENT (a sqlite_sequence write per event): the newest row is never trimmed, so
  // max(seq) + 1 never reuses a seq. No index on id: ids are looked up in memory (docs/storage.md).
  `CREATE TABLE IF NOT EXISTS events (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL,
     name TEXT NOT NULL,
     accepted_at INTEGER NOT NULL,
     body TEXT NOT NULL
   )`,
  // A handful of rows: scanned, not indexed.
  `CREATE TABLE IF NOT EXISTS deadlines (
     kind TEXT NOT NULL,
     ref TEXT NOT NULL,
     due INTEGER NOT NULL,
     PRIMARY KEY (kind, ref)
   )`,
];

// The topic object's SQLite schema (docs/storage.md describes every table). A fresh object creates
// the current schema in one step; an object created by an older version is brought up to date by the
// upgrades after its version. `PRAGMA user_version` is not available in Durable Objects, so the
// version lives in `meta`.

import { CURRENT, META } from "./tables";

/**
 * Upgrades from older versions: each takes an object from `version - 1` to `version`. Each is frozen
 * text: it repeats the DDL of its version on purpose, so that a later change to CURRENT cannot change
 * what an old upgrade does.
 */
const UPGRADES: readonly { version: number; statements: readonly string[] }[] = [
  {
    // Version 1 had `events.seq` AUTOINCREMENT with an index on `events.id`, and an index on
    // `deadlines.due`: the log is rebuilt without them, its rows and seqs kept.
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
      `DROP INDEX IF EXISTS deadlines_due`,
    ],
  },
];

export const SCHEMA_VERSION = 2;

/** True when this object has ever stored anything (reads on unknown topics must not create storage). */
export function hasSchema(sql: SqlStorage): boolean {
  return sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'`).toArray().length > 0;
}

/** Creates the current schema in a fresh object, or applies every upgrade newer than the stored version. */
export function migrate(storage: DurableObjectStorage): void {
  const sql = storage.sql;
  sql.exec(META);
  const row = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'schema_version'`).toArray()[0];
  const setVersion = (v: number) => sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)`, String(v));
  if (!row) {
    storage.transactionSync(() => {
      for (const s of CURRENT) sql.exec(s);
      setVersion(SCHEMA_VERSION);
    });
    return;
  }
  const current = Number(row.value);
  for (const u of UPGRADES) {
    if (u.version <= current) continue;
    storage.transactionSync(() => {
      for (const s of u.statements) sql.exec(s);
      setVersion(u.version);
    });
  }
}

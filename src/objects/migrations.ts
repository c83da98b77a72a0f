/**
 * Numbered schema migrations for a Durable Object's SQLite. `PRAGMA user_version` is not
 * available in Durable Objects, so applied versions are kept in `_schema_migrations`. Each
 * migration runs in its own transaction: a failure leaves the previous version intact.
 * @module
 */

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function applyMigrations(storage: DurableObjectStorage, migrations: readonly Migration[]): number {
  const sql = storage.sql;
  sql.exec(
    "CREATE TABLE IF NOT EXISTS _schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
  );
  // Every migration not yet applied runs, in list order: a version added later with a lower
  // number than one already applied (two branches adding migrations) is not skipped.
  const applied = new Set(sql.exec<{ version: number }>("SELECT version FROM _schema_migrations").toArray().map((r) => r.version));
  for (const m of migrations) {
    if (applied.has(m.version)) continue;
    storage.transactionSync(() => {
      sql.exec(m.sql);
      sql.exec("INSERT INTO _schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.version, m.name, Date.now());
    });
    applied.add(m.version);
  }
  return Math.max(0, ...applied);
}

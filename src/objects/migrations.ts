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
  const row = sql.exec<{ v: number | null }>("SELECT max(version) AS v FROM _schema_migrations").one();
  let current = row.v ?? 0;
  for (const m of migrations) {
    if (m.version <= current) continue;
    storage.transactionSync(() => {
      sql.exec(m.sql);
      sql.exec("INSERT INTO _schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.version, m.name, Date.now());
    });
    current = m.version;
  }
  return current;
}

// Direct-SQLite baseline of bench:ingest. Runs under the system Node 20 (better-sqlite3 in
// node_modules is built for its ABI), imports nothing TypeScript: the Node 22 parent passes the
// shard's migration SQL and the precomputed rows in a JSON file.
//
//   /usr/bin/node bench/baseline-sqlite.mjs <input.json> <db-dir>
//
// input.json: { migrations: [{version, name, sql}], namespaces: [{namespace, modules, options}] }
// (see bench/lib/rows.ts). One database per namespace, as one Durable Object per namespace.
// Prints one JSON result object on stdout.
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

const [inputFile, dbDir] = process.argv.slice(2);
if (!inputFile || !dbDir) {
  console.error("usage: baseline-sqlite.mjs <input.json> <db-dir>");
  process.exit(2);
}
const input = JSON.parse(readFileSync(inputFile, "utf8"));
const results = [];

for (const ns of input.namespaces) {
  const file = path.join(dbDir, `${ns.namespace}.sqlite`);
  const db = new Database(file);
  // Durable Object SQLite runs in WAL mode; the rest are SQLite defaults (synchronous=FULL).
  db.pragma("journal_mode = WAL");
  db.exec("CREATE TABLE IF NOT EXISTS _schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
  for (const m of input.migrations) {
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare("INSERT INTO _schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(m.version, m.name, Date.now());
    })();
  }

  const insertModule = db.prepare(
    `INSERT INTO modules (path, name, description, content_hash, version, meta, option_count, created_at, updated_at)
     VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)`,
  );
  const insertOption = db.prepare(
    `INSERT INTO options (name, name_lc, loc, module_id, type, description, default_kind, default_text,
       example_kind, example_text, read_only, declarations, related_packages, extra, content_hash, updated_at, loc_key)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertFts = db.prepare("INSERT INTO options_fts (rowid, name, description, type, module) VALUES (?, ?, ?, ?, ?)");
  const insertMeta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");

  const write = db.transaction(() => {
    const now = Date.now();
    insertMeta.run("namespace", ns.namespace);
    const moduleIds = new Map();
    for (const [p, name, description, hash, meta, count] of ns.modules) {
      moduleIds.set(p, Number(insertModule.run(p, name, description, hash, meta, count, now, now).lastInsertRowid));
    }
    for (const r of ns.options) {
      const [name, nameLc, loc, modulePath, type, description, dk, dt, ek, et, ro, decl, rel, extra, hash, key, ftsName, ftsModule] = r;
      const id = insertOption.run(name, nameLc, loc, moduleIds.get(modulePath), type, description, dk, dt, ek, et, ro, decl, rel, extra, hash, now, key).lastInsertRowid;
      insertFts.run(id, ftsName, description, type, ftsModule);
    }
  });

  const t0 = process.hrtime.bigint();
  write();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const count = db.prepare("SELECT count(*) AS n FROM options").get().n;
  const ftsCount = db.prepare("SELECT count(*) AS n FROM options_fts").get().n;
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  results.push({ namespace: ns.namespace, modules: ns.modules.length, options: count, ftsRows: ftsCount, ms, dbBytes: statSync(file).size });
}

process.stdout.write(JSON.stringify({ node: process.version, sqlite: new Database(":memory:").prepare("SELECT sqlite_version() AS v").get().v, results }) + "\n");

/** Schema of a `NamespaceShard`: all of its tables, in numbered migrations. @module */
import type { Migration } from "../migrations.ts";

export const SHARD_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "modules, versions, options, imports, fts",
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

      CREATE TABLE modules (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        content_hash TEXT NOT NULL,
        version INTEGER NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}',
        option_count INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        deleted_at INTEGER
      );

      -- One row per version of a module. snapshot = gzip(msgpack(ModuleRecord)); NULL when the
      -- version records the module's removal. changes = JSON ChangeList against the previous version.
      CREATE TABLE module_versions (
        module_id INTEGER NOT NULL REFERENCES modules(id),
        version INTEGER NOT NULL,
        content_hash TEXT,
        snapshot BLOB,
        changes TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (module_id, version)
      ) WITHOUT ROWID;

      CREATE TABLE options (
        id INTEGER PRIMARY KEY,
        loc_key TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        name_lc TEXT NOT NULL,
        loc TEXT NOT NULL,
        module_id INTEGER NOT NULL REFERENCES modules(id),
        type TEXT NOT NULL,
        description TEXT NOT NULL,
        default_kind TEXT,
        default_text TEXT,
        example_kind TEXT,
        example_text TEXT,
        read_only INTEGER NOT NULL DEFAULT 0,
        declarations TEXT NOT NULL DEFAULT '[]',
        related_packages TEXT,
        extra TEXT,
        content_hash TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        deleted_at INTEGER
      );
      CREATE INDEX options_name ON options(name);
      CREATE INDEX options_name_lc ON options(name_lc);
      CREATE INDEX options_module ON options(module_id);

      CREATE TABLE module_imports (
        module_id INTEGER NOT NULL REFERENCES modules(id),
        imported_path TEXT NOT NULL,
        PRIMARY KEY (module_id, imported_path)
      ) WITHOUT ROWID;
      CREATE INDEX module_imports_target ON module_imports(imported_path);

      -- Paths a multi-batch replace import has delivered so far (swept on its final batch).
      CREATE TABLE import_seen (
        import_id TEXT NOT NULL,
        path TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (import_id, path)
      ) WITHOUT ROWID;

      -- rowid = options.id. name holds the words of the option path (segments, camelCase parts
      -- and whole segments, see tokenize.ts); module holds the words of the module path.
      CREATE VIRTUAL TABLE options_fts USING fts5(
        name, description, type, module,
        tokenize = 'porter unicode61 remove_diacritics 2',
        prefix = '2 3'
      );
    `,
  },
  {
    // Version 2 was never used; the runner applies every missing version.
    version: 3,
    name: "option vectors",
    sql: `
      -- One embedding per live option (src/objects/NamespaceShard/vectors.ts): vec holds int8
      -- components (vector ≈ scale × vec), content_hash the option content it was made from.
      CREATE TABLE option_vectors (
        option_id INTEGER PRIMARY KEY,
        content_hash TEXT NOT NULL,
        scale REAL NOT NULL,
        vec BLOB NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: "vectors pushed to Vectorize",
    sql: `
      -- Which option vectors a Vectorize index holds (when the AI and VECTORIZE bindings exist):
      -- key is the vector's logical id (namespace:option), content_hash what it was made from.
      CREATE TABLE remote_vectors (
        option_id INTEGER PRIMARY KEY,
        content_hash TEXT NOT NULL,
        key TEXT NOT NULL
      );
    `,
  },
  {
    version: 5,
    name: "live event sequence and watched modules",
    sql: `
      -- seq numbers every module version of the namespace in commit order (1, 2, 3, …): the
      -- cursor of live-room replays (since=<seq>). Versions written before this migration are
      -- numbered by commit time. A version whose seq is above meta 'live_published' has not
      -- reached the live rooms yet: module_versions is the outbox, written in the ingest's
      -- transaction, and the shard drains it (alarm-retried) to the rooms.
      ALTER TABLE module_versions ADD COLUMN seq INTEGER;
      UPDATE module_versions SET seq = numbered.n
        FROM (SELECT module_id, version, row_number() OVER (ORDER BY created_at, module_id, version) AS n FROM module_versions) AS numbered
        WHERE numbered.module_id = module_versions.module_id AND numbered.version = module_versions.version;
      CREATE UNIQUE INDEX module_versions_seq ON module_versions(seq);
      INSERT INTO meta (key, value) SELECT 'live_published', coalesce(max(seq), 0) FROM module_versions;
      -- Rooms drop events they already had by seq; the epoch tells them that a namespace deleted
      -- and created again (a preview) numbers its versions from 1 again.
      INSERT INTO meta (key, value) VALUES ('live_epoch', lower(hex(randomblob(16))));

      -- Module rooms with subscribers (registered by the room on connect): only these get the
      -- module's events besides the namespace room.
      CREATE TABLE live_watched_modules (path TEXT PRIMARY KEY, since INTEGER NOT NULL) WITHOUT ROWID;
    `,
  },
];

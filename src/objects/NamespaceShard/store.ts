/**
 * Every SQL statement of a `NamespaceShard`. Functions here are synchronous (Durable Object SQL
 * is), so callers can group them in one `transactionSync`.
 * @module
 */
import { locKey } from "../../shared/optionName.ts";
import { textWords, nameWords } from "../../shared/tokenize.ts";
import type { ChangeList, Declaration, Literal, OptionRecord, ShardCounts } from "../../shared/types.ts";
import type { ModuleSummary, OptionView, VersionView } from "../../shared/views.ts";

type Sql = SqlStorage;

export type ModuleRow = {
  id: number;
  path: string;
  name: string;
  description: string;
  content_hash: string;
  version: number;
  meta: string;
  option_count: number;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
};

export type OptionRow = {
  id: number;
  loc_key: string;
  name: string;
  loc: string;
  module_id: number;
  module_path: string;
  type: string;
  description: string;
  default_kind: Literal["kind"] | null;
  default_text: string | null;
  example_kind: Literal["kind"] | null;
  example_text: string | null;
  read_only: number;
  declarations: string;
  related_packages: string | null;
  extra: string | null;
  content_hash: string;
  updated_at: number;
  deleted_at: number | null;
};

const OPTION_COLUMNS = `o.id, o.loc_key, o.name, o.loc, o.module_id, m.path AS module_path, o.type, o.description,
  o.default_kind, o.default_text, o.example_kind, o.example_text, o.read_only, o.declarations,
  o.related_packages, o.extra, o.content_hash, o.updated_at, o.deleted_at`;

// ---- meta -------------------------------------------------------------------------------------

export function getMeta(sql: Sql, key: string): string | null {
  const rows = sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray();
  return rows[0]?.value ?? null;
}

export function setMeta(sql: Sql, key: string, value: string): void {
  sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
}

// ---- modules ----------------------------------------------------------------------------------

export function moduleByPath(sql: Sql, path: string): ModuleRow | null {
  return sql.exec<ModuleRow>("SELECT * FROM modules WHERE path = ?", path).toArray()[0] ?? null;
}

/** Which of `paths` this shard has a module for (live or deleted: both have a page), in one query. */
export function existingModulePaths(sql: Sql, paths: readonly string[]): string[] {
  if (!paths.length) return [];
  return sql.exec<{ path: string }>("SELECT path FROM modules WHERE path IN (SELECT value FROM json_each(?))", JSON.stringify(paths)).toArray().map((r) => r.path);
}

export function moduleById(sql: Sql, id: number): ModuleRow | null {
  return sql.exec<ModuleRow>("SELECT * FROM modules WHERE id = ?", id).toArray()[0] ?? null;
}

export function liveModulePaths(sql: Sql): string[] {
  return sql.exec<{ path: string }>("SELECT path FROM modules WHERE deleted_at IS NULL").toArray().map((r) => r.path);
}

export function insertModule(sql: Sql, m: { path: string; name: string; description: string; hash: string; meta: string; optionCount: number; now: number }): number {
  return sql
    .exec<{ id: number }>(
      `INSERT INTO modules (path, name, description, content_hash, version, meta, option_count, created_at, updated_at)
       VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?) RETURNING id`,
      m.path, m.name, m.description, m.hash, m.meta, m.optionCount, m.now, m.now,
    )
    .one().id;
}

export function updateModule(sql: Sql, id: number, m: { name: string; description: string; hash: string; version: number; meta: string; optionCount: number; now: number; deleted: boolean }): void {
  sql.exec(
    `UPDATE modules SET name = ?, description = ?, content_hash = ?, version = ?, meta = ?, option_count = ?,
       updated_at = ?, deleted_at = ? WHERE id = ?`,
    m.name, m.description, m.hash, m.version, m.meta, m.optionCount, m.now, m.deleted ? m.now : null, id,
  );
}

export function replaceImports(sql: Sql, moduleId: number, imports: readonly string[]): void {
  sql.exec("DELETE FROM module_imports WHERE module_id = ?", moduleId);
  for (const path of imports) sql.exec("INSERT INTO module_imports (module_id, imported_path) VALUES (?, ?)", moduleId, path);
}

export function importsOf(sql: Sql, moduleId: number): string[] {
  return sql.exec<{ p: string }>("SELECT imported_path AS p FROM module_imports WHERE module_id = ? ORDER BY p", moduleId).toArray().map((r) => r.p);
}

export function importersOf(sql: Sql, path: string): string[] {
  return sql
    .exec<{ p: string }>(
      `SELECT m.path AS p FROM module_imports i JOIN modules m ON m.id = i.module_id
       WHERE i.imported_path = ? AND m.deleted_at IS NULL ORDER BY p`,
      path,
    )
    .toArray()
    .map((r) => r.p);
}

export function toModuleSummary(r: ModuleRow): ModuleSummary {
  return {
    path: r.path,
    name: r.name,
    description: r.description,
    version: r.version,
    contentHash: r.content_hash,
    optionCount: r.option_count,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deletedAt: r.deleted_at,
  };
}

/** Modules in path order after `after`; one more row than `limit` tells whether a next page exists. */
export function listModules(sql: Sql, after: string | null, limit: number, includeDeleted: boolean): ModuleRow[] {
  return sql
    .exec<ModuleRow>(
      `SELECT * FROM modules WHERE path > ? ${includeDeleted ? "" : "AND deleted_at IS NULL"} ORDER BY path LIMIT ?`,
      after ?? "",
      limit + 1,
    )
    .toArray();
}

// ---- versions ---------------------------------------------------------------------------------

/** Insert a version; it takes the next namespace-wide sequence number (see schema version 5). */
export function insertVersion(sql: Sql, moduleId: number, version: number, hash: string | null, snapshot: Uint8Array | null, changes: ChangeList, now: number): void {
  sql.exec(
    `INSERT INTO module_versions (module_id, version, content_hash, snapshot, changes, created_at, seq)
     VALUES (?, ?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM module_versions))`,
    moduleId, version, hash, snapshot, JSON.stringify(changes), now,
  );
}

export function versionSnapshot(sql: Sql, moduleId: number, version: number): { found: boolean; snapshot: ArrayBuffer | null } {
  const row = sql.exec<{ snapshot: ArrayBuffer | null }>("SELECT snapshot FROM module_versions WHERE module_id = ? AND version = ?", moduleId, version).toArray()[0];
  return row ? { found: true, snapshot: row.snapshot } : { found: false, snapshot: null };
}

/** The newest snapshot that holds content (a removal version holds none). */
export function latestSnapshot(sql: Sql, moduleId: number): ArrayBuffer | null {
  const row = sql
    .exec<{ snapshot: ArrayBuffer }>("SELECT snapshot FROM module_versions WHERE module_id = ? AND snapshot IS NOT NULL ORDER BY version DESC LIMIT 1", moduleId)
    .toArray()[0];
  return row?.snapshot ?? null;
}

export function listVersions(sql: Sql, moduleId: number): VersionView[] {
  return sql
    .exec<{ version: number; content_hash: string | null; created_at: number; changes: string }>(
      "SELECT version, content_hash, created_at, changes FROM module_versions WHERE module_id = ? ORDER BY version",
      moduleId,
    )
    .toArray()
    .map((r) => ({ version: r.version, contentHash: r.content_hash, createdAt: r.created_at, changes: JSON.parse(r.changes) as ChangeList }));
}

// ---- live events (module_versions as the outbox) ----------------------------------------------

export type EventRow = { seq: number; path: string; version: number; changes: string; created_at: number };

/** Versions with a sequence number above `after`, in order; only those of `modulePath` when given. */
export function versionsAfter(sql: Sql, after: number, limit: number, modulePath: string | null): EventRow[] {
  return sql
    .exec<EventRow>(
      `SELECT v.seq, m.path, v.version, v.changes, v.created_at FROM module_versions v JOIN modules m ON m.id = v.module_id
       WHERE v.seq > ? ${modulePath === null ? "" : "AND m.path = ?"} ORDER BY v.seq LIMIT ?`,
      ...(modulePath === null ? [after, limit] : [after, modulePath, limit]),
    )
    .toArray();
}

export function latestSeq(sql: Sql): number {
  return sql.exec<{ n: number }>("SELECT coalesce(max(seq), 0) AS n FROM module_versions").one().n;
}

export function watchModule(sql: Sql, path: string, now: number): void {
  sql.exec("INSERT INTO live_watched_modules (path, since) VALUES (?, ?) ON CONFLICT(path) DO NOTHING", path, now);
}

export function unwatchModule(sql: Sql, path: string): void {
  sql.exec("DELETE FROM live_watched_modules WHERE path = ?", path);
}

export function watchedModules(sql: Sql): Set<string> {
  return new Set(sql.exec<{ path: string }>("SELECT path FROM live_watched_modules").toArray().map((r) => r.path));
}

// ---- options ----------------------------------------------------------------------------------

export function optionIdsByLoc(sql: Sql, keys: readonly string[]): Map<string, { id: number; moduleId: number; deleted: boolean }> {
  const out = new Map<string, { id: number; moduleId: number; deleted: boolean }>();
  // Durable Object SQL binds at most 100 parameters per statement.
  for (let i = 0; i < keys.length; i += 90) {
    const chunk = keys.slice(i, i + 90);
    const rows = sql.exec<{ id: number; loc_key: string; module_id: number; deleted_at: number | null }>(
      `SELECT id, loc_key, module_id, deleted_at FROM options WHERE loc_key IN (${chunk.map(() => "?").join(",")})`,
      ...chunk,
    );
    for (const r of rows) out.set(r.loc_key, { id: r.id, moduleId: r.module_id, deleted: r.deleted_at !== null });
  }
  return out;
}

export function liveOptionsOfModule(sql: Sql, moduleId: number): { id: number; loc_key: string }[] {
  return sql.exec<{ id: number; loc_key: string }>("SELECT id, loc_key FROM options WHERE module_id = ? AND deleted_at IS NULL", moduleId).toArray();
}

function ftsInsert(sql: Sql, id: number, o: OptionRecord, modulePath: string): void {
  sql.exec(
    "INSERT INTO options_fts (rowid, name, description, type, module) VALUES (?, ?, ?, ?, ?)",
    id, nameWords(o.loc).join(" "), o.description, o.type, textWords(modulePath).join(" "),
  );
}

function ftsDelete(sql: Sql, id: number): void {
  sql.exec("DELETE FROM options_fts WHERE rowid = ?", id);
}

/** Insert or update an option (by `loc`) and its full-text row. */
export function upsertOption(sql: Sql, existingId: number | null, o: OptionRecord, moduleId: number, modulePath: string, hash: string, now: number): void {
  const values = [
    o.name, o.name.toLowerCase(), JSON.stringify(o.loc), moduleId, o.type, o.description,
    o.default?.kind ?? null, o.default?.text ?? null, o.example?.kind ?? null, o.example?.text ?? null,
    o.readOnly ? 1 : 0, JSON.stringify(o.declarations), o.relatedPackages ?? null,
    o.extra ? JSON.stringify(o.extra) : null, hash, now,
  ];
  if (existingId === null) {
    const id = sql
      .exec<{ id: number }>(
        `INSERT INTO options (name, name_lc, loc, module_id, type, description, default_kind, default_text,
           example_kind, example_text, read_only, declarations, related_packages, extra, content_hash, updated_at, loc_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        ...values, locKey(o.loc),
      )
      .one().id;
    ftsInsert(sql, id, o, modulePath);
    return;
  }
  sql.exec(
    `UPDATE options SET name = ?, name_lc = ?, loc = ?, module_id = ?, type = ?, description = ?, default_kind = ?,
       default_text = ?, example_kind = ?, example_text = ?, read_only = ?, declarations = ?, related_packages = ?,
       extra = ?, content_hash = ?, updated_at = ?, deleted_at = NULL WHERE id = ?`,
    ...values, existingId,
  );
  ftsDelete(sql, existingId);
  ftsInsert(sql, existingId, o, modulePath);
}

export function softDeleteOption(sql: Sql, id: number, now: number): void {
  sql.exec("UPDATE options SET deleted_at = ?, updated_at = ? WHERE id = ?", now, now, id);
  ftsDelete(sql, id);
}

export function optionByName(sql: Sql, name: string): OptionRow | null {
  return sql.exec<OptionRow>(`SELECT ${OPTION_COLUMNS} FROM options o JOIN modules m ON m.id = o.module_id WHERE o.name = ? ORDER BY o.deleted_at IS NOT NULL LIMIT 1`, name).toArray()[0] ?? null;
}

export function optionByLocKey(sql: Sql, key: string): OptionRow | null {
  return sql.exec<OptionRow>(`SELECT ${OPTION_COLUMNS} FROM options o JOIN modules m ON m.id = o.module_id WHERE o.loc_key = ?`, key).toArray()[0] ?? null;
}

export function optionsByLowerName(sql: Sql, lower: string, limit: number): OptionRow[] {
  return sql.exec<OptionRow>(`SELECT ${OPTION_COLUMNS} FROM options o JOIN modules m ON m.id = o.module_id WHERE o.name_lc = ? AND o.deleted_at IS NULL LIMIT ?`, lower, limit).toArray();
}

export function optionsOfModule(sql: Sql, moduleId: number): OptionRow[] {
  return sql.exec<OptionRow>(`SELECT ${OPTION_COLUMNS} FROM options o JOIN modules m ON m.id = o.module_id WHERE o.module_id = ? AND o.deleted_at IS NULL ORDER BY o.name`, moduleId).toArray();
}

export function optionsByIds(sql: Sql, ids: readonly number[]): OptionRow[] {
  const out: OptionRow[] = [];
  for (let i = 0; i < ids.length; i += 90) {
    const chunk = ids.slice(i, i + 90);
    out.push(
      ...sql.exec<OptionRow>(
        `SELECT ${OPTION_COLUMNS} FROM options o JOIN modules m ON m.id = o.module_id WHERE o.id IN (${chunk.map(() => "?").join(",")}) AND o.deleted_at IS NULL`,
        ...chunk,
      ),
    );
  }
  return out;
}

/**
 * What ranking needs of a search candidate: its id, name and path, and its bm25 when a full-text
 * match found it. The rest of a row is read only for the hits that make the page.
 */
export type RankRow = {
  id: number;
  name: string;
  loc: string;
  bm25: number | null;
  /** 1 when only a partial match (some of the words) found the option. */
  partial: number;
};

/** One source of search candidates; `partial` marks matches of only some of the words. */
export type MatchSource =
  | { kind: "exact"; lower: string }
  | { kind: "prefix"; prefix: string }
  | { kind: "fts"; match: string; partial: boolean };

/**
 * Every live option that any of the sources matches, once, with its best bm25 (null when only a
 * name lookup found it) and whether only partial sources found it. One compound query, so
 * SQLite merges the sources and each match crosses into JavaScript once. Prefix scans are range
 * scans on the `name_lc` index (LIKE patterns are capped at 50 bytes in Durable Objects).
 * `LIMIT -1` (no limit) keeps SQLite from flattening a lone FTS source into the aggregate, where
 * FTS5 refuses `bm25()`; Durable Objects allow only a few compound terms, so callers combine
 * related FTS expressions with OR instead of adding sources.
 */
export function matchOptions(sql: Sql, sources: readonly MatchSource[]): RankRow[] {
  if (!sources.length) return [];
  const parts: string[] = [];
  const params: string[] = [];
  for (const src of sources) {
    if (src.kind === "exact") {
      parts.push("SELECT id, NULL AS bm25, 0 AS partial FROM options WHERE name_lc = ?");
      params.push(src.lower);
    } else if (src.kind === "prefix") {
      parts.push("SELECT id, NULL AS bm25, 0 AS partial FROM options WHERE name_lc >= ? AND name_lc < ?");
      params.push(src.prefix, src.prefix + "\u{10FFFF}");
    } else {
      parts.push(`SELECT rowid AS id, bm25(options_fts, 10.0, 1.0, 0.5, 2.0) AS bm25, ${src.partial ? 1 : 0} AS partial FROM options_fts WHERE options_fts MATCH ?`);
      params.push(src.match);
    }
  }
  return sql
    .exec<RankRow>(
      `SELECT o.id, o.name, o.loc, min(s.bm25) AS bm25, min(s.partial) AS partial
       FROM (${parts.join(" UNION ALL ")} LIMIT -1) s JOIN options o ON o.id = s.id
       WHERE o.deleted_at IS NULL GROUP BY o.id`,
      ...params,
    )
    .toArray();
}

/** Ids of the options that the FTS5 expression matches (removed options included: callers intersect). */
export function ftsIds(sql: Sql, match: string): Set<number> {
  return new Set(sql.exec<{ id: number }>("SELECT rowid AS id FROM options_fts WHERE options_fts MATCH ?", match).toArray().map((r) => r.id));
}

/** Does any option hold the FTS5 expression? */
export function ftsHasMatch(sql: Sql, match: string): boolean {
  return sql.exec("SELECT 1 FROM options_fts WHERE options_fts MATCH ? LIMIT 1", match).toArray().length > 0;
}

export function rankRow(r: Pick<OptionRow, "id" | "name" | "loc">): RankRow {
  return { id: r.id, name: r.name, loc: r.loc, bm25: null, partial: 0 };
}

/** Rank rows of live options by id (ids of removed options are left out). */
export function rankRowsByIds(sql: Sql, ids: readonly number[]): RankRow[] {
  const out: RankRow[] = [];
  for (let i = 0; i < ids.length; i += 90) {
    const chunk = ids.slice(i, i + 90);
    out.push(...sql.exec<RankRow>(`SELECT id, name, loc, NULL AS bm25, 1 AS partial FROM options WHERE id IN (${chunk.map(() => "?").join(",")}) AND deleted_at IS NULL`, ...chunk));
  }
  return out;
}

/** Every indexed name word of the live options, once per option that carries it. */
export function nameWordsOfLiveOptions(sql: Sql): string[] {
  const words: string[] = [];
  for (const row of sql.exec<{ name: string }>("SELECT name FROM options_fts")) words.push(...row.name.split(" ").filter(Boolean));
  return words;
}

export function ftsCount(sql: Sql, match: string): number {
  return sql.exec<{ n: number }>("SELECT count(*) AS n FROM options_fts WHERE options_fts MATCH ?", match).one().n;
}

export function toOptionView(namespace: string, r: OptionRow): OptionView {
  return {
    namespace,
    name: r.name,
    loc: JSON.parse(r.loc) as string[],
    module: r.module_path,
    type: r.type,
    description: r.description,
    default: r.default_kind ? { kind: r.default_kind, text: r.default_text ?? "" } : null,
    example: r.example_kind ? { kind: r.example_kind, text: r.example_text ?? "" } : null,
    readOnly: r.read_only === 1,
    declarations: JSON.parse(r.declarations) as Declaration[],
    relatedPackages: r.related_packages,
    extra: r.extra ? (JSON.parse(r.extra) as Record<string, unknown>) : null,
    updatedAt: r.updated_at,
  };
}

// ---- imports of replace sessions -----------------------------------------------------------------

export function markImportSeen(sql: Sql, importId: string, paths: readonly string[], now: number): void {
  // created_at is refreshed on every batch: it dates the import's last activity.
  for (const p of paths) {
    sql.exec(
      "INSERT INTO import_seen (import_id, path, created_at) VALUES (?, ?, ?) ON CONFLICT(import_id, path) DO UPDATE SET created_at = excluded.created_at",
      importId, p, now,
    );
  }
}

/** Another replace import that sent a batch since `activeSince` and has not finished. */
export function otherOpenImport(sql: Sql, importId: string | null, activeSince: number): { importId: string; lastActivity: number } | null {
  const row = sql
    .exec<{ import_id: string; last: number }>(
      "SELECT import_id, max(created_at) AS last FROM import_seen WHERE import_id != ? GROUP BY import_id HAVING last >= ? ORDER BY last DESC LIMIT 1",
      importId ?? "", activeSince,
    )
    .toArray()[0];
  return row ? { importId: row.import_id, lastActivity: row.last } : null;
}

export function importSeenPaths(sql: Sql, importId: string): Set<string> {
  return new Set(sql.exec<{ path: string }>("SELECT path FROM import_seen WHERE import_id = ?", importId).toArray().map((r) => r.path));
}

export function forgetImport(sql: Sql, importId: string, staleBefore: number): void {
  sql.exec("DELETE FROM import_seen WHERE import_id = ? OR created_at < ?", importId, staleBefore);
}

// ---- counts -----------------------------------------------------------------------------------

export function counts(sql: Sql, namespace: string): ShardCounts {
  // updatedAt covers removals too: a removed module's updated_at is the time it was removed.
  const m = sql.exec<{ n: number; u: number | null }>("SELECT count(*) FILTER (WHERE deleted_at IS NULL) AS n, max(updated_at) AS u FROM modules").one();
  const o = sql.exec<{ n: number }>("SELECT count(*) AS n FROM options WHERE deleted_at IS NULL").one();
  const v = sql.exec<{ n: number }>("SELECT count(*) AS n FROM module_versions").one();
  return { namespace, modules: m.n, options: o.n, versions: v.n, updatedAt: m.u };
}

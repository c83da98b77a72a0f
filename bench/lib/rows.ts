/**
 * Rows for the direct-SQLite baseline, computed the way the server computes them for an
 * `options.json` body: `normalizeOptionsJson` + `groupIntoModules` (src/shared), values as in
 * `store.upsertOption`, FTS words from `nameWords` / `textWords` (src/shared/tokenize.ts).
 * @module
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { gunzipSync } from "node:zlib";
import { contentHash } from "../../src/shared/canonical.ts";
import { groupIntoModules } from "../../src/shared/group.ts";
import { locKey } from "../../src/shared/optionName.ts";
import { normalizeOptionsJson } from "../../src/shared/schemas.ts";
import { nameWords, textWords } from "../../src/shared/tokenize.ts";
import { repoRoot } from "./paths.ts";

export interface MigrationText {
  version: number;
  name: string;
  sql: string;
}

/**
 * The shard's migration SQL, read from src/objects/NamespaceShard/schema.ts at run time. The
 * specifier is computed so `tsc -p tsconfig.node.json` does not pull Workers-typed files in.
 */
export async function shardMigrations(): Promise<MigrationText[]> {
  const spec = pathToFileURL(path.join(repoRoot, "src/objects/NamespaceShard/schema.ts")).href;
  const mod = (await import(spec)) as { SHARD_MIGRATIONS: MigrationText[] };
  return mod.SHARD_MIGRATIONS.map(({ version, name, sql }) => ({ version, name, sql }));
}

export function readOptionsJson(file: string): { text: string; value: Record<string, unknown> } {
  const raw = readFileSync(file);
  const text = (file.endsWith(".gz") ? gunzipSync(raw) : raw).toString("utf8");
  return { text, value: JSON.parse(text) as Record<string, unknown> };
}

/** One module row: path, name, description, content_hash, meta, option_count. */
export type ModuleRowValues = [string, string, string, string, string, number];

/**
 * One option row in `store.upsertOption`'s column order (name, name_lc, loc, module path (→ id),
 * type, description, default_kind, default_text, example_kind, example_text, read_only,
 * declarations, related_packages, extra, content_hash, loc_key), then the FTS name and module words.
 */
export type OptionRowValues = [
  string, string, string, string, string, string, string | null, string | null, string | null, string | null,
  number, string, string | null, string | null, string, string, string, string,
];

export interface NamespaceRows {
  namespace: string;
  modules: ModuleRowValues[];
  options: OptionRowValues[];
}

export async function buildRows(namespace: string, value: unknown): Promise<NamespaceRows> {
  const result = normalizeOptionsJson(value);
  if ("issues" in result) throw new Error(`${namespace}: invalid options.json: ${JSON.stringify(result.issues.slice(0, 3))}`);
  const modules = groupIntoModules(result.options);
  const out: NamespaceRows = { namespace, modules: [], options: [] };
  for (const m of modules) {
    out.modules.push([m.path, m.name, m.description, await contentHash(m), JSON.stringify(m.meta), m.options.length]);
    const moduleWords = textWords(m.path).join(" ");
    for (const o of m.options) {
      out.options.push([
        o.name, o.name.toLowerCase(), JSON.stringify(o.loc), m.path, o.type, o.description,
        o.default?.kind ?? null, o.default?.text ?? null, o.example?.kind ?? null, o.example?.text ?? null,
        o.readOnly ? 1 : 0, JSON.stringify(o.declarations), o.relatedPackages ?? null,
        o.extra ? JSON.stringify(o.extra) : null, await contentHash(o), locKey(o.loc),
        nameWords(o.loc).join(" "), moduleWords,
      ]);
    }
  }
  return out;
}

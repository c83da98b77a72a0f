/**
 * The documents every engine indexes: one per option of the 8 real collections, built once from
 * the same files nixdocs ingests. Module paths come from the server's own grouping
 * (`normalizeOptionsJson` + `groupIntoModules`), name words from `nameWords(loc)`.
 * @module
 */
import { readOptionsFile } from "../../src/cli/ingest-lib.ts";
import { groupIntoModules } from "../../src/shared/group.ts";
import { normalizeOptionsJson } from "../../src/shared/schemas.ts";
import { nameWords } from "../../src/shared/tokenize.ts";
import type { DataFile } from "../lib/paths.ts";

export interface Doc {
  /** `namespace:name`, the id the gold set uses. */
  id: string;
  namespace: string;
  /** Display name, e.g. `programs.git.signing.key`. */
  name: string;
  /** `nameWords(loc)` joined by spaces: segment parts, camelCase words and whole segments, folded. */
  nameWords: string;
  description: string;
  type: string;
  module: string;
}

export function docId(namespace: string, name: string): string {
  return `${namespace}:${name}`;
}

export async function loadDocs(files: readonly DataFile[]): Promise<Doc[]> {
  const docs: Doc[] = [];
  for (const f of files) {
    const result = normalizeOptionsJson(await readOptionsFile(f.file));
    if ("issues" in result) throw new Error(`${f.file}: invalid options.json: ${JSON.stringify(result.issues.slice(0, 3))}`);
    for (const m of groupIntoModules(result.options)) {
      for (const o of m.options) {
        docs.push({
          id: docId(f.namespace, o.name),
          namespace: f.namespace,
          name: o.name,
          nameWords: nameWords(o.loc).join(" "),
          description: o.description,
          type: o.type,
          module: m.path,
        });
      }
    }
  }
  return docs;
}

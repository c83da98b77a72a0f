/**
 * Raw SQLite FTS5 through `node:sqlite`: one in-memory table (name words, description, type,
 * module), `porter unicode61`; every query word a quoted prefix term, all of them required
 * (implicit AND), falling back to any of them (OR) when that finds nothing; ordered by bm25
 * with the name words weighted 10.
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { textWords } from "../../../src/shared/tokenize.ts";
import type { Engine } from "./types.ts";

/** bm25 weights in column order: id, namespace (unindexed), name_words, description, type, module. */
const RANK = "bm25(docs, 0, 0, 10, 1, 1, 1)";

export function fts5Engine(): Engine {
  let db: DatabaseSync | undefined;
  let all: StatementSync | undefined;
  let scoped: StatementSync | undefined;
  return {
    name: "fts5",
    description: "SQLite FTS5 (node:sqlite), tokenize 'porter unicode61', \"word\"* terms ANDed (OR when empty), bm25 with name words ×10",
    async build(docs) {
      db = new DatabaseSync(":memory:");
      db.exec(`CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, namespace UNINDEXED, name_words, description, type, module, tokenize = 'porter unicode61')`);
      const insert = db.prepare("INSERT INTO docs (id, namespace, name_words, description, type, module) VALUES (?, ?, ?, ?, ?, ?)");
      db.exec("BEGIN");
      for (const d of docs) insert.run(d.id, d.namespace, d.nameWords, d.description, d.type, d.module);
      db.exec("COMMIT");
      all = db.prepare(`SELECT id FROM docs WHERE docs MATCH ? ORDER BY ${RANK} LIMIT ?`);
      scoped = db.prepare(`SELECT id FROM docs WHERE docs MATCH ? AND namespace = ? ORDER BY ${RANK} LIMIT ?`);
    },
    async search(q, namespace, limit) {
      if (!all || !scoped) throw new Error("fts5: build() first");
      const terms = textWords(q).map((w) => `"${w}"*`);
      if (terms.length === 0) return [];
      const run = (match: string) =>
        (namespace ? scoped!.all(match, namespace, limit) : all!.all(match, limit)).map((r) => String(r.id));
      const hits = run(terms.join(" "));
      return hits.length || terms.length === 1 ? hits : run(terms.join(" OR "));
    },
    async close() {
      db?.close();
      db = undefined;
    },
  };
}

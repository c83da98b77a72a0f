/** Orama: its default full-text (BM25) search, typo tolerance 1, name fields boosted ×3. @module */
import { create, insertMultiple, search, type AnyOrama } from "@orama/orama";
import type { Engine } from "./types.ts";

const SCHEMA = { id: "string", namespace: "enum", name: "string", nameWords: "string", description: "string" } as const;

export function oramaEngine(): Engine {
  let db: AnyOrama | undefined;
  return {
    name: "orama",
    description: "Orama default BM25 full-text search over name/nameWords/description, tolerance: 1, boost name ×3, nameWords ×3",
    async build(docs) {
      db = create({ schema: SCHEMA });
      await insertMultiple(db, docs.map(({ id, namespace, name, nameWords, description }) => ({ id, namespace, name, nameWords, description })), 1000);
    },
    async search(q, namespace, limit) {
      if (!db) throw new Error("orama: build() first");
      const result = await search(db, {
        term: q,
        properties: ["name", "nameWords", "description"],
        boost: { name: 3, nameWords: 3 },
        tolerance: 1,
        limit,
        ...(namespace ? { where: { namespace: { eq: namespace } } } : {}),
      });
      return result.hits.map((h) => String(h.id));
    },
    async close() {
      db = undefined;
    },
  };
}

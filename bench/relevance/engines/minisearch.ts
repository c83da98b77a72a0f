/** MiniSearch: prefix + fuzzy 0.2, name fields boosted ×3 over the description. @module */
import MiniSearch from "minisearch";
import type { Doc } from "../docs.ts";
import type { Engine } from "./types.ts";

export function minisearchEngine(): Engine {
  let index: MiniSearch<Doc> | undefined;
  return {
    name: "minisearch",
    description: "MiniSearch, fields name/nameWords/description, prefix: true, fuzzy: 0.2, boost name ×3, nameWords ×3 (default OR combination)",
    async build(docs) {
      index = new MiniSearch<Doc>({ idField: "id", fields: ["name", "nameWords", "description"], storeFields: ["namespace"] });
      index.addAll(docs as Doc[]);
    },
    async search(q, namespace, limit) {
      if (!index) throw new Error("minisearch: build() first");
      const hits = index.search(q, {
        prefix: true,
        fuzzy: 0.2,
        boost: { name: 3, nameWords: 3 },
        ...(namespace ? { filter: (r) => r.namespace === namespace } : {}),
      });
      return hits.slice(0, limit).map((h) => String(h.id));
    },
    async close() {
      index = undefined;
    },
  };
}

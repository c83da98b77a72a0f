/** The trivial baseline: options whose name contains the query (case-insensitive), shorter names first. @module */
import type { Doc } from "../docs.ts";
import type { Engine } from "./types.ts";

export function substringEngine(): Engine {
  let docs: { doc: Doc; lower: string }[] = [];
  return {
    name: "substring",
    description: "case-insensitive substring of the whole query in the option name; shorter names first, then by name",
    async build(all) {
      docs = all
        .map((doc) => ({ doc, lower: doc.name.toLowerCase() }))
        .sort((a, b) => a.lower.length - b.lower.length || (a.doc.id < b.doc.id ? -1 : a.doc.id > b.doc.id ? 1 : 0));
    },
    async search(q, namespace, limit) {
      const needle = q.trim().toLowerCase();
      const out: string[] = [];
      for (const { doc, lower } of docs) {
        if (out.length >= limit) break;
        if ((!namespace || doc.namespace === namespace) && lower.includes(needle)) out.push(doc.id);
      }
      return out;
    },
    async close() {
      docs = [];
    },
  };
}

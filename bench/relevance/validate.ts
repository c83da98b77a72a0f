/**
 * `node bench/relevance/validate.ts`: checks bench/relevance/queries.json against the real data
 * (every relevant id must exist) and exits 1, listing every problem, when it does not hold.
 * The runner (run.ts) does the same check before it measures anything.
 * @module
 */
import { dataFiles } from "../lib/paths.ts";
import { loadDocs } from "./docs.ts";
import { assertGold, CATEGORIES, loadGold, QUERIES_FILE } from "./gold.ts";

async function main(): Promise<void> {
  const files = dataFiles();
  const docs = await loadDocs(files);
  const gold = loadGold();
  assertGold(gold, new Set(docs.map((d) => d.id)), new Set(files.map((f) => f.namespace)));
  const counts = CATEGORIES.map((c) => `${c} ${gold.filter((g) => g.category === c).length}`).join(", ");
  const judged = gold.reduce((n, g) => n + g.relevant.flat().length, 0);
  console.log(`${QUERIES_FILE}: ${gold.length} queries valid (${counts}); ${judged} judgements over ${docs.length} options`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});

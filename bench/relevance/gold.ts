/**
 * The gold set, bench/relevance/queries.json: queries in the categories of search.nixos.org's
 * option benchmark, each with tiers of relevant `namespace:option` ids, best tier first.
 * @module
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../lib/paths.ts";

export const CATEGORIES = ["exact", "prefix", "typo", "dotted", "multiterm", "scoped", "intent"] as const;
export type Category = (typeof CATEGORIES)[number];

export interface GoldQuery {
  id: string;
  category: Category;
  q: string;
  /** Scoped queries: every engine is restricted to this namespace. */
  namespace?: string;
  /** Relevant ids in tiers, best first. */
  relevant: string[][];
}

export const QUERIES_FILE = path.join(repoRoot, "bench/relevance/queries.json");
const MIN_QUERIES = 130;
const MIN_PER_CATEGORY = 15;

export function loadGold(file = QUERIES_FILE): GoldQuery[] {
  return JSON.parse(readFileSync(file, "utf8")) as GoldQuery[];
}

/**
 * Every problem with the gold set against the documents' ids: unknown ids, malformed or duplicate
 * entries, scoped queries without a namespace (or with relevant ids outside it), too few queries.
 */
export function goldProblems(gold: readonly GoldQuery[], ids: ReadonlySet<string>, namespaces: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const [i, g] of gold.entries()) {
    const at = `query ${i} (${g.id ?? "no id"})`;
    if (typeof g.id !== "string" || !g.id) problems.push(`${at}: missing id`);
    else if (seen.has(g.id)) problems.push(`${at}: duplicate id`);
    seen.add(g.id);
    if (!CATEGORIES.includes(g.category)) problems.push(`${at}: unknown category ${JSON.stringify(g.category)}`);
    if (typeof g.q !== "string" || !g.q.trim()) problems.push(`${at}: empty q`);
    if (g.namespace !== undefined && !namespaces.has(g.namespace)) problems.push(`${at}: unknown namespace ${g.namespace}`);
    if (g.category === "scoped" && !g.namespace) problems.push(`${at}: scoped query without a namespace`);
    if (g.category !== "scoped" && g.namespace) problems.push(`${at}: only scoped queries have a namespace`);
    if (!Array.isArray(g.relevant) || g.relevant.length === 0 || g.relevant.some((t) => !Array.isArray(t) || t.length === 0)) {
      problems.push(`${at}: relevant must be a non-empty list of non-empty tiers`);
      continue;
    }
    const inQuery = new Set<string>();
    for (const id of g.relevant.flat()) {
      if (!ids.has(id)) problems.push(`${at}: unknown id ${id}`);
      if (inQuery.has(id)) problems.push(`${at}: ${id} listed twice`);
      inQuery.add(id);
      if (g.namespace && !id.startsWith(`${g.namespace}:`)) problems.push(`${at}: ${id} is outside namespace ${g.namespace}`);
    }
  }
  if (gold.length < MIN_QUERIES) problems.push(`${gold.length} queries, expected at least ${MIN_QUERIES}`);
  for (const c of CATEGORIES) {
    const n = gold.filter((g) => g.category === c).length;
    if (n < MIN_PER_CATEGORY) problems.push(`category ${c}: ${n} queries, expected at least ${MIN_PER_CATEGORY}`);
  }
  return problems;
}

/** Throws, listing every problem, unless the gold set is valid. */
export function assertGold(gold: readonly GoldQuery[], ids: ReadonlySet<string>, namespaces: ReadonlySet<string>): void {
  const problems = goldProblems(gold, ids, namespaces);
  if (problems.length) throw new Error(`bench/relevance/queries.json is invalid (${problems.length} problem(s)):\n  ${problems.join("\n  ")}`);
}

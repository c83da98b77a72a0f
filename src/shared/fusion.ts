/**
 * Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): each ranked list gives a hit
 * `weight / (k + rank)`, and hits are ordered by the sum. Used to fuse the original query's list
 * with the lists of its rewrites, whose scores are not comparable with each other.
 * @module
 */
import { compareHits } from "./rank.ts";
import type { SearchHit } from "./types.ts";

/** The usual constant: it keeps the top of one list from outweighing agreement between lists. */
export const RRF_K = 60;

export interface RankedList {
  hits: readonly SearchHit[];
  weight: number;
}

/**
 * The fused order. A hit keeps its fields from the first list that has it; its `score` becomes
 * the fused score (scaled by 1000, rounded), so fused answers sort on `score` like any other.
 */
export function fuseRanked(lists: readonly RankedList[], k = RRF_K): SearchHit[] {
  const fused = new Map<string, { hit: SearchHit; sum: number }>();
  for (const { hits, weight } of lists) {
    hits.forEach((hit, i) => {
      const key = `${hit.namespace}\u0000${hit.name}`;
      const entry = fused.get(key);
      const add = weight / (k + i + 1);
      if (entry) entry.sum += add;
      else fused.set(key, { hit, sum: add });
    });
  }
  return [...fused.values()].map(({ hit, sum }) => ({ ...hit, score: Math.round(sum * 1e9) / 1e6 })).sort(compareHits);
}

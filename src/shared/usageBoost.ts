/**
 * `boost=usage`: how many hosts use a hit's module adds a small bonus to its search score.
 * Kept apart from rank.ts on purpose: the default ranking never calls it.
 * @module
 */
import { compareHits } from "./rank.ts";
import type { SearchHit } from "./types.ts";

/**
 * Points per decade of hosts: 1 host +6, 10 hosts +21, 100 +40, 1,000 +60. Within-tier scores
 * spread over hundreds of points, so this reorders near-ties (hits a few dozen points apart), not
 * clearly better text matches.
 */
export const USAGE_WEIGHT = 20;

/** Score tiers are 1,000 points wide (rank.ts): a boosted score stays below its tier's ceiling. */
const TIER_WIDTH = 1000;

export function usageBonus(hosts: number): number {
  return hosts > 0 ? USAGE_WEIGHT * Math.log10(1 + hosts) : 0;
}

/**
 * The hits re-ranked with each one's usage bonus (`hostsOf` gives the hosts using its module).
 * The bonus is capped at the top of the hit's own 1,000-point tier, so a boosted hit can pass
 * hits of its tier but never one of a higher tier: a text match never overtakes an exact name.
 */
export function boostByUsage(hits: readonly SearchHit[], hostsOf: (hit: SearchHit) => number): SearchHit[] {
  return hits
    .map((hit) => {
      const hosts = hostsOf(hit);
      if (hosts <= 0) return { ...hit, usageHosts: 0 };
      const ceiling = Math.floor(hit.score / TIER_WIDTH) * TIER_WIDTH + TIER_WIDTH - 0.001;
      const score = Math.round(Math.min(ceiling, hit.score + usageBonus(hosts)) * 1000) / 1000;
      return { ...hit, score: Math.max(hit.score, score), usageHosts: hosts };
    })
    .sort(compareHits);
}

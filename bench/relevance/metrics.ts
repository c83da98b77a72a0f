/**
 * Ranking metrics at cutoff 10, graded by the gold tiers: a hit in tier i of n tiers has gain
 * n − i; the ideal DCG orders the gold ids by gain.
 * @module
 */
export const CUTOFF = 10;

export interface QueryScore {
  /** 1-based rank of the first relevant hit (any tier) within the cutoff, or null. */
  rank: number | null;
  /** 1-based rank of the first best-tier hit within the cutoff, or null. */
  bestRank: number | null;
  rr: number;
  success: number;
  ndcg: number;
}

export function gains(tiers: readonly (readonly string[])[]): Map<string, number> {
  const g = new Map<string, number>();
  tiers.forEach((tier, i) => tier.forEach((id) => g.set(id, tiers.length - i)));
  return g;
}

export function scoreQuery(ranked: readonly string[], tiers: readonly (readonly string[])[]): QueryScore {
  const gain = gains(tiers);
  const top = ranked.slice(0, CUTOFF);
  const first = top.findIndex((id) => gain.has(id));
  const best = top.findIndex((id) => tiers[0]!.includes(id));
  const dcg = (values: number[]) => values.reduce((sum, g, i) => sum + g / Math.log2(i + 2), 0);
  const ideal = dcg([...gain.values()].sort((a, b) => b - a).slice(0, CUTOFF));
  return {
    rank: first < 0 ? null : first + 1,
    bestRank: best < 0 ? null : best + 1,
    rr: first < 0 ? 0 : 1 / (first + 1),
    success: first < 0 ? 0 : 1,
    ndcg: ideal > 0 ? dcg(top.map((id) => gain.get(id) ?? 0)) / ideal : 0,
  };
}

export interface Aggregate {
  n: number;
  mrr: number;
  success: number;
  ndcg: number;
}

export function aggregate(scores: readonly QueryScore[]): Aggregate {
  const mean = (f: (s: QueryScore) => number) => (scores.length ? scores.reduce((a, s) => a + f(s), 0) / scores.length : NaN);
  return { n: scores.length, mrr: mean((s) => s.rr), success: mean((s) => s.success), ndcg: mean((s) => s.ndcg) };
}

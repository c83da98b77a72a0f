/**
 * Which options need a new vector. Embedding costs (Workers AI bills per token; even the local
 * embedder is the slowest part of a vector ingest), so after a batch only options whose content
 * hash differs from the hash their vector was made from are embedded again, and vectors of
 * options that are gone are deleted. Pure: the caller reads both maps and applies the plan.
 * @module
 */

export interface EmbeddingPlan<K extends number | string> {
  /** Options without a vector, or whose vector was made from other content; ascending. */
  embed: K[];
  /** Vectors whose option no longer exists; ascending. */
  remove: K[];
  /** Options whose vector is current. */
  unchanged: number;
}

function ascending<K extends number | string>(a: K, b: K): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * @param current live option id → its content hash now
 * @param stored option id → content hash its stored vector was made from
 */
export function planEmbeddings<K extends number | string>(current: ReadonlyMap<K, string>, stored: ReadonlyMap<K, string>): EmbeddingPlan<K> {
  const embed: K[] = [];
  const remove: K[] = [];
  let unchanged = 0;
  for (const [id, hash] of current) {
    if (stored.get(id) === hash) unchanged++;
    else embed.push(id);
  }
  for (const id of stored.keys()) if (!current.has(id)) remove.push(id);
  return { embed: embed.sort(ascending), remove: remove.sort(ascending), unchanged };
}

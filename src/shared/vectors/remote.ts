/**
 * The production vector path: Workers AI embeds, Vectorize stores and answers, when both bindings
 * are configured (they only exist on Cloudflare; `wrangler dev` and the tests run without them and
 * use each shard's local embedded index instead). The coordinator embeds the query once, asks
 * Vectorize for the nearest options of every namespace, and hands each shard its share; a slow or
 * failing vector side leaves the answer lexical and flagged partial.
 * @module
 */
import { withDeadline } from "../deadline.ts";
import type { VectorMatch } from "./index.ts";
import { VectorizeStore, type VectorizeBinding } from "./vectorize.ts";
import { WorkersAiEmbedder, type AiRunner } from "./workersAi.ts";

/** The optional bindings; declared in wrangler.jsonc only for deployments that have them. */
export interface RemoteVectorBindings {
  AI?: AiRunner;
  VECTORIZE?: VectorizeBinding;
}

export interface RemoteVectors {
  embedder: WorkersAiEmbedder;
  index: VectorizeStore;
}

export function remoteVectors(env: RemoteVectorBindings): RemoteVectors | null {
  if (!env.AI || !env.VECTORIZE) return null;
  const embedder = new WorkersAiEmbedder(env.AI);
  return { embedder, index: new VectorizeStore(env.VECTORIZE, { dimensions: embedder.dimensions }) };
}

export interface RemoteNearest {
  status: "ok" | "error" | "timeout";
  /** namespace → option name → cosine similarity. */
  byNamespace: Map<string, Record<string, number>>;
}

/** Group Vectorize matches by namespace, keeping each option's best score. */
export function groupMatches(matches: readonly VectorMatch[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const m of matches) {
    if (!m.metadata) continue;
    let scores = out.get(m.metadata.namespace);
    if (!scores) out.set(m.metadata.namespace, (scores = {}));
    scores[m.metadata.option] = Math.max(scores[m.metadata.option] ?? -1, m.score);
  }
  return out;
}

/**
 * The options nearest to `text`, per namespace, within `budgetMs`. With one namespace chosen the
 * query is filtered to it; otherwise one query serves all namespaces.
 */
export async function remoteNearest(remote: RemoteVectors, text: string, namespaces: readonly string[], topK: number, budgetMs: number): Promise<RemoteNearest> {
  const work = (async () => {
    const [vector] = await remote.embedder.embed([text]);
    const filter = namespaces.length === 1 ? { namespace: namespaces[0]! } : {};
    return remote.index.query(vector!, { topK, ...filter });
  })();
  try {
    const result = await withDeadline(work, budgetMs);
    if (result === "timeout") return { status: "timeout", byNamespace: new Map() };
    return { status: "ok", byNamespace: groupMatches(result) };
  } catch (err) {
    console.error("vectors: remote nearest failed", String(err));
    return { status: "error", byNamespace: new Map() };
  }
}

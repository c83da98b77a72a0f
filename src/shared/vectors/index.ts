/**
 * The vector side of hybrid search: an `Embedder` turns option texts into vectors, a
 * `VectorIndex` stores them and answers nearest-neighbour queries. Two indexes implement it:
 * `VectorizeStore` over a Cloudflare Vectorize binding (one index for every namespace, filtered by
 * metadata), and `SqliteVectorStore` (src/objects/NamespaceShard/vectorStore.ts) inside each
 * namespace's Durable Object, int8 vectors in SQLite searched exactly. Scores are cosine
 * similarities; fusing them with keyword ranks is the caller's business.
 * @module
 */

/** What a vector points at; enough to show a hit without another lookup. */
export interface VectorMetadata {
  namespace: string;
  /** Module path of the option. */
  module: string;
  /** Option display name. */
  option: string;
}

export interface VectorItem {
  /**
   * The caller's id of the vector. `SqliteVectorStore`: the option's row id (decimal);
   * `VectorizeStore`: any string, conventionally `optionVectorKey(namespace, option)`.
   */
  id: string;
  values: Float32Array;
  metadata: VectorMetadata;
  /**
   * Content hash of what the vector was made from (the option's `content_hash`), so a later
   * `planEmbeddings` can tell which vectors are stale. Required by `SqliteVectorStore`.
   */
  contentHash?: string;
}

export interface VectorMatch {
  id: string;
  /** Cosine similarity, higher is closer. */
  score: number;
  metadata?: VectorMetadata;
}

export interface VectorQueryOptions {
  /** Most matches wanted; an index may return fewer (and caps it at its own limit). */
  topK: number;
  /** Only vectors of this namespace. */
  namespace?: string;
}

export interface VectorIndex {
  /** Insert or replace vectors by id. */
  upsert(items: VectorItem[]): Promise<void>;
  /** Remove vectors; unknown ids are ignored. */
  deleteByIds(ids: string[]): Promise<void>;
  /** Nearest vectors to `vector`, best first. */
  query(vector: Float32Array, opts: VectorQueryOptions): Promise<VectorMatch[]>;
}

/** The logical id of an option's vector in an index shared by namespaces. */
export function optionVectorKey(namespace: string, option: string): string {
  return `${namespace}:${option}`;
}

export { type Embedder, type EmbeddableOption, MAX_DESCRIPTION_CHARS, descriptionText, optionEmbeddingText, truncateText } from "./embedder.ts";
export { InvalidResponseError } from "./errors.ts";
export { Int8Matrix, type Int8Vector, type ScoredRow, assertVector, dequantizeInt8, quantizeInt8, topKCosine } from "./int8.ts";
export { type IdfStats, LOCAL_DIMENSIONS, LocalEmbedder, type LocalEmbedderOptions, fitIdf, idfStatsSchema } from "./local.ts";
export { type EmbeddingPlan, planEmbeddings } from "./plan.ts";
export { type VectorizeBinding, VectorizeStore, type VectorizeStoreOptions, vectorizeId } from "./vectorize.ts";
export { type AiRunner, WorkersAiEmbedder, type WorkersAiEmbedderOptions } from "./workersAi.ts";

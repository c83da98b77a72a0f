/**
 * `SqliteVectorStore`: the `VectorIndex` inside a namespace's Durable Object. Vectors are int8
 * with a per-vector scale (`option_vectors`, SQL in vectors.ts), a quarter of float32's size, and
 * search is exact: every vector is scored by cosine. Decoding 17,762 rows from SQLite on every
 * query would cost more than scoring them, so a decoded copy stays in memory until the
 * `vectors.version` counter in `meta` changes (every write bumps it, whichever instance wrote).
 *
 * A store belongs to one embedder: opened with another embedder id than the stored vectors were
 * made by, it drops them all (they are not comparable), and `planEmbeddings` then re-embeds every
 * option. Ids are option row ids as decimal strings; metadata comes from the options table.
 * @module
 */
import type { VectorIndex, VectorItem, VectorMatch, VectorQueryOptions } from "../../shared/vectors/index.ts";
import { Int8Matrix, assertVector, quantizeInt8, topKCosine, type ScoredRow } from "../../shared/vectors/int8.ts";
import { getMeta } from "./store.ts";
import * as vectors from "./vectors.ts";

export interface SqliteVectorStoreOptions {
  /** Id of the embedder whose vectors this store holds (`Embedder.id`). */
  embedderId: string;
  dimensions: number;
}

/** The most matches one query returns. */
export const SQLITE_MAX_TOP_K = 1000;

function optionId(id: string): number {
  const n = Number(id);
  if (!/^[1-9]\d{0,15}$/.test(id) || !Number.isSafeInteger(n)) throw new RangeError(`vector id ${JSON.stringify(id)} is not an option row id`);
  return n;
}

export class SqliteVectorStore implements VectorIndex {
  readonly embedderId: string;
  readonly dimensions: number;
  /** True when opening dropped vectors made by another embedder. */
  readonly reset: boolean;
  readonly #storage: DurableObjectStorage;
  readonly #sql: SqlStorage;
  #cache: { version: number; matrix: Int8Matrix } | null = null;

  constructor(storage: DurableObjectStorage, options: SqliteVectorStoreOptions) {
    this.#storage = storage;
    this.#sql = storage.sql;
    this.embedderId = options.embedderId;
    this.dimensions = options.dimensions;
    const key = `${options.embedderId}#${options.dimensions}`;
    const stored = vectors.vectorsEmbedder(this.#sql);
    this.reset = stored !== key && (stored !== null || vectors.vectorCount(this.#sql) > 0);
    if (stored !== key) {
      storage.transactionSync(() => {
        vectors.clearVectors(this.#sql);
        vectors.setVectorsEmbedder(this.#sql, key);
        vectors.bumpVectorsVersion(this.#sql);
      });
    }
  }

  // ---- synchronous API, for use inside the object ---------------------------------------------

  /** Insert or replace the vectors of options, in one transaction. */
  put(rows: readonly { optionId: number; contentHash: string; values: ArrayLike<number> }[]): void {
    const encoded = rows.map((r) => {
      assertVector(r.values, this.dimensions, `vector of option ${r.optionId}`);
      return { optionId: r.optionId, contentHash: r.contentHash, ...quantizeInt8(r.values) };
    });
    this.#storage.transactionSync(() => {
      vectors.putVectors(this.#sql, encoded);
      vectors.bumpVectorsVersion(this.#sql);
    });
  }

  remove(optionIds: readonly number[]): void {
    if (optionIds.length === 0) return;
    this.#storage.transactionSync(() => {
      vectors.deleteVectors(this.#sql, optionIds);
      vectors.bumpVectorsVersion(this.#sql);
    });
  }

  /** Option id → content hash its vector was made from: the `stored` side of `planEmbeddings`. */
  hashes(): Map<number, string> {
    return vectors.vectorHashes(this.#sql);
  }

  count(): number {
    return vectors.vectorCount(this.#sql);
  }

  /** The decoded vectors, from memory while no write happened since they were read. */
  matrix(): Int8Matrix {
    const version = vectors.vectorsVersion(this.#sql);
    if (this.#cache?.version !== version) {
      const { ids, data } = vectors.readVectors(this.#sql, this.dimensions);
      this.#cache = { version, matrix: new Int8Matrix(ids, this.dimensions, data) };
    }
    return this.#cache.matrix;
  }

  /** Exact top-k by cosine over every stored vector. */
  search(vector: ArrayLike<number>, topK: number): ScoredRow[] {
    assertVector(vector, this.dimensions, "query vector");
    return topKCosine(this.matrix(), vector, Math.min(topK, SQLITE_MAX_TOP_K));
  }

  // ---- VectorIndex ----------------------------------------------------------------------------

  async upsert(items: VectorItem[]): Promise<void> {
    this.put(
      items.map((item) => {
        if (item.contentHash === undefined) throw new RangeError(`vector ${item.id} has no contentHash; the SQLite store needs it to plan re-embedding`);
        return { optionId: optionId(item.id), contentHash: item.contentHash, values: item.values };
      }),
    );
  }

  async deleteByIds(ids: string[]): Promise<void> {
    this.remove(ids.map(optionId));
  }

  async query(vector: Float32Array, opts: VectorQueryOptions): Promise<VectorMatch[]> {
    if (!Number.isInteger(opts.topK) || opts.topK < 1) throw new RangeError(`topK must be a positive integer, not ${opts.topK}`);
    const namespace = getMeta(this.#sql, "namespace");
    // One shard holds one namespace: a filter for another matches nothing.
    if (opts.namespace !== undefined && opts.namespace !== namespace) return [];
    const rows = this.search(vector, opts.topK);
    const labels = vectors.optionLabels(this.#sql, rows.map((r) => r.id));
    return rows.map((r) => {
      const label = labels.get(r.id);
      const match: VectorMatch = { id: String(r.id), score: r.score };
      if (label && namespace !== null) match.metadata = { namespace, module: label.module, option: label.option };
      return match;
    });
  }
}

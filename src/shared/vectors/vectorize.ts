/**
 * `VectorizeStore`: a `VectorIndex` over a Cloudflare Vectorize binding, one index for all
 * namespaces. Vectorize ids are at most 64 bytes and option names are not, so each vector's id is
 * a hash of the caller's id (`vectorizeId`) and the caller's id travels in the metadata (`key`),
 * with the namespace, module and option name. Queries filter on `namespace`, which needs a
 * metadata index on it, created before vectors are inserted:
 * `wrangler vectorize create-metadata-index <index> --property-name=namespace --type=string`.
 * The index is expected to use the cosine metric (`wrangler vectorize create <index>
 * --dimensions=768 --metric=cosine` for bge-base), so scores are comparable with the local store's.
 * Upserts and deletes go in batches of 1,000 (the binding's limit); a query asks for at most 50
 * matches, the most Vectorize returns with metadata. What Vectorize answers is checked: shape,
 * finite scores, metadata whose `key` hashes to the match's id, the namespace asked for.
 * @module
 */
import { z } from "../zod.ts";
import { InvalidResponseError } from "./errors.ts";
import type { VectorIndex, VectorItem, VectorMatch, VectorQueryOptions } from "./index.ts";
import { assertVector } from "./int8.ts";

/** Metadata stored with each Vectorize vector. */
interface StoredMetadata {
  [field: string]: string;
  namespace: string;
  module: string;
  option: string;
  /** The caller's id of the vector. */
  key: string;
}

/**
 * The part of a Vectorize binding used here; `Vectorize` (and the older `VectorizeIndex`)
 * satisfy it. Typed structurally so this module also type-checks outside workerd.
 */
export interface VectorizeBinding {
  upsert(vectors: { id: string; values: number[]; metadata: Record<string, string> }[]): Promise<unknown>;
  deleteByIds(ids: string[]): Promise<unknown>;
  query(
    vector: number[],
    options: { topK: number; returnValues: boolean; returnMetadata: "all"; filter?: { namespace: string } },
  ): Promise<unknown>;
}

export interface VectorizeStoreOptions {
  /** Dimensions of the index (checked before anything is sent). */
  dimensions: number;
  /** Most matches asked for in one query; Vectorize allows 50 when metadata is returned. */
  maxTopK?: number;
}

/** Vectors per upsert and ids per delete (the Workers binding's batch limit). */
export const VECTORIZE_BATCH = 1000;
export const VECTORIZE_MAX_TOP_K = 50;

const SERVICE = "Vectorize";
const encoder = new TextEncoder();

/** Vectorize id of a caller id: 32 hex characters (128 bits of SHA-256), far under 64 bytes. */
export async function vectorizeId(key: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(key)));
  let hex = "";
  for (let i = 0; i < 16; i++) hex += digest[i]!.toString(16).padStart(2, "0");
  return hex;
}

const mutationSchema = z.union([
  z.object({ mutationId: z.string() }),
  z.object({ ids: z.array(z.string()), count: z.number().int().nonnegative() }),
]);

const matchesSchema = z.object({
  count: z.number().int().nonnegative().optional(),
  matches: z.array(
    z.object({
      id: z.string().min(1).max(64),
      score: z.number(),
      metadata: z.object({ namespace: z.string(), module: z.string(), option: z.string(), key: z.string() }),
    }),
  ),
});

function invalid(detail: string): InvalidResponseError {
  return new InvalidResponseError(SERVICE, detail);
}

function checkMutation(response: unknown, what: string): void {
  const parsed = mutationSchema.safeParse(response);
  if (!parsed.success) throw invalid(`${what}: neither { mutationId } nor { ids, count }`);
}

export class VectorizeStore implements VectorIndex {
  readonly dimensions: number;
  readonly maxTopK: number;
  readonly #binding: VectorizeBinding;

  constructor(binding: VectorizeBinding, options: VectorizeStoreOptions) {
    this.#binding = binding;
    this.dimensions = options.dimensions;
    this.maxTopK = Math.min(options.maxTopK ?? VECTORIZE_MAX_TOP_K, VECTORIZE_MAX_TOP_K);
  }

  async upsert(items: VectorItem[]): Promise<void> {
    const vectors: { id: string; values: number[]; metadata: StoredMetadata }[] = [];
    for (const item of items) {
      if (item.id === "") throw new RangeError("vector id is empty");
      assertVector(item.values, this.dimensions, `vector ${item.id}`);
      const { namespace, module, option } = item.metadata;
      vectors.push({ id: await vectorizeId(item.id), values: Array.from(item.values), metadata: { namespace, module, option, key: item.id } });
    }
    for (let i = 0; i < vectors.length; i += VECTORIZE_BATCH) {
      checkMutation(await this.#binding.upsert(vectors.slice(i, i + VECTORIZE_BATCH)), "upsert");
    }
  }

  async deleteByIds(ids: string[]): Promise<void> {
    const hashed = await Promise.all(ids.map(vectorizeId));
    for (let i = 0; i < hashed.length; i += VECTORIZE_BATCH) {
      checkMutation(await this.#binding.deleteByIds(hashed.slice(i, i + VECTORIZE_BATCH)), "deleteByIds");
    }
  }

  async query(vector: Float32Array, opts: VectorQueryOptions): Promise<VectorMatch[]> {
    assertVector(vector, this.dimensions, "query vector");
    if (!Number.isInteger(opts.topK) || opts.topK < 1) throw new RangeError(`topK must be a positive integer, not ${opts.topK}`);
    const topK = Math.min(opts.topK, this.maxTopK);
    const response = await this.#binding.query(Array.from(vector), {
      topK,
      returnValues: false,
      returnMetadata: "all",
      ...(opts.namespace !== undefined ? { filter: { namespace: opts.namespace } } : {}),
    });
    const parsed = matchesSchema.safeParse(response);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw invalid(`${issue.path.join(".") || "response"}: ${issue.message}`);
    }
    const { matches } = parsed.data;
    if (matches.length > topK) throw invalid(`${matches.length} matches for topK ${topK}`);
    const out: VectorMatch[] = [];
    for (const m of matches) {
      if (m.score < -1.0001 || m.score > 1.0001) throw invalid(`score ${m.score} of ${m.id} is not a cosine similarity`);
      if ((await vectorizeId(m.metadata.key)) !== m.id) throw invalid(`match ${m.id} carries the metadata of another vector (${m.metadata.key})`);
      if (opts.namespace !== undefined && m.metadata.namespace !== opts.namespace) {
        throw invalid(`match ${m.metadata.key} is in namespace ${m.metadata.namespace}, outside the filter ${opts.namespace}`);
      }
      const { namespace, module, option } = m.metadata;
      out.push({ id: m.metadata.key, score: m.score, metadata: { namespace, module, option } });
    }
    // Best first, whatever order arrived.
    return out.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

/**
 * SQL of a shard's embedded vector index (`option_vectors`, migration 3): one int8 vector per live
 * option, with the option content hash it was made from. Synchronous like store.ts, so writes can
 * share a `transactionSync`. The meta keys `vectors.embedder` (which embedder made the vectors)
 * and `vectors.version` (bumped by every write, so an in-memory copy knows when it is stale) live
 * in the `meta` table.
 * @module
 */
import type { Int8Vector } from "../../shared/vectors/int8.ts";
import { getMeta, setMeta } from "./store.ts";

type Sql = SqlStorage;

/** Durable Object SQLite binds at most 100 parameters per statement. */
const MAX_PARAMS = 100;

const EMBEDDER_KEY = "vectors.embedder";
const VERSION_KEY = "vectors.version";

export interface VectorRow extends Int8Vector {
  optionId: number;
  contentHash: string;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function putVectors(sql: Sql, rows: readonly VectorRow[]): void {
  for (const r of rows) {
    sql.exec(
      `INSERT INTO option_vectors (option_id, content_hash, scale, vec) VALUES (?, ?, ?, ?)
       ON CONFLICT (option_id) DO UPDATE SET content_hash = excluded.content_hash, scale = excluded.scale, vec = excluded.vec`,
      r.optionId,
      r.contentHash,
      r.scale,
      new Uint8Array(r.values.buffer, r.values.byteOffset, r.values.byteLength),
    );
  }
}

export function deleteVectors(sql: Sql, optionIds: readonly number[]): void {
  for (const part of chunks(optionIds, MAX_PARAMS)) {
    sql.exec(`DELETE FROM option_vectors WHERE option_id IN (${part.map(() => "?").join(",")})`, ...part);
  }
}

export function clearVectors(sql: Sql): void {
  sql.exec("DELETE FROM option_vectors");
}

export function vectorCount(sql: Sql): number {
  return sql.exec<{ n: number }>("SELECT count(*) AS n FROM option_vectors").one().n;
}

/** option id → content hash each stored vector was made from. */
export function vectorHashes(sql: Sql): Map<number, string> {
  const out = new Map<number, string>();
  for (const r of sql.exec<{ option_id: number; content_hash: string }>("SELECT option_id, content_hash FROM option_vectors")) {
    out.set(r.option_id, r.content_hash);
  }
  return out;
}

/**
 * Every vector, in option id order, decoded into one buffer. A row whose blob is not
 * `dimensions` bytes long (written by another embedder, or damaged) is an error, not skipped.
 */
export function readVectors(sql: Sql, dimensions: number): { ids: Int32Array; data: Int8Array; scales: Float32Array } {
  const n = vectorCount(sql);
  const ids = new Int32Array(n);
  const scales = new Float32Array(n);
  const data = new Int8Array(n * dimensions);
  let row = 0;
  for (const r of sql.exec<{ option_id: number; scale: number; vec: ArrayBuffer }>("SELECT option_id, scale, vec FROM option_vectors ORDER BY option_id")) {
    if (row === n) break;
    if (r.vec.byteLength !== dimensions) throw new Error(`vector of option ${r.option_id} has ${r.vec.byteLength} bytes; expected ${dimensions}`);
    ids[row] = r.option_id;
    scales[row] = r.scale;
    data.set(new Int8Array(r.vec), row * dimensions);
    row++;
  }
  return row === n ? { ids, data, scales } : { ids: ids.subarray(0, row), data: data.subarray(0, row * dimensions), scales: scales.subarray(0, row) };
}

export function vectorsVersion(sql: Sql): number {
  return Number(getMeta(sql, VERSION_KEY) ?? 0);
}

export function bumpVectorsVersion(sql: Sql): number {
  const next = vectorsVersion(sql) + 1;
  setMeta(sql, VERSION_KEY, String(next));
  return next;
}

export function vectorsEmbedder(sql: Sql): string | null {
  return getMeta(sql, EMBEDDER_KEY);
}

export function setVectorsEmbedder(sql: Sql, id: string): void {
  setMeta(sql, EMBEDDER_KEY, id);
}

// ---- what the vectors are made from -----------------------------------------------------------

/** Live option id → content hash: the `current` side of `planEmbeddings`. */
export function liveOptionHashes(sql: Sql): Map<number, string> {
  const out = new Map<number, string>();
  for (const r of sql.exec<{ id: number; content_hash: string }>("SELECT id, content_hash FROM options WHERE deleted_at IS NULL")) {
    out.set(r.id, r.content_hash);
  }
  return out;
}

export interface EmbeddingSource {
  id: number;
  contentHash: string;
  name: string;
  module: string;
  loc: string[];
  type: string;
  description: string;
}

/** The fields `optionEmbeddingText` needs, for the given live options, in id order. */
export function embeddingSources(sql: Sql, optionIds: readonly number[]): EmbeddingSource[] {
  const out: EmbeddingSource[] = [];
  for (const part of chunks([...optionIds].sort((a, b) => a - b), MAX_PARAMS)) {
    const rows = sql.exec<{ id: number; content_hash: string; name: string; module: string; loc: string; type: string; description: string }>(
      `SELECT o.id, o.content_hash, o.name, m.path AS module, o.loc, o.type, o.description
       FROM options o JOIN modules m ON m.id = o.module_id
       WHERE o.deleted_at IS NULL AND o.id IN (${part.map(() => "?").join(",")}) ORDER BY o.id`,
      ...part,
    );
    for (const r of rows) {
      out.push({ id: r.id, contentHash: r.content_hash, name: r.name, module: r.module, loc: JSON.parse(r.loc) as string[], type: r.type, description: r.description });
    }
  }
  return out;
}

/** Option name and module path of the given options (deleted ones included), for match metadata. */
export function optionLabels(sql: Sql, optionIds: readonly number[]): Map<number, { option: string; module: string }> {
  const out = new Map<number, { option: string; module: string }>();
  for (const part of chunks(optionIds, MAX_PARAMS)) {
    const rows = sql.exec<{ id: number; name: string; module: string }>(
      `SELECT o.id, o.name, m.path AS module FROM options o JOIN modules m ON m.id = o.module_id WHERE o.id IN (${part.map(() => "?").join(",")})`,
      ...part,
    );
    for (const r of rows) out.set(r.id, { option: r.name, module: r.module });
  }
  return out;
}

// ---- vectors pushed to Vectorize -----------------------------------------------------------------

/** Option id → content hash and key of the vectors the Vectorize index holds for this namespace. */
export function remoteVectorRows(sql: Sql): Map<number, { hash: string; key: string }> {
  const out = new Map<number, { hash: string; key: string }>();
  for (const r of sql.exec<{ option_id: number; content_hash: string; key: string }>("SELECT option_id, content_hash, key FROM remote_vectors")) {
    out.set(r.option_id, { hash: r.content_hash, key: r.key });
  }
  return out;
}

export function putRemoteVectorRows(sql: Sql, rows: readonly { optionId: number; contentHash: string; key: string }[]): void {
  for (const r of rows) {
    sql.exec(
      "INSERT INTO remote_vectors (option_id, content_hash, key) VALUES (?, ?, ?) ON CONFLICT(option_id) DO UPDATE SET content_hash = excluded.content_hash, key = excluded.key",
      r.optionId, r.contentHash, r.key,
    );
  }
}

export function deleteRemoteVectorRows(sql: Sql, optionIds: readonly number[]): void {
  for (const part of chunks(optionIds, MAX_PARAMS)) sql.exec(`DELETE FROM remote_vectors WHERE option_id IN (${part.map(() => "?").join(",")})`, ...part);
}

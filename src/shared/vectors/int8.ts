/**
 * Int8 vectors and exact top-k. A vector is stored as `round(v / scale)` in [-127, 127] with one
 * float `scale = max|v| / 127` per vector: a quarter of float32's bytes, and each component is off
 * by at most `scale / 2`. Cosine similarity does not depend on the scale (it cancels), so search
 * works on the int8 values and each row's norm.
 * @module
 */

export interface Int8Vector {
  /** `v ≈ scale × values`; 0 for the zero vector. */
  scale: number;
  values: Int8Array;
}

/** Throws unless `v` has `dimensions` finite components; `what` names it in the message. */
export function assertVector(v: ArrayLike<number>, dimensions: number, what: string): void {
  if (v.length !== dimensions) throw new RangeError(`${what} has ${v.length} dimensions; expected ${dimensions}`);
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) throw new RangeError(`${what} has a non-finite component at ${i} (${v[i]})`);
  }
}

export function quantizeInt8(v: ArrayLike<number>): Int8Vector {
  let max = 0;
  for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]!));
  const values = new Int8Array(v.length);
  if (max === 0 || !Number.isFinite(max)) return { scale: 0, values };
  const scale = max / 127;
  for (let i = 0; i < v.length; i++) values[i] = Math.max(-127, Math.min(127, Math.round(v[i]! / scale)));
  return { scale, values };
}

export function dequantizeInt8(q: Int8Vector): Float32Array {
  const out = new Float32Array(q.values.length);
  for (let i = 0; i < out.length; i++) out[i] = q.values[i]! * q.scale;
  return out;
}

/**
 * Rows of int8 vectors in one contiguous buffer, with each row's inverse norm precomputed: the
 * decoded form of a vector table, kept in memory between searches.
 */
export class Int8Matrix {
  readonly ids: Int32Array;
  readonly dimensions: number;
  /** `rows × dimensions`, row-major. */
  readonly data: Int8Array;
  readonly rows: number;
  readonly invNorms: Float64Array;

  constructor(ids: Int32Array, dimensions: number, data: Int8Array) {
    this.ids = ids;
    this.dimensions = dimensions;
    this.data = data;
    this.rows = ids.length;
    if (data.length !== this.rows * dimensions) throw new RangeError(`matrix data has ${data.length} values; expected ${this.rows} × ${dimensions}`);
    this.invNorms = new Float64Array(this.rows);
    for (let r = 0; r < this.rows; r++) {
      let sum = 0;
      for (let i = r * dimensions, end = i + dimensions; i < end; i++) sum += data[i]! * data[i]!;
      this.invNorms[r] = sum === 0 ? 0 : 1 / Math.sqrt(sum);
    }
  }

  /** Bytes held: vectors, ids and norms. */
  get byteLength(): number {
    return this.data.byteLength + this.ids.byteLength + this.invNorms.byteLength;
  }
}

export interface ScoredRow {
  id: number;
  /** Cosine similarity of the query and the row, in [-1, 1]; 0 for a zero row or query. */
  score: number;
}

/**
 * The `k` rows most similar to `query` by cosine, best first; equal scores by ascending id, so
 * the result is a function of the data alone. Exact: every row is scored.
 */
export function topKCosine(matrix: Int8Matrix, query: ArrayLike<number>, k: number): ScoredRow[] {
  const d = matrix.dimensions;
  if (query.length !== d) throw new RangeError(`query has ${query.length} dimensions; expected ${d}`);
  if (k <= 0 || matrix.rows === 0) return [];
  let qn = 0;
  const q = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    q[i] = query[i]!;
    qn += q[i]! * q[i]!;
  }
  const qInv = qn === 0 ? 0 : 1 / Math.sqrt(qn);
  // Best k so far, kept sorted best-first; a row enters only when it beats the last one.
  const best: ScoredRow[] = [];
  const { data, ids, invNorms } = matrix;
  for (let r = 0; r < matrix.rows; r++) {
    let dot = 0;
    for (let i = 0, o = r * d; i < d; i++, o++) dot += q[i]! * data[o]!;
    const score = dot * invNorms[r]! * qInv;
    const id = ids[r]!;
    if (best.length === k) {
      const last = best[k - 1]!;
      if (score < last.score || (score === last.score && id > last.id)) continue;
      best.pop();
    }
    let at = best.length;
    while (at > 0 && (best[at - 1]!.score < score || (best[at - 1]!.score === score && best[at - 1]!.id > id))) at--;
    best.splice(at, 0, { id, score });
  }
  return best;
}

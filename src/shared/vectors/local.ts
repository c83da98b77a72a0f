/**
 * `LocalEmbedder`: vectors without a network or downloaded weights, by feature hashing.
 *
 * Each word of the text (letters/digits runs, split at camelCase like option names, plus the whole
 * run folded, see `segmentWords`) gives two kinds of features: the word itself, and the character
 * trigrams of `<word>` (the angle brackets mark the word's start and end, so prefixes and suffixes
 * are features of their own). A feature's 32-bit hash picks one of D (256) dimensions and a sign;
 * signed hashing keeps collisions from adding up to a bias. A feature's value is
 * `kind weight × (1 + ln tf) × idf`; the vector is L2-normalized, so a dot product is a cosine.
 * A few English function words count little. Optional IDF statistics (`fitIdf`) weight features
 * by rarity in the corpus; they are plain, sorted, serializable numbers and part of the embedder
 * id, because vectors made with different statistics are not comparable.
 *
 * What it captures: lexical overlap and sub-word similarity. Texts sharing words, stems or
 * fragments land close together (cosine `sign`/`signing` 0.37, `mail`/`email` 0.41,
 * `allowedtcp`/`allowedTCPPorts` 0.59), and a typo keeps most of its trigrams (`synctihng` shares
 * 5 of 9 with `syncthing`: 0.57, against 0 for `git`), so misspelled queries still land near the
 * right option. What it does not capture: meaning. Synonyms without shared letters score 0 or
 * near it (`delete`/`remove` 0, `startup`/`boot` 0, `clipboard`/`copy paste` 0,
 * `keyboard layout`/`keymap` 0.08), and shared letters can fake a relation (`dark theme` /
 * `color scheme` 0.21, through `heme`); word senses, negation and word order are lost. It is a
 * typo-tolerant, offline complement to the FTS index, not a semantic model.
 *
 * IDF is optional because it did not help the queries this is for: on known-item searches over
 * real options (a name with two letters swapped, found in the top 10), Home Manager stayed at 0.90
 * and nixvim fell from 0.72 to 0.62 with IDF; clean name queries gained (nixvim 0.82 → 0.90).
 * @module
 */
import { segmentWords } from "../tokenize.ts";
import { z } from "../zod.ts";
import type { Embedder } from "./embedder.ts";

export const LOCAL_DIMENSIONS = 256;

/**
 * Words too common in descriptions to say much. They keep a light word feature (no trigrams), so
 * options named by one (`nix.registry.<name>.to` / `.from`) stay apart.
 */
const STOP_WORDS = new Set(
  "a an and are as at be by can for from if in into is it its of on or that the this to when which will with you your".split(" "),
);

/** Trigram features are many per word; a lower weight keeps a long word from outweighing the rest. */
const TRIGRAM_WEIGHT = 0.6;
const WORD_WEIGHT = 1;
const STOP_WORD_WEIGHT = 0.25;
/** Longer runs (hashes, URLs, base64) contribute their word feature but no trigrams. */
const MAX_TRIGRAM_WORD = 40;
const WORD_SEED = 0x9e3779b1;
const TRIGRAM_SEED = 0x85ebca77;
const WORD_RUN = /[\p{L}\p{N}]+/gu;

/** FNV-1a over UTF-16 code units, then murmur3's finalizer so every output bit mixes every input. */
function hash32(s: string, seed: number, start = 0, end = s.length): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hashed features of a text: feature hash → summed kind weight of its occurrences and its count. */
function features(text: string): Map<number, { weight: number; tf: number }> {
  const out = new Map<number, { weight: number; tf: number }>();
  const add = (h: number, weight: number) => {
    const f = out.get(h);
    if (f) f.tf++;
    else out.set(h, { weight, tf: 1 });
  };
  for (const run of text.match(WORD_RUN) ?? []) {
    for (const word of segmentWords(run)) {
      if (STOP_WORDS.has(word)) {
        add(hash32(word, WORD_SEED), STOP_WORD_WEIGHT);
        continue;
      }
      add(hash32(word, WORD_SEED), WORD_WEIGHT);
      if (word.length > MAX_TRIGRAM_WORD) continue;
      const padded = `<${word}>`;
      for (let i = 0; i + 3 <= padded.length; i++) add(hash32(padded, TRIGRAM_SEED, i, i + 3), TRIGRAM_WEIGHT);
    }
  }
  return out;
}

/** Document frequencies of hashed features over a corpus, as `fitIdf` returns them. */
export interface IdfStats {
  kind: "nixdocs-local-idf";
  version: 1;
  /** Texts the statistics were fitted on. */
  documents: number;
  /** Features in fewer texts than this are not listed; they count as unseen (highest weight). */
  minDf: number;
  /** Feature hashes, strictly increasing. */
  hashes: number[];
  /** Document frequency of `hashes[i]`. */
  df: number[];
}

const uint32 = z.number().int().min(0).max(0xffffffff);

/** Checks stored statistics before use (a corrupt row must not silently skew every vector). */
export const idfStatsSchema = z
  .object({
    kind: z.literal("nixdocs-local-idf"),
    version: z.literal(1),
    documents: z.number().int().min(1),
    minDf: z.number().int().min(1),
    hashes: z.array(uint32),
    df: z.array(z.number().int().min(1)),
  })
  .superRefine((s, ctx) => {
    if (s.hashes.length !== s.df.length) ctx.addIssue({ code: "custom", message: "hashes and df differ in length" });
    for (let i = 1; i < s.hashes.length; i++) {
      if (s.hashes[i]! <= s.hashes[i - 1]!) {
        ctx.addIssue({ code: "custom", message: "hashes are not strictly increasing", path: ["hashes", i] });
        break;
      }
    }
    if (s.df.some((d) => d < s.minDf || d > s.documents)) ctx.addIssue({ code: "custom", message: "df outside [minDf, documents]" });
  });

/**
 * Document frequencies of every feature in at least `minDf` of `texts`. Deterministic: the same
 * texts (in any order) give the same statistics.
 */
export function fitIdf(texts: Iterable<string>, options: { minDf?: number } = {}): IdfStats {
  const minDf = options.minDf ?? 2;
  const df = new Map<number, number>();
  let documents = 0;
  for (const text of texts) {
    documents++;
    for (const h of features(text).keys()) df.set(h, (df.get(h) ?? 0) + 1);
  }
  const kept = [...df].filter(([, n]) => n >= minDf).sort((a, b) => a[0] - b[0]);
  return { kind: "nixdocs-local-idf", version: 1, documents: Math.max(documents, 1), minDf, hashes: kept.map(([h]) => h), df: kept.map(([, n]) => n) };
}

/** Short fingerprint of fitted statistics, for the embedder id. */
function fingerprint(stats: IdfStats): string {
  let h = hash32(`${stats.documents}:${stats.minDf}`, 0);
  for (let i = 0; i < stats.hashes.length; i++) h = Math.imul(h ^ stats.hashes[i]!, 0x01000193) ^ stats.df[i]!;
  return hash32(String(h >>> 0), 0).toString(16).padStart(8, "0");
}

export interface LocalEmbedderOptions {
  /** A power of two; 256 by default. */
  dimensions?: number;
  /** Statistics from `fitIdf`; without them every feature weighs the same. */
  idf?: IdfStats | null;
}

export class LocalEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  readonly #idf: Map<number, number> | null;
  /** Weight of features the statistics do not list (rare or unseen). */
  readonly #unseenIdf: number;

  constructor(options: LocalEmbedderOptions = {}) {
    const d = options.dimensions ?? LOCAL_DIMENSIONS;
    if (!Number.isInteger(d) || d < 8 || d > 4096 || (d & (d - 1)) !== 0) throw new RangeError(`LocalEmbedder dimensions must be a power of two in [8, 4096], not ${d}`);
    this.dimensions = d;
    let id = `local-hash3-d${d}-v1`;
    if (options.idf) {
      const stats = idfStatsSchema.parse(options.idf) as IdfStats;
      const n = stats.documents;
      // Smoothed IDF (ln((N+1)/(df+1)) + 1): never zero, so a word in every text still counts a little.
      this.#idf = new Map(stats.hashes.map((h, i) => [h, Math.log((n + 1) / (stats.df[i]! + 1)) + 1]));
      this.#unseenIdf = Math.log(n + 1) + 1;
      id += `-idf${fingerprint(stats)}`;
    } else {
      this.#idf = null;
      this.#unseenIdf = 1;
    }
    this.id = id;
  }

  /** The vector of one text (synchronous: no I/O). Text without letters or digits gives zeros. */
  embedOne(text: string): Float32Array {
    const v = new Float64Array(this.dimensions);
    const mask = this.dimensions - 1;
    for (const [h, f] of features(text)) {
      const idf = this.#idf ? (this.#idf.get(h) ?? this.#unseenIdf) : 1;
      const value = f.weight * (1 + Math.log(f.tf)) * idf;
      v[h & mask]! += h & 0x80000000 ? -value : value;
    }
    let norm = 0;
    for (let i = 0; i < v.length; i++) norm += v[i]! * v[i]!;
    const out = new Float32Array(this.dimensions);
    if (norm === 0) return out;
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < v.length; i++) out[i] = v[i]! * inv;
    return out;
  }

  embed(texts: string[]): Promise<Float32Array[]> {
    return Promise.resolve(texts.map((t) => this.embedOne(t)));
  }
}

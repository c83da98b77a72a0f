/**
 * Words of option names and queries, shared by indexing and querying so both sides agree.
 * A name segment contributes its camelCase / punctuation words *and* the whole segment folded
 * into one word, so `allowedTCPPorts` is found by `allowed tcp ports`, by `allowedtcpports`
 * and by the fragment `allowedtcp`; `virtualHosts` by `virtual hosts` and `virtualhosts`.
 * @module
 */
import { isPlaceholder } from "./optionName.ts";

const WORD_RUN = /[\p{L}\p{N}]+/gu;
/** camelCase and acronym boundaries: `allowedTCPPorts` → `allowed|TCP|Ports`. */
const CAMEL = /\p{Lu}+(?=\p{Lu}\p{Ll})|\p{Lu}?\p{Ll}+|\p{Lu}+|\p{N}+|[\p{L}\p{N}]+/gu;

function fold(s: string): string {
  return s.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
}

/**
 * Segment words and folds are memoised: ranking reads the words of every candidate's name, and
 * names share most of their segments (`plugins`, `settings`, `enable`), so a search over
 * thousands of candidates tokenizes each distinct segment once. Bounded: cleared when full.
 */
const MEMO_LIMIT = 100_000;
const wordsMemo = new Map<string, readonly string[]>();
const foldMemo = new Map<string, string>();

function remember<V>(memo: Map<string, V>, key: string, value: V): V {
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(key, value);
  return value;
}

/** The words of one name segment: its parts plus the whole segment as one folded word. */
export function segmentWords(segment: string): readonly string[] {
  return wordsMemo.get(segment) ?? remember(wordsMemo, segment, Object.freeze(computeSegmentWords(segment)));
}

function computeSegmentWords(segment: string): string[] {
  if (isPlaceholder(segment)) return [];
  const words: string[] = [];
  const runs = segment.match(WORD_RUN) ?? [];
  for (const run of runs) {
    for (const part of run.match(CAMEL) ?? []) words.push(fold(part));
  }
  const whole = fold(runs.join(""));
  if (whole && !words.includes(whole)) words.push(whole);
  return words;
}

/** The indexed words of an option's `loc`, in order, without duplicates. */
export function nameWords(loc: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const segment of loc) for (const w of segmentWords(segment)) seen.add(w);
  return [...seen];
}

/** Words of free text (module paths, queries): runs of letters and digits, folded. */
export function textWords(text: string): string[] {
  return (text.match(WORD_RUN) ?? []).map(fold);
}

/** Folded, lower-cased form of a whole segment, as `segmentWords` puts last. */
export function foldSegment(segment: string): string {
  return foldMemo.get(segment) ?? remember(foldMemo, segment, fold((segment.match(WORD_RUN) ?? []).join("")));
}

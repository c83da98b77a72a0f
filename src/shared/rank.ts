/**
 * Ranking of search candidates, the same in every shard so scores compare across shards.
 * A score is `tier * 1000 + within-tier score`; tiers follow what search.nixos.org learned
 * (exact name ≫ path prefix ≫ every word in the name ≫ description match ≫ any word), and
 * within the name tiers the module's `enable` option is the entry point for a bare name.
 * @module
 */
import { isPlaceholder } from "./optionName.ts";
import type { ParsedQuery } from "./query.ts";
import { foldSegment, nameWords, segmentWords } from "./tokenize.ts";
import type { PlaceholderBinding, SearchHit } from "./types.ts";

/** The words of an option's name that ranking compares with the query, computed once per option. */
export interface NameFeatures {
  loc: readonly string[];
  /** `nameWords(loc)`. */
  words: readonly string[];
  /** Every segment folded whole. */
  segs: readonly string[];
  /** `nameWords` of the parent path, for an `enable` option (the module it switches on). */
  parentWords: readonly string[] | null;
  /** The camelCase / punctuation parts of the segments below the root (`home`, `programs`, …), without whole-segment folds. */
  parts: readonly string[];
}

export function nameFeatures(loc: readonly string[]): NameFeatures {
  const parentWords = loc[loc.length - 1] === "enable" && !loc.some(isPlaceholder) ? nameWords(loc.slice(0, -1)) : null;
  const parts = loc.slice(1).flatMap((seg) => {
    const w = segmentWords(seg);
    return w.length > 1 ? w.slice(0, -1) : w;
  });
  return { loc, words: nameWords(loc), segs: loc.map(foldSegment), parentWords, parts };
}

/** What ranking reads of an option: its name and path, and how the query found it. */
export interface Candidate {
  name: string;
  loc: readonly string[];
  /** Precomputed `nameFeatures(loc)`, when the caller keeps them. */
  features?: NameFeatures;
  /** bm25 from FTS5 (lower is better), when the candidate came from a full-text match. */
  bm25: number | null;
  /** Matched only by a partial match (some words, or the embedding). */
  anyOnly: boolean;
  /** Cosine similarity of the option's embedding to the query's (0 when not among the nearest). */
  vector: number;
  /** Its text holds the query's words as a phrase (only asked for queries of several words). */
  phrase?: boolean;
}

/** Weight of embedding similarity among description matches (tuned on bench/relevance). */
export const VECTOR_WEIGHT = 200;
/** Weight of the share of a name's words that the query asked for, in the name tiers. */
export const PRECISION_WEIGHT = 80;
/** Bonus among description matches for holding the query as a phrase (tuned on bench/relevance). */
export const PHRASE_BONUS = 100;

const ENTRY_ROOTS = new Map([["programs", 15], ["services", 15], ["plugins", 8]]);

const TIER = { exact: 6, prefix: 5, ancestor: 4, name: 3, text: 2 } as const;

/**
 * Does the dotted query match a run of the option's segments? Every query segment but the last
 * must equal its segment (a placeholder `<name>` / `*` accepts any), the last must be a prefix;
 * `anchored` requires the run to start at the first segment. A trailing dot (`progra.`) asks for
 * at least one more segment after the run.
 */
export function matchesPath(querySegments: readonly string[], loc: readonly string[], anchored: boolean): boolean {
  return matchStart(querySegments, loc, anchored) >= 0;
}

/** Where the run that `matchesPath` finds starts in `loc`, or -1. */
function matchStart(querySegments: readonly string[], loc: readonly string[], anchored: boolean): number {
  let segs = querySegments;
  let needMore = 0;
  if (segs.length > 1 && segs[segs.length - 1] === "") {
    segs = segs.slice(0, -1);
    needMore = 1;
  }
  const n = segs.length;
  if (n + needMore > loc.length) return -1;
  const last = anchored ? 0 : loc.length - n - needMore;
  for (let start = 0; start <= last; start++) {
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const seg = loc[start + i]!;
      const q = segs[i]!;
      if (isPlaceholder(seg)) continue;
      const s = seg.toLowerCase();
      ok = i === n - 1 ? s.startsWith(q) : s === q;
    }
    if (ok) return start;
  }
  return -1;
}

/**
 * The concrete names a dotted query gives the option's placeholders (`age.secrets.mysecret.owner`
 * binds `<name>` of `age.secrets.<name>.owner` to `mysecret`), as typed. Empty when none.
 */
export function placeholderBindings(raw: string, loc: readonly string[]): PlaceholderBinding[] {
  const typed = raw.trim().split(".");
  const lower = typed.map((t) => t.toLowerCase());
  let start = matchStart(lower, loc, true);
  if (start < 0) start = matchStart(lower, loc, false);
  const out: PlaceholderBinding[] = [];
  const upTo = start >= 0 ? Math.min(typed.length, loc.length - start) : isAncestor(lower, loc) ? loc.length : 0;
  const from = start >= 0 ? start : 0;
  for (let i = 0; i < upTo; i++) {
    const seg = loc[from + i]!;
    if (isPlaceholder(seg) && typed[i]) out.push({ index: from + i, placeholder: seg, value: typed[i]! });
  }
  return out;
}

/**
 * The name word `w` is the term `t` or an inflection of it (`click` → `clicking`, `package` →
 * `packages`). Only that way round: `scrolling` does not make every `scroll` option a match.
 */
function sameWord(t: string, w: string): boolean {
  if (w === t) return true;
  if (t.length < 4 || !w.startsWith(t)) return false;
  return w === `${t}s` || w === `${t}es` || markPrefix(w) === markPrefix(t);
}

/**
 * How well the option's name holds each query term: 1 for a whole word (or an inflection of
 * it, or a run of terms whose initials are a whole segment: `garbage collection` ↔ `gc`),
 * 0.5 for the start of a name word (`git` in `gitui`), 0 for absent.
 */
export function termCover(q: ParsedQuery, features: NameFeatures): number[] {
  const { words, segs } = features;
  const cover = q.terms.map((t) => (words.some((w) => sameWord(t, w)) ? 1 : words.some((w) => w.startsWith(t)) ? 0.5 : 0));
  for (const a of q.acronyms) {
    if (!segs.includes(a.initials)) continue;
    q.terms.forEach((t, i) => {
      if (a.terms.includes(t)) cover[i] = 1;
    });
  }
  return cover;
}

/** The option is a proper, declared prefix of the dotted query (placeholders accept any segment). */
export function isAncestor(querySegments: readonly string[], loc: readonly string[]): boolean {
  return loc.length < querySegments.length && loc.every((seg, i) => isPlaceholder(seg) || seg.toLowerCase() === querySegments[i]);
}

export function classify(q: ParsedQuery, c: Candidate, cover: readonly number[] = termCover(q, c.features ?? nameFeatures(c.loc))): SearchHit["match"] {
  const lower = c.name.toLowerCase();
  if (lower === q.lower) return "exact";
  if (q.dotted) {
    const segs = q.lower.split(".");
    if (matchesPath(segs, c.loc, true) || matchesPath(segs, c.loc, false)) return "prefix";
    if (isAncestor(segs, c.loc)) return "ancestor";
  }
  if (q.terms.length && cover.every((x) => x > 0)) return "name";
  return "text";
}

function relevance(bm25: number | null): number {
  if (bm25 === null) return 0;
  const r = Math.max(0, -bm25);
  return r / (r + 5);
}

export function score(q: ParsedQuery, c: Candidate): { score: number; match: SearchHit["match"] } {
  const features = c.features ?? nameFeatures(c.loc);
  const cover = termCover(q, features);
  const kind = classify(q, c, cover);
  const tier = TIER[kind];
  let within = 100 * relevance(c.bm25);
  if (kind === "text") {
    // Below the name tiers, options whose name holds more of the words come first (a word
    // matched whole counts 1, as a prefix of a name word 0.5: `git` in `gitui`); matching every
    // word somewhere (name, description, type, module) adds a little, and much more for a
    // module's `enable`, whose description then describes the module asked about.
    const coverage = cover.reduce((n, x) => n + x, 0);
    if (q.terms.length) within += (400 * coverage) / q.terms.length;
    // The description holds the words as typed, side by side ("Whether to enable trackpad tap
    // to click" for `tap to click`).
    if (c.phrase) within += PHRASE_BONUS;
    if (!c.anyOnly) {
      within += 30;
      // "Whether to enable the Dunst notification daemon." for `notification daemon`.
      if (features.parentWords) within += 150;
    }
    within += VECTOR_WEIGHT * Math.max(0, c.vector);
  } else {
    // Words matched whole (a segment, or a word of one: `gpg` in `gpg-agent`) beat prefixes.
    const whole = cover.filter((x) => x === 1).length;
    within += q.terms.length ? (300 * whole) / q.terms.length : 0;
    // The entry point of a module: `programs.git.enable` for `git`, `services.gpg-agent.enable`
    // for `gpg agent`, `services.nginx.enable` for `services.nginx`.
    // The `enable` of one `<name>` entry (`folders.<name>.enable`) is not a module's entry point.
    const parentWords = features.parentWords;
    if (parentWords && q.terms.length) {
      const rest = q.terms.filter((t) => t !== "enable");
      let entry = 0;
      if (rest.every((t) => parentWords.includes(t))) entry = 250;
      // A word typed part-way (`homebr`, `hyprlan`) points at the module it starts.
      else if (rest.every((t) => t.length >= 4 && parentWords.some((w) => w.startsWith(t)))) entry = 200;
      // Modules live under `programs.` and `services.` (nixvim's plugins under `plugins.`): those
      // entry points come before helper trees such as nixvim's `dependencies.<tool>.enable`.
      if (entry) within += entry + (ENTRY_ROOTS.get(c.loc[0]!) ?? 0);
    }
    if (q.dotted && c.name.toLowerCase().startsWith(q.lower)) within += 100;
    // …and more when the query ends on a segment boundary (`programs.git` → `programs.git.*`, not `programs.git-cliff.*`).
    if (q.dotted && c.name.toLowerCase().startsWith(`${q.lower}.`)) within += 100;
    // Whole segments beat words inside segments, and so does the start of a segment
    // (`autohid` → `…dock.autohide` before `…mouseAutohide`).
    const segs = features.segs;
    if (q.terms.length) {
      within += (100 * q.terms.filter((t) => segs.includes(t)).length) / q.terms.length;
      within += (60 * q.terms.filter((t) => segs.some((s) => s.startsWith(t))).length) / q.terms.length;
    }
    // The deepest declared ancestor is the most specific answer.
    if (kind === "ancestor") within += 40 * c.loc.length;
    // A name made of the words asked for beats one with more words besides them
    // (`home session variables` → `home.sessionVariables` before `home.sessionSearchVariables`).
    const { parts } = features;
    if (parts.length && q.terms.length) {
      const asked = parts.filter((p) => q.terms.some((t) => sameWord(t, p))).length;
      within += (PRECISION_WEIGHT * asked) / parts.length;
    }
  }
  within += Math.max(0, 120 - 10 * c.loc.length);
  within = Math.min(999, within);
  return { score: Math.round((tier * 1000 + within) * 1000) / 1000, match: kind };
}

const WORD = /[\p{L}\p{N}]+/gu;
const PIECES = /([\p{L}\p{N}]+)|([^\p{L}\p{N}]+)/gu;

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]!);
}

const SUFFIXES = ["ational", "ation", "ative", "ings", "ing", "ies", "ed", "es", "er", "ly", "s"];

/**
 * The part of a term that words must start with to be marked. The index stems with Porter, so
 * `declarative` also matches `declaration`; dropping a common suffix approximates that here.
 */
export function markPrefix(term: string): string {
  for (const suffix of SUFFIXES) {
    if (term.endsWith(suffix) && term.length - suffix.length >= 4) return term.slice(0, -suffix.length);
  }
  return term;
}

/**
 * An excerpt of the description around the first matched word, HTML-escaped, with every word
 * that a query term matches (by prefix, as the index does) wrapped in `<mark>`.
 */
export function snippet(description: string, terms: readonly string[], maxWords = 28): string {
  const tokens = description.replace(/\s+/g, " ").trim().split(" ").filter(Boolean);
  if (!tokens.length) return "";
  const prefixes = terms.map((t) => (t.length >= 2 ? markPrefix(t) : t));
  const matches = (word: string) => {
    const w = foldSegment(word);
    return prefixes.some((p) => (p.length >= 2 ? w.startsWith(p) : w === p));
  };
  const hits = (tok: string) => (tok.match(WORD) ?? []).some(matches);
  // Only the matched words are marked, not the punctuation around them (`<https://github.com/…>`).
  const render = (tok: string) =>
    tok.replace(PIECES, (_, word: string | undefined, other: string | undefined) =>
      word !== undefined ? (matches(word) ? `<mark>${word}</mark>` : word) : escapeHtml(other ?? ""),
    );
  const first = tokens.findIndex(hits);
  const start = first <= 6 ? 0 : first - 6;
  const slice = tokens.slice(start, start + maxWords);
  return (start > 0 ? "… " : "") + slice.map(render).join(" ") + (start + maxWords < tokens.length ? " …" : "");
}

export function compareHits(a: SearchHit, b: SearchHit): number {
  return b.score - a.score || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) || (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0);
}

/** Merge ranked lists from shards into one stable order. */
export function mergeRanked(lists: readonly SearchHit[][]): SearchHit[] {
  return lists.flat().sort(compareHits);
}

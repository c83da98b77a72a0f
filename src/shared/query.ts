/**
 * Turning a user's search string into a safe FTS5 query. User text never reaches MATCH as
 * syntax: it is cut into runs of letters and digits (so `"`, `*`, `^`, `:`, `(`, `NEAR`, `-`
 * and `.` are separators, not operators), and each word becomes a quoted term. Words of two or
 * more characters are prefix terms, served by the `prefix='2 3'` index.
 * @module
 */
import { ApiError } from "./errors.ts";
import { LIMITS } from "./limits.ts";
import { foldSegment, textWords } from "./tokenize.ts";

export interface ParsedQuery {
  /** The query as typed, trimmed. */
  raw: string;
  /** Lower-cased, for exact and prefix comparison with option names. */
  lower: string;
  /** Distinct words, folded. Empty for a query of punctuation only (e.g. `*`, `.`). */
  terms: string[];
  /** Dotted path typed as such (`services.nginx`, `progra.`): no whitespace, has a dot. */
  dotted: boolean;
  /** Every word in the order typed, glue words included: the phrase a description may hold. */
  words: string[];
  /**
   * Runs of two or three long terms whose initials may be a name segment: `garbage collection`
   * → `gc` (`nix.gc.automatic`).
   */
  acronyms: Acronym[];
}

export interface Acronym {
  initials: string;
  terms: string[];
}

/** Words shorter than this do not make acronyms (`set up` is not `su`). */
const ACRONYM_MIN_WORD = 4;

function acronymsOf(terms: readonly string[]): Acronym[] {
  const out: Acronym[] = [];
  for (let len = 2; len <= 3; len++) {
    for (let i = 0; i + len <= terms.length; i++) {
      const run = terms.slice(i, i + len);
      if (run.every((t) => t.length >= ACRONYM_MIN_WORD && /^\p{L}/u.test(t))) out.push({ initials: run.map((t) => t[0]).join(""), terms: run });
    }
  }
  return out;
}

const STOP_WORDS = new Set(["a", "an", "the", "to", "for", "of", "in", "on", "with", "my", "me", "i", "and", "or", "after", "across", "by", "from", "at", "is", "be", "it", "how", "do", "when", "into"]);

export function parseQuery(q: string | undefined): ParsedQuery {
  const raw = (q ?? "").trim();
  if (!raw) throw new ApiError(400, "query_empty", "the search query `q` is empty");
  if ([...raw].length > LIMITS.maxQueryLength) {
    throw new ApiError(400, "query_too_long", `the search query is longer than ${LIMITS.maxQueryLength} characters`);
  }
  const typed = textWords(raw);
  const words = [...new Set(typed)];
  if (words.length > LIMITS.maxQueryTerms) {
    throw new ApiError(400, "query_too_long", `the search query has more than ${LIMITS.maxQueryTerms} words`);
  }
  // In a sentence (`install packages for my user`) the glue words would have to match too;
  // they are dropped while at least two other words remain.
  const content = words.filter((w) => !STOP_WORDS.has(w));
  const terms = content.length >= 2 ? content : words;
  const dotted = !/\s/.test(raw) && raw.includes(".");
  return { raw, lower: raw.toLowerCase(), terms, dotted, words: typed, acronyms: dotted ? [] : acronymsOf(terms) };
}

function quote(term: string): string {
  return `"${term.replaceAll('"', '""')}"`;
}

function ftsTerm(term: string): string {
  return term.length >= 2 ? `${quote(term)}*` : quote(term);
}

/** Every word must match (implicit AND), anywhere or only in `column`. */
export function ftsAll(terms: readonly string[], column?: string): string {
  const body = terms.map(ftsTerm).join(" ");
  return column ? `${column} : (${body})` : body;
}

/** Any word may match: the recall fallback when the other sources find too little. */
export function ftsAny(terms: readonly string[]): string {
  return terms.map(ftsTerm).join(" OR ");
}

/** The typed words as one FTS5 phrase (adjacent, in order). */
export function ftsPhrase(words: readonly string[]): string {
  return quote(words.join(" "));
}

/** Names holding an acronym's initials as a word and every other term (`name : ("gc" "automatic"*)`). */
export function ftsAcronym(terms: readonly string[], acronym: Acronym): string {
  const rest = terms.filter((t) => !acronym.terms.includes(t));
  return `name : (${[quote(acronym.initials), ...rest.map(ftsTerm)].join(" ")})`;
}

/** The query text with each word that `corrections` maps replaced (`synctihng` → `syncthing`). */
export function correctQuery(raw: string, corrections: ReadonlyMap<string, string>): string {
  return raw.replace(/[\p{L}\p{N}]+/gu, (run) => corrections.get(foldSegment(run)) ?? run);
}

/**
 * Typo tolerance on option-name words. FTS5 has no fuzzy matching, so each shard keeps the
 * vocabulary of its name words (segments, camelCase words, whole segments) with a trigram index;
 * a query word that occurs nowhere is replaced by the nearest vocabulary words (edit distance with
 * transpositions, 1 for short words and 2 for long ones). Fuzzy matching is a weak fallback: it
 * runs only for words that match nothing as typed.
 * @module
 */

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions), capped at `max + 1`. */
export function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prevPrev: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prevPrev[j - 2]! + 1);
      cur.push(d);
      rowMin = Math.min(rowMin, d);
    }
    if (rowMin > max) return max + 1;
    prevPrev = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

/** How many edits a word of this length may need: none under 4 letters, 1 up to 7, else 2. */
export function allowedEdits(word: string): number {
  return word.length < 4 ? 0 : word.length < 8 ? 1 : 2;
}

function trigrams(word: string): string[] {
  const padded = `^${word}$`;
  const out: string[] = [];
  for (let i = 0; i + 3 <= padded.length; i++) out.push(padded.slice(i, i + 3));
  return out;
}

export interface Correction {
  word: string;
  distance: number;
}

export class NameVocabulary {
  readonly #words: string[];
  readonly #counts: Map<string, number>;
  readonly #byTrigram = new Map<string, number[]>();

  /** `words`: every name word of the shard, repeated as often as options carry it. */
  constructor(words: Iterable<string>) {
    this.#counts = new Map();
    for (const w of words) this.#counts.set(w, (this.#counts.get(w) ?? 0) + 1);
    this.#words = [...this.#counts.keys()].sort();
    this.#words.forEach((w, i) => {
      for (const t of new Set(trigrams(w))) {
        let list = this.#byTrigram.get(t);
        if (!list) this.#byTrigram.set(t, (list = []));
        list.push(i);
      }
    });
  }

  get size(): number {
    return this.#words.length;
  }

  /** Is some word of the vocabulary `prefix` or longer words starting with it? */
  hasPrefix(prefix: string): boolean {
    let lo = 0;
    let hi = this.#words.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#words[mid]! < prefix) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.#words.length && this.#words[lo]!.startsWith(prefix);
  }

  /**
   * The nearest words to `term` within its allowed edits, best first (fewest edits, then the most
   * frequent word, then alphabetical). Candidates must share a trigram with the term.
   */
  corrections(term: string, limit = 2): Correction[] {
    const max = allowedEdits(term);
    if (max === 0) return [];
    const seen = new Set<number>();
    const found: Correction[] = [];
    for (const t of trigrams(term)) {
      for (const i of this.#byTrigram.get(t) ?? []) {
        if (seen.has(i)) continue;
        seen.add(i);
        const word = this.#words[i]!;
        const distance = editDistance(term, word, max);
        if (distance <= max) found.push({ word, distance });
      }
    }
    return found
      .sort((a, b) => a.distance - b.distance || (this.#counts.get(b.word) ?? 0) - (this.#counts.get(a.word) ?? 0) || (a.word < b.word ? -1 : 1))
      .slice(0, limit);
  }
}

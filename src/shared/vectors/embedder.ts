/**
 * What an embedder is, and the text an option is embedded from. Every embedder (Workers AI, the
 * local hashed one) sees the same text, so their vectors describe the same thing: the option's
 * name words, its type and the start of its description with the Markdown markup removed.
 * @module
 */
import { nameWords } from "../tokenize.ts";
import type { OptionRecord } from "../types.ts";

/** Turns texts into fixed-length vectors; compared with cosine similarity. */
export interface Embedder {
  /**
   * Names the vector space: vectors of two embedders are comparable only when their ids are
   * equal (model, dimensions and any fitted statistics are part of it).
   */
  readonly id: string;
  readonly dimensions: number;
  /** One vector per text, in order. */
  embed(texts: string[]): Promise<Float32Array[]>;
}

/** The fields of an option its embedding text is made from. */
export type EmbeddableOption = Pick<OptionRecord, "loc" | "type" | "description">;

/**
 * Description characters kept. Embedding models read a limited window (bge: 512 tokens), and the
 * first sentences of an option description say what it is; long tails are examples and caveats.
 */
export const MAX_DESCRIPTION_CHARS = 600;

/** The text NixOS substitutes where an option has no description: it describes nothing. */
const NO_DESCRIPTION = "This option has no description.";

/**
 * Plain text of a description in Nixpkgs' Markdown dialect: roles (``{option}`x` `` → `x`),
 * inline code and fences, links (`[text](url)` → `text`, `[](#opt-a.b)` → `a.b`), admonition
 * fences (`::: {.note}`), heading anchors (`{#id}`), emphasis and heading marks; whitespace is
 * collapsed. Identifiers keep their underscores.
 */
export function descriptionText(markdown: string): string {
  if (markdown.trim() === NO_DESCRIPTION) return "";
  return markdown
    .replace(/\{[A-Za-z][\w-]*\}`([^`]*)`/g, "$1")
    .replace(/^\s*(`{3,}|~{3,}).*$/gm, " ")
    .replace(/`([^`]*)`/g, "$1")
    .replace(/!?\[([^\]]*)\]\(([^)\s]*)[^)]*\)/g, (_m, text: string, target: string) =>
      text.trim() !== "" ? text : target.startsWith("#opt-") ? target.slice(5) : target.replace(/^#/, ""),
    )
    .replace(/^\s*:::.*$/gm, " ")
    .replace(/\{#[^}]*\}/g, " ")
    .replace(/^\s{0,3}#{1,6}\s+/gm, "")
    .replace(/\*\*(?=\S)([^*]*?\S)\*\*/g, "$1")
    .replace(/\*(?=\S)([^*]*?\S)\*/g, "$1")
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * `text` cut to at most `max` characters: at the last sentence end in the second half of the
 * window, else at the last space, else hard.
 */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  const window = text.slice(0, max + 1);
  const sentence = Math.max(window.lastIndexOf(". "), window.lastIndexOf(".\n"));
  if (sentence >= max / 2) return window.slice(0, sentence + 1);
  const space = window.lastIndexOf(" ");
  return (space > 0 ? window.slice(0, space) : window.slice(0, max)).trimEnd();
}

/**
 * The text an option is embedded from: `name words (type): description`, e.g.
 * `programs git signing key (null or string): The default signing key fingerprint. …`. Name words
 * come from `nameWords(loc)` (segments, camelCase parts and whole segments, placeholders left
 * out), as the keyword index has them.
 */
export function optionEmbeddingText(option: EmbeddableOption, maxDescriptionChars = MAX_DESCRIPTION_CHARS): string {
  const head = `${nameWords(option.loc).join(" ")} (${option.type})`;
  const description = truncateText(descriptionText(option.description), maxDescriptionChars);
  return description === "" ? head : `${head}: ${description}`;
}

/** Normalized records shared by the edge, the objects and the CLI. @module */

/** A default or example as `nixosOptionsDoc` renders it. */
export interface Literal {
  /** `expression`: Nix code (`literalExpression`); `markdown`: prose (`literalMD`); `value`: a plain JSON value. */
  kind: "expression" | "markdown" | "value";
  text: string;
}

export interface Declaration {
  path: string;
  url?: string;
  line?: number;
}

export interface OptionRecord {
  /** Display name, `lib.showOption loc`. */
  name: string;
  loc: string[];
  type: string;
  description: string;
  default?: Literal;
  example?: Literal;
  readOnly: boolean;
  declarations: Declaration[];
  relatedPackages?: string;
  /** Fields of the input this version does not model (kept, never fatal). */
  extra?: Record<string, unknown>;
}

export interface ModuleRecord {
  /** Module file (or directory) relative to the collection's source root. */
  path: string;
  name: string;
  description: string;
  imports: string[];
  meta: Record<string, unknown>;
  /** Sorted by name. */
  options: OptionRecord[];
}

export type IngestMode = "merge" | "replace";

export interface IngestRequest {
  modules: ModuleRecord[];
  mode: IngestMode;
  /** Groups the batches of one multi-request `replace` import. */
  importId?: string;
  /** For `replace`: this is the last batch of the import, so sweep what it did not carry. */
  final: boolean;
}

export interface OptionChange {
  name: string;
  fields: string[];
}

export interface ChangeList {
  added: string[];
  removed: string[];
  changed: OptionChange[];
  /** Module-level fields that changed (`description`, `imports`, `meta`, `name`). */
  module: string[];
  /** Options that left this module for another one (also listed in `removed`). */
  moved?: { name: string; to: string }[];
  /** Set when the version records the module's removal (or return). */
  deleted?: boolean;
  restored?: boolean;
}

export interface IngestSummary {
  namespace: string;
  modules: { added: number; changed: number; unchanged: number; removed: number };
  options: { added: number; changed: number; removed: number };
  versionsCreated: number;
}

export interface ShardCounts {
  namespace: string;
  modules: number;
  options: number;
  versions: number;
  updatedAt: number | null;
}

export interface PlaceholderBinding {
  /** Index of the placeholder segment in the option's `loc`. */
  index: number;
  placeholder: string;
  value: string;
}

export interface SearchHit {
  namespace: string;
  name: string;
  loc: string[];
  module: string;
  type: string;
  /** Description excerpt, HTML-escaped, matched words wrapped in `<mark>`. */
  snippet: string;
  score: number;
  /**
   * How the name matched: `exact`; `prefix` (the dotted query matches a run of its segments,
   * placeholders accepting concrete names); `ancestor` (the option is a declared prefix of the
   * dotted query, e.g. a freeform `nix.settings` for `nix.settings.download-buffer-size`);
   * `name` (every word in the name) or `text`.
   */
  match: "exact" | "prefix" | "ancestor" | "name" | "text";
  /** For `ancestor` matches: the query's segments below the option (`["download-buffer-size"]`). */
  rest?: string[];
  /**
   * For dotted queries through placeholders: which concrete name filled which placeholder
   * (`age.secrets.mysecret.owner` → `[{ index: 2, placeholder: "<name>", value: "mysecret" }]`).
   */
  bindings?: PlaceholderBinding[];
  /** Found only after correcting a typo in the query (see the response's `corrections`). */
  fuzzy?: true;
  /** With `boost=usage`: hosts now using the hit's module (its score includes the usage bonus). */
  usageHosts?: number;
}

export interface ShardSearchResult {
  namespace: string;
  hits: SearchHit[];
  total: number;
  /** Query words that matched nothing, with the name word they were read as. */
  corrections?: Record<string, string>;
  /** Query words (of four or more letters) this namespace knows in no name and no description. */
  unknownWords?: string[];
  /**
   * Asked with vectors `"deferred"`: this query would use the nearest options by embedding here
   * (no name holds every word and few options match); ask again with them.
   */
  needsVectors?: true;
}

/**
 * What a shard uses for the vector side of a search: nothing given (its own embedded index),
 * the nearest options by name with their similarity (from Vectorize), or `"deferred"` (the
 * coordinator is still asking Vectorize: rank lexically and say whether vectors would be used).
 */
export type ShardVectorInput = Record<string, number> | "deferred" | undefined;

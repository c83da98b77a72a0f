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
}

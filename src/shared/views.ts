/** Response shapes of the read API. @module */
import type { ChangeList, Declaration, Literal } from "./types.ts";

export interface OptionView {
  namespace: string;
  name: string;
  loc: string[];
  module: string;
  type: string;
  description: string;
  default: Literal | null;
  example: Literal | null;
  readOnly: boolean;
  declarations: Declaration[];
  relatedPackages: string | null;
  extra: Record<string, unknown> | null;
  updatedAt: number;
}

export interface ModuleSummary {
  path: string;
  name: string;
  description: string;
  version: number;
  contentHash: string;
  optionCount: number;
  createdAt: number;
  updatedAt: number;
  deletedAt: number | null;
}

export interface ModuleView extends ModuleSummary {
  namespace: string;
  meta: Record<string, unknown>;
  imports: string[];
  importedBy: string[];
  options: OptionView[];
}

export interface VersionView {
  version: number;
  contentHash: string | null;
  createdAt: number;
  changes: ChangeList;
}

export interface FieldChange {
  before: unknown;
  after: unknown;
}

export interface DiffView {
  namespace: string;
  module: string;
  from: number;
  to: number;
  changes: ChangeList;
  /** For each changed option, the changed fields' values before and after. */
  details: Record<string, Record<string, FieldChange>>;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

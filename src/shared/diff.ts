/** Change lists between two snapshots of a module. @module */
import { canonicalJson } from "./canonical.ts";
import type { ChangeList, ModuleRecord, OptionRecord } from "./types.ts";

const OPTION_FIELDS = ["loc", "type", "description", "default", "example", "readOnly", "declarations", "relatedPackages", "extra"] as const;
const MODULE_FIELDS = ["name", "description", "imports", "meta"] as const;

export function optionFieldChanges(before: OptionRecord, after: OptionRecord): string[] {
  return OPTION_FIELDS.filter((f) => canonicalJson(before[f]) !== canonicalJson(after[f]));
}

/** What changed from `before` (null: the module is new) to `after` (null: it was removed). */
export function diffModules(before: ModuleRecord | null, after: ModuleRecord | null): ChangeList {
  const prev = new Map((before?.options ?? []).map((o) => [o.name, o]));
  const next = new Map((after?.options ?? []).map((o) => [o.name, o]));
  const changes: ChangeList = { added: [], removed: [], changed: [], module: [] };
  for (const [name, o] of next) {
    const old = prev.get(name);
    if (!old) changes.added.push(name);
    else {
      const fields = optionFieldChanges(old, o);
      if (fields.length) changes.changed.push({ name, fields });
    }
  }
  for (const name of prev.keys()) if (!next.has(name)) changes.removed.push(name);
  if (before && after) {
    changes.module = MODULE_FIELDS.filter((f) => canonicalJson(before[f]) !== canonicalJson(after[f]));
  }
  changes.added.sort();
  changes.removed.sort();
  changes.changed.sort((a, b) => (a.name < b.name ? -1 : 1));
  return changes;
}

/**
 * Grouping a flat `options.json` into module records. An option belongs to the first file that
 * declares it. Options of inline submodules carry no declaration; they belong to the module of
 * their nearest declared ancestor (`programs.foo.settings.<name>.x` → the file declaring
 * `programs.foo.settings`), and only failing that to the `<inline>` module.
 * @module
 */
import { locKey } from "./optionName.ts";
import { moduleNameFromPath, sortOptions } from "./schemas.ts";
import type { ModuleRecord, OptionRecord } from "./types.ts";

export const INLINE_MODULE = "<inline>";

export function groupIntoModules(options: OptionRecord[]): ModuleRecord[] {
  const ownerByLoc = new Map<string, string>();
  for (const o of options) {
    const first = o.declarations[0];
    if (first) ownerByLoc.set(locKey(o.loc), first.path);
  }
  const byPath = new Map<string, OptionRecord[]>();
  for (const o of options) {
    let owner = o.declarations[0]?.path;
    for (let n = o.loc.length - 1; !owner && n > 0; n--) owner = ownerByLoc.get(locKey(o.loc.slice(0, n)));
    owner ??= INLINE_MODULE;
    let list = byPath.get(owner);
    if (!list) byPath.set(owner, (list = []));
    list.push(o);
  }
  return [...byPath.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, opts]) => ({
      path,
      name: moduleNameFromPath(path),
      description: "",
      imports: [],
      meta: {},
      options: sortOptions(opts),
    }));
}

/**
 * Which namespaces exist, asked of the coordinator's registry before a read reaches a shard, so
 * a request for an unknown namespace is a 404 that creates no object. Known names are cached per
 * isolate (they are only ever added); unknown ones are always re-checked.
 * @module
 */
import { ApiError } from "../shared/errors.ts";
import { coordinator } from "./stubs.ts";

const known = new Set<string>();

/** Which of `names` exist, asking the coordinator at most once (for the names not cached). */
export async function knownNamespaces(env: Env, names: Iterable<string>): Promise<Set<string>> {
  const wanted = new Set(names);
  if ([...wanted].every((n) => known.has(n))) return wanted;
  for (const entry of await coordinator(env).listNamespaces()) known.add(entry.namespace);
  return new Set([...wanted].filter((n) => known.has(n)));
}

export async function requireNamespace(env: Env, namespace: string): Promise<void> {
  if (known.has(namespace)) return;
  if (await coordinator(env).hasNamespace(namespace)) {
    known.add(namespace);
    return;
  }
  throw new ApiError(404, "namespace_not_found", `namespace ${namespace} does not exist`);
}

/**
 * Which namespaces exist, asked of the coordinator's registry before a read reaches a shard, so
 * a request for an unknown namespace is a 404 that creates no object. Known names are cached per
 * isolate (they are only ever added); unknown ones are always re-checked.
 * @module
 */
import { ApiError } from "../shared/errors.ts";
import { coordinator } from "./stubs.ts";

const known = new Set<string>();

export async function requireNamespace(env: Env, namespace: string): Promise<void> {
  if (known.has(namespace)) return;
  if (await coordinator(env).hasNamespace(namespace)) {
    known.add(namespace);
    return;
  }
  throw new ApiError(404, "namespace_not_found", `namespace ${namespace} does not exist`);
}

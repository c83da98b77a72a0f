/**
 * Which namespaces exist, asked of the coordinator's registry before a read reaches a shard, so
 * a request for an unknown namespace is a 404 that creates no object. Known names are cached per
 * isolate (they are only ever added); unknown ones are always re-checked.
 * @module
 */
import { ApiError } from "../shared/errors.ts";
import { coordinator } from "./stubs.ts";

const known = new Set<string>();

/** Names found missing, with when: telemetry re-asks about them at most once a minute per isolate. */
const missing = new Map<string, number>();
const MISSING_RECHECK_MS = 60_000;

/**
 * Which of `names` exist, asking the coordinator at most once per call. Telemetry calls this on
 * every report, and hosts keep naming collections the service does not hold: those are re-checked
 * once a minute, not on every report (a namespace added meanwhile counts from the next check).
 */
export async function knownNamespaces(env: Env, names: Iterable<string>): Promise<Set<string>> {
  const wanted = new Set(names);
  const now = Date.now();
  const ask = [...wanted].some((n) => !known.has(n) && !((missing.get(n) ?? -Infinity) > now - MISSING_RECHECK_MS));
  if (ask) {
    for (const entry of await coordinator(env).listNamespaces()) known.add(entry.namespace);
    if (missing.size > 10_000) missing.clear(); // bounded: names come from clients
    for (const n of wanted) if (!known.has(n)) missing.set(n, now);
  }
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

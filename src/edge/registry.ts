/**
 * Which namespaces exist, asked of the coordinator's registry before a read reaches a shard, so
 * a request for an unknown namespace is a 404 that creates no object. Known names are cached per
 * isolate for a short while only: previews are deleted when they expire, and a shard answering
 * `namespace_not_found` drops its name at once (see {@link unwrapShard}). Unknown names are
 * always re-checked for reads.
 * @module
 */
import { ApiError, unwrap, type RpcResult } from "../shared/errors.ts";
import { coordinator } from "./stubs.ts";

/** Known names, with when they were last confirmed. */
const known = new Map<string, number>();
/** How long a confirmed name is trusted without asking again (a deleted preview passes at most this long). */
const KNOWN_TTL_MS = 30_000;

/** Names found missing, with when: telemetry re-asks about them at most once a minute per isolate. */
const missing = new Map<string, number>();
const MISSING_RECHECK_MS = 60_000;

function isKnown(name: string, now: number): boolean {
  return (known.get(name) ?? -Infinity) > now - KNOWN_TTL_MS;
}

/** Forget a name (its shard says it does not exist: a deleted preview). */
export function forgetNamespace(name: string): void {
  known.delete(name);
}

/**
 * Which of `names` exist, asking the coordinator at most once per call. Telemetry calls this on
 * every report, and hosts keep naming collections the service does not hold: those are re-checked
 * once a minute, not on every report (a namespace added meanwhile counts from the next check).
 */
export async function knownNamespaces(env: Env, names: Iterable<string>): Promise<Set<string>> {
  const wanted = new Set(names);
  const now = Date.now();
  const ask = [...wanted].some((n) => !isKnown(n, now) && !((missing.get(n) ?? -Infinity) > now - MISSING_RECHECK_MS));
  if (ask) {
    known.clear(); // the listing is the whole truth: names it lacks were deleted
    for (const entry of await coordinator(env).listNamespaces("all")) known.set(entry.namespace, now);
    if (missing.size > 10_000) missing.clear(); // bounded: names come from clients
    for (const n of wanted) if (!known.has(n)) missing.set(n, now);
  }
  return new Set([...wanted].filter((n) => isKnown(n, now)));
}

export async function requireNamespace(env: Env, namespace: string): Promise<void> {
  const now = Date.now();
  if (isKnown(namespace, now)) return;
  if (await coordinator(env).hasNamespace(namespace)) {
    if (known.size > 10_000) known.clear(); // bounded; only registered names get here
    known.set(namespace, now);
    return;
  }
  known.delete(namespace);
  throw new ApiError(404, "namespace_not_found", `namespace ${namespace} does not exist`);
}

/** `unwrap` for a shard's answer: a `namespace_not_found` also drops the name from the cache. */
export function unwrapShard<T>(namespace: string, result: RpcResult<T>): T {
  if (!result.ok && result.error.code === "namespace_not_found") forgetNamespace(namespace);
  return unwrap(result);
}

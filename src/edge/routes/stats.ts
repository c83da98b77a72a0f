/** `/api/v1/stats`: totals over the namespace registry, and the most used modules. @module */
import { Hono } from "hono";
import { ApiError } from "../../shared/errors.ts";
import { LIMITS } from "../../shared/limits.ts";
import { namespaceName } from "../../shared/schemas.ts";
import { MAX_TOP_MODULES } from "../../shared/telemetry.ts";
import { z } from "../../shared/zod.ts";
import type { AppEnv } from "../env.ts";
import { requireNamespace, unwrapShard } from "../registry.ts";
import type { TopModule } from "../../objects/UsageAggregate.ts";
import { coordinator, shard, usageAggregate } from "../stubs.ts";
import { noQuery, parseOr400 } from "../validate.ts";

export const stats = new Hono<AppEnv>();

stats.get("/", async (c) => {
  noQuery(c.req.query());
  const items = await coordinator(c.env).listNamespaces();
  const sum = (k: "modules" | "options" | "versions") => items.reduce((n, i) => n + i[k], 0);
  return c.json({
    namespaces: items.length,
    modules: sum("modules"),
    options: sum("options"),
    versions: sum("versions"),
    updatedAt: items.reduce<number | null>((m, i) => (i.updatedAt !== null && (m === null || i.updatedAt > m) ? i.updatedAt : m), null),
    byNamespace: items,
  });
});

const usageQuery = z.strictObject({
  namespace: namespaceName.optional(),
  limit: z.coerce.number().int().min(1).max(LIMITS.maxPageSize).default(LIMITS.defaultPageSize),
});

/** Counted modules the namespace lacks are skipped; this many more than a page are asked for to make up for them. */
const TOP_MODULES_SLACK = 20;

/**
 * The namespace's most used modules that it has (hosts may report any path): one aggregate read
 * and one shard query. A namespace deleted meanwhile is a 404 when it was asked for by name, else
 * it has no modules.
 */
async function existingTopModules(env: Env, ns: string, limit: number, named: boolean): Promise<TopModule[]> {
  const top = await usageAggregate(env, ns).topModules(ns, Math.min(limit + TOP_MODULES_SLACK, MAX_TOP_MODULES));
  if (!top.length && !named) return []; // a namespace asked for by name is checked even so
  let exists: Set<string>;
  try {
    exists = new Set(unwrapShard(ns, await shard(env, ns).existingModules(ns, top.map((t) => t.module))));
  } catch (err) {
    if (!named && err instanceof ApiError && err.code === "namespace_not_found") return [];
    throw err;
  }
  return top.filter((t) => exists.has(t.module)).slice(0, limit);
}

/** Top modules by hosts using them now: of one namespace, or over all (each namespace's top, merged). */
stats.get("/usage", async (c) => {
  const q = parseOr400(usageQuery, c.req.query(), "query");
  let namespaces: string[];
  if (q.namespace) {
    await requireNamespace(c.env, q.namespace);
    namespaces = [q.namespace];
  } else {
    namespaces = (await coordinator(c.env).listNamespaces()).map((n) => n.namespace);
  }
  const lists = await Promise.all(namespaces.map((ns) => existingTopModules(c.env, ns, q.limit, q.namespace === ns)));
  const items = lists
    .flat()
    .sort((a, b) => b.hosts - a.hosts || (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.module < b.module ? -1 : a.module > b.module ? 1 : 0))
    .slice(0, q.limit);
  return c.json({ namespace: q.namespace ?? null, items });
});

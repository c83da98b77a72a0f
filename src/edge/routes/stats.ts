/** `/api/v1/stats`: totals over the namespace registry, and the most used modules. @module */
import { Hono } from "hono";
import { LIMITS } from "../../shared/limits.ts";
import { namespaceName } from "../../shared/schemas.ts";
import { z } from "../../shared/zod.ts";
import type { AppEnv } from "../env.ts";
import { requireNamespace } from "../registry.ts";
import { coordinator, usageAggregate } from "../stubs.ts";
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
  const lists = await Promise.all(namespaces.map((ns) => usageAggregate(c.env, ns).topModules(ns, q.limit)));
  const items = lists
    .flat()
    .sort((a, b) => b.hosts - a.hosts || (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.module < b.module ? -1 : a.module > b.module ? 1 : 0))
    .slice(0, q.limit);
  return c.json({ namespace: q.namespace ?? null, items });
});

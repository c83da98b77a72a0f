/** `/api/v1/stats`: totals over the namespace registry. @module */
import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { coordinator } from "../stubs.ts";
import { noQuery } from "../validate.ts";

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

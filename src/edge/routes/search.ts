/** `/api/v1/search`: fan-out search through the coordinator. @module */
import { Hono } from "hono";
import { unwrap } from "../../shared/errors.ts";
import { LIMITS } from "../../shared/limits.ts";
import { parseQuery } from "../../shared/query.ts";
import { namespaceName } from "../../shared/schemas.ts";
import { z } from "../../shared/zod.ts";
import type { AppEnv } from "../env.ts";
import { coordinator } from "../stubs.ts";
import { parseOr400 } from "../validate.ts";

const searchQuery = z.strictObject({
  // Length and word limits are parseQuery's, so every over-long query gets the same query_too_long.
  q: z.string().default(""),
  namespace: z
    .string()
    .max(2048)
    .optional()
    .transform((v) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : []))
    .pipe(z.array(namespaceName).max(64)),
  limit: z.coerce.number().int().min(1).max(LIMITS.maxPageSize).default(LIMITS.defaultPageSize),
  cursor: z.string().max(2048).optional(),
  /** `usage`: hosts using a hit's module add a small bonus within its match tier (src/shared/usageBoost.ts). */
  boost: z.enum(["usage"]).optional(),
});

export const search = new Hono<AppEnv>();

search.get("/", async (c) => {
  // `namespace` may be repeated (`?namespace=a&namespace=b`) or comma-separated (`?namespace=a,b`).
  const namespaces = c.req.queries("namespace");
  const query = { ...c.req.query(), ...(namespaces && namespaces.length > 1 ? { namespace: namespaces.join(",") } : {}) };
  const q = parseOr400(searchQuery, query, "query");
  parseQuery(q.q); // rejects empty and over-long queries with a 400 before any object is asked
  return c.json(unwrap(await coordinator(c.env).search({ q: q.q, namespaces: q.namespace, limit: q.limit, cursor: q.cursor, boost: q.boost })));
});

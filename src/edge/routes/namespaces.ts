/** `/api/v1/namespaces`: listing, ingest, modules, versions, diffs and options. @module */
import { Hono } from "hono";
import { ApiError, unwrap } from "../../shared/errors.ts";
import { groupIntoModules } from "../../shared/group.ts";
import { LIMITS } from "../../shared/limits.ts";
import { optionPatch } from "../../shared/edit.ts";
import { ingestQuery, isPreviewNamespace, modulePath, namespaceName, UNSAFE_NAME_CHARS, normalizeModules, normalizeOptionsJson } from "../../shared/schemas.ts";
import type { ModuleRecord } from "../../shared/types.ts";
import { z } from "../../shared/zod.ts";
import type { AppEnv } from "../env.ts";
import { audited } from "../middleware/audit.ts";
import { namespaceParam, requireEditor, requireRole } from "../middleware/auth.ts";
import { limitBody, readJson } from "../middleware/body.ts";
import { requireNamespace, unwrapShard } from "../registry.ts";
import { coordinator, shard, usageAggregate } from "../stubs.ts";
import { namespaceTail, noQuery, parseOr400 } from "../validate.ts";

const nsParam = z.object({ ns: namespaceName });
const pageQuery = z.strictObject({
  cursor: z.string().max(2048).optional(),
  limit: z.coerce.number().int().min(1).max(LIMITS.maxPageSize).default(50),
  includeDeleted: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),
});
const versionNumber = z.string({ error: "a version number is required" }).regex(/^\d{1,9}$/, "a version number is a whole number").transform(Number);
const diffQuery = z.strictObject({ from: versionNumber, to: versionNumber });
/** A module path in a URL follows the ingest rules, so `..`, absolute paths and control characters are 400s. */
const modulePathParam = z.object({ path: modulePath });
/** Option names are looked up as given; the bound only keeps hostile lengths away from the shard. */
const optionNameParam = z.object({
  name: z
    .string()
    .min(1, "the option name is missing")
    .max(LIMITS.maxPathLength * 4, "the option name is too long")
    .refine((n) => !UNSAFE_NAME_CHARS.test(n), "the option name must not contain control or bidirectional formatting characters"),
});
const usageQuery = z.strictObject({ days: z.coerce.number().int().min(1).max(LIMITS.maxUsageDays).default(30) });

/**
 * A body with a top-level `modules` key is a batch of module records (validated as such, so a
 * mistyped batch is a 400, not an option named `modules`); anything else is an options.json.
 */
function looksLikeModuleBatch(body: unknown): boolean {
  return !!body && typeof body === "object" && !Array.isArray(body) && Object.hasOwn(body, "modules");
}

export const namespaces = new Hono<AppEnv>();

const listQuery = z.strictObject({ kind: z.enum(["standard", "preview", "all"]).default("standard") });

/** Standard namespaces by default; `?kind=preview` lists the preview namespaces, `?kind=all` both. */
namespaces.get("/", async (c) => {
  const { kind } = parseOr400(listQuery, c.req.query(), "query");
  const items = await coordinator(c.env).listNamespaces(kind);
  return c.json({ items });
});

namespaces.get("/:ns", async (c) => {
  const { ns } = parseOr400(nsParam, c.req.param(), "path");
  noQuery(c.req.query());
  await requireNamespace(c.env, ns);
  const [counts, entries] = await Promise.all([shard(c.env, ns).counts(ns), coordinator(c.env).listNamespaces("all")]);
  const entry = entries.find((e) => e.namespace === ns);
  return c.json({ ...unwrapShard(ns, counts), preview: isPreviewNamespace(ns), expiresAt: entry?.expiresAt ?? null });
});

// Audited first, so refused attempts are recorded too; authorized before the body is read.
const auditIngest = audited("ingest", (c) => ({ namespace: c.req.param("ns"), target: c.req.query("importId") }));

namespaces.post("/:ns/modules/batch", auditIngest, requireRole("write", namespaceParam), limitBody(), async (c) => {
  const { ns } = parseOr400(nsParam, c.req.param(), "path");
  const query = parseOr400(ingestQuery, c.req.query(), "query");
  const body = await readJson(c);
  const format = query.format ?? (looksLikeModuleBatch(body) ? "modules" : "options-json");
  let modules: ModuleRecord[];
  if (format === "modules") {
    const result = normalizeModules(body);
    if ("issues" in result) throw new ApiError(400, "validation_failed", "the batch has invalid records; nothing was written", { issues: result.issues });
    modules = result.modules;
  } else {
    const result = normalizeOptionsJson(body);
    if ("issues" in result) throw new ApiError(400, "validation_failed", "the options.json has invalid entries; nothing was written", { issues: result.issues });
    modules = groupIntoModules(result.options);
    if (modules.length > LIMITS.maxModulesPerBatch) {
      throw new ApiError(400, "validation_failed", "the options.json has too many modules for one batch; nothing was written", {
        issues: [{ path: [], message: `${modules.length} declaring files; a batch carries at most ${LIMITS.maxModulesPerBatch} modules (npm run ingest splits files)` }],
      });
    }
  }
  const summary = unwrapShard(ns, await shard(c.env, ns).ingest(ns, { modules, mode: query.mode, importId: query.importId, final: query.final }));
  return c.json(summary);
});

namespaces.get("/:ns/modules", async (c) => {
  const { ns } = parseOr400(nsParam, c.req.param(), "path");
  const q = parseOr400(pageQuery, c.req.query(), "query");
  await requireNamespace(c.env, ns);
  return c.json(unwrapShard(ns, await shard(c.env, ns).listModules(ns, q.cursor ?? null, q.limit, q.includeDeleted)));
});

/**
 * `/modules/<path>`, `/modules/<path>/versions`, `/modules/<path>/versions/<n>`,
 * `/modules/<path>/diff?from=&to=` and `/modules/<path>/usage?days=`. Module paths contain
 * slashes, so the tail is read whole.
 */
namespaces.get("/:ns/modules/*", async (c) => {
  const { ns } = parseOr400(nsParam, c.req.param(), "path");
  const tail = namespaceTail(c.req.url, "modules");
  if (!tail) throw new ApiError(400, "bad_request", "the module path is missing");
  const version = /^(.+)\/versions\/(\d+)$/.exec(tail);
  if (version && (version[2]!.length > 9 || Number(version[2]) < 1)) throw new ApiError(400, "bad_request", "a version number is a whole number from 1 to 999999999", { version: version[2]!.slice(0, 20) });
  const sub = version ? "version" : tail.endsWith("/versions") ? "versions" : tail.endsWith("/diff") ? "diff" : tail.endsWith("/usage") ? "usage" : "module";
  const { path } = parseOr400(modulePathParam, { path: version ? version[1] : sub === "module" ? tail : tail.slice(0, tail.lastIndexOf("/")) }, "path");
  const diffRange = sub === "diff" ? parseOr400(diffQuery, c.req.query(), "query") : null;
  const usage = sub === "usage" ? parseOr400(usageQuery, c.req.query(), "query") : null;
  if (!diffRange && !usage) noQuery(c.req.query());
  await requireNamespace(c.env, ns);
  const stub = shard(c.env, ns);
  if (version) return c.json(unwrapShard(ns, await stub.getVersion(ns, path, Number(version[2]))));
  if (sub === "versions") return c.json({ namespace: ns, module: path, items: unwrapShard(ns, await stub.listVersions(ns, path)) });
  if (diffRange) return c.json(unwrapShard(ns, await stub.diff(ns, path, diffRange.from, diffRange.to)));
  if (usage) {
    // Hosts may report any path: usage is shown only for modules the namespace has.
    const [exists, counted] = await Promise.all([stub.existingModules(ns, [path]), usageAggregate(c.env, ns).moduleUsage(ns, path, usage.days)]);
    if (!unwrapShard(ns, exists).length) throw new ApiError(404, "module_not_found", `module ${path} does not exist in namespace ${ns}`);
    return c.json(unwrap(counted));
  }
  return c.json(unwrapShard(ns, await stub.getModule(ns, path)));
});

namespaces.get("/:ns/options/*", async (c) => {
  const { ns } = parseOr400(nsParam, c.req.param(), "path");
  const { name } = parseOr400(optionNameParam, { name: namespaceTail(c.req.url, "options") }, "path");
  noQuery(c.req.query());
  await requireNamespace(c.env, ns);
  return c.json(unwrapShard(ns, await shard(c.env, ns).getOption(ns, name)));
});

// ---- docs edits -------------------------------------------------------------------------------

/**
 * `PUT /modules/<path>`: the module as a whole (`name`, `description`, `imports`, `meta`,
 * `options` keyed by name as in options.json), replacing what is stored; one new version.
 */
/** Edits are audited with the edited module or option as the target (refused attempts too). */
const auditEdit = (action: string, prefix: "modules" | "options") =>
  audited(action, (c) => {
    const raw = new URL(c.req.url).pathname.split(`/${prefix}/`)[1] ?? "";
    return { namespace: c.req.param("ns"), target: raw ? raw.slice(0, LIMITS.maxPathLength) : undefined };
  });

namespaces.put("/:ns/modules/*", auditEdit("module.edit", "modules"), requireEditor, limitBody(), async (c) => {
  const { ns } = parseOr400(nsParam, c.req.param(), "path");
  const path = namespaceTail(c.req.url, "modules");
  if (!path) throw new ApiError(400, "bad_request", "the module path is missing");
  const body = await readJson(c);
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new ApiError(400, "validation_failed", "the body is a module object", { issues: [{ path: ["body"], message: "expected an object" }] });
  if ("path" in body && body.path !== path) throw new ApiError(400, "validation_failed", "the body names another module than the URL", { issues: [{ path: ["body", "path"], message: `expected ${path} or nothing` }] });
  // The module replaces what is stored: a body without `options` would silently empty it.
  if (!("options" in body)) throw new ApiError(400, "validation_failed", "the module needs `options` (an object, `{}` for a module without options)", { issues: [{ path: ["body", "options"], message: "required" }] });
  const result = normalizeModules({ modules: [{ ...body, path }] });
  if ("issues" in result) {
    // Issues name the body's fields, not the batch the record is checked as.
    const issues = result.issues.map((i) => ({ ...i, path: ["body", ...i.path.slice(2)] }));
    throw new ApiError(400, "validation_failed", "the module is invalid; nothing was written", { issues });
  }
  await requireNamespace(c.env, ns);
  return c.json(unwrapShard(ns, await shard(c.env, ns).editModule(ns, result.modules[0]!)));
});

/** `PATCH /options/<name>`: `{ description?, default?, example? }` (defaults and examples as `{ kind, text }`, or null). */
namespaces.patch("/:ns/options/*", auditEdit("option.edit", "options"), requireEditor, limitBody(), async (c) => {
  const { ns } = parseOr400(nsParam, c.req.param(), "path");
  const name = namespaceTail(c.req.url, "options");
  if (!name) throw new ApiError(400, "bad_request", "the option name is missing");
  if (name.length > LIMITS.maxPathLength * 4) throw new ApiError(400, "bad_request", "the option name is too long");
  const patch = parseOr400(optionPatch, await readJson(c), "body");
  await requireNamespace(c.env, ns);
  return c.json(unwrapShard(ns, await shard(c.env, ns).editOption(ns, name, patch)));
});

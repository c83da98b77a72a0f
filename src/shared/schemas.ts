/**
 * Input schemas of the API, used by the edge, the objects and the CLI alike. Option documents
 * follow `nixosOptionsDoc`'s `options.json` and are read leniently (older `mdDoc` descriptions,
 * raw default values, declaration objects, unknown fields kept): a shape change upstream must not
 * drop options (user report BR-27). Everything around them is strict.
 * @module
 */
import { z } from "./zod.ts";
import { LIMITS } from "./limits.ts";
import { parseOptionName, showOption } from "./optionName.ts";
import type { Declaration, Literal, ModuleRecord, OptionRecord } from "./types.ts";

/** Preview namespaces, one per pull request: listed apart, searched only when named, deleted after a TTL. */
const PREVIEW_NAMESPACE = /^preview-pr-[1-9]\d{0,8}$/;

export const namespaceName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "namespace: 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit")
  // `preview-…` names are previews only in the exact form `preview-pr-<N>`; a look-alike would
  // otherwise become a permanent standard namespace by mistake.
  .refine((n) => !n.startsWith("preview-") || PREVIEW_NAMESPACE.test(n), "namespace: names starting with 'preview-' are reserved for preview-pr-<N> (N from 1, no leading zeros, at most 9 digits)");

export function isPreviewNamespace(name: string): boolean {
  return PREVIEW_NAMESPACE.test(name);
}

/** `PREVIEW_TTL_HOURS` in ms (72 hours when unset or not a positive number). */
export function previewTtlMs(hours: string | undefined): number {
  const n = Number(hours);
  return (Number.isFinite(n) && n > 0 ? n : 72) * 3_600_000;
}

/**
 * Control characters and bidirectional formatting characters (marks, embeddings, overrides,
 * isolates): no real module path or option name holds them, and the bidi ones make a name display
 * as another (`m\u202Exin.nix` shows as `mnix.nix`). Combining marks and other scripts are fine.
 */
export const UNSAFE_NAME_CHARS = /[\u0000-\u001f\u007f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** A module path: relative, no `..` segment, no control characters, no backslash. */
export const modulePath = z
  .string()
  .min(1)
  .max(LIMITS.maxPathLength)
  .refine((p) => !UNSAFE_NAME_CHARS.test(p), "module path must not contain control or bidirectional formatting characters")
  .refine((p) => !p.startsWith("/") && !p.includes("\\"), "module path must be relative and use '/'")
  .refine((p) => !p.split("/").some((s) => s === ".." || s === "."), "module path must not contain '.' or '..' segments")
  .refine((p) => !p.includes("//") && !p.endsWith("/"), "module path must not contain empty segments or end in /")
  // `<path>/versions`, `<path>/versions/<n>`, `<path>/diff` and `<path>/usage` are the module's
  // sub-resources in URLs, and `batch` is the ingest route (`POST …/modules/batch`).
  .refine((p) => !/(^|\/)(versions|diff|usage)$|(^|\/)versions\/\d+$/.test(p), "module path must not end in /versions, /versions/<n>, /diff or /usage (reserved in URLs)")
  .refine((p) => p !== "batch", "module path `batch` is reserved (POST …/modules/batch is the ingest route)");

const text = z.string().max(LIMITS.maxTextLength);

const literal = z.union([
  z.object({ _type: z.enum(["literalExpression", "literalMD", "literalExample", "literalDocBook"]), text }).loose(),
  z.unknown(),
]);

function toLiteral(v: unknown): Literal | undefined {
  if (v === undefined) return undefined;
  if (v && typeof v === "object" && "_type" in v && "text" in v) {
    const { _type: t, text } = v as { _type: unknown; text: unknown };
    if (typeof text === "string" && (t === "literalExpression" || t === "literalExample")) return { kind: "expression", text };
    if (typeof text === "string" && (t === "literalMD" || t === "literalDocBook")) return { kind: "markdown", text };
  }
  return { kind: "value", text: JSON.stringify(v) ?? "null" };
}

const declaration = z.union([
  z.string().min(1).max(LIMITS.maxPathLength),
  z.object({ name: z.string().min(1).max(LIMITS.maxPathLength), url: z.string().max(2048).optional(), line: z.number().int().nonnegative().optional() }).loose(),
  z.object({ path: z.string().min(1).max(LIMITS.maxPathLength), url: z.string().max(2048).optional(), line: z.number().int().nonnegative().optional() }).loose(),
]);

function toDeclaration(d: z.infer<typeof declaration>): Declaration {
  if (typeof d === "string") return { path: d };
  const o = d as { name?: unknown; path?: unknown; url?: string; line?: number };
  const out: Declaration = { path: typeof o.name === "string" ? o.name : String(o.path) };
  if (o.url !== undefined) out.url = o.url;
  if (o.line !== undefined) out.line = o.line;
  return out;
}

const KNOWN_OPTION_FIELDS = new Set(["declarations", "description", "type", "default", "example", "loc", "readOnly", "relatedPackages", "name", "visible", "internal"]);

/** One entry of `options.json` (the key is the display name). */
export const optionDoc = z
  .object({
    declarations: z.array(declaration).max(64).default([]),
    description: z.union([text, z.object({ _type: z.string().max(64), text }).loose(), z.null()]).optional(),
    type: z.string().max(20_000),
    default: literal.optional(),
    example: literal.optional(),
    loc: z.array(z.string().min(1).max(LIMITS.maxPathLength)).min(1).max(64).optional(),
    readOnly: z.boolean().default(false),
    relatedPackages: z.union([text, z.array(z.unknown()).max(256)]).optional(),
    visible: z.unknown().optional(),
    internal: z.unknown().optional(),
  })
  .loose();

export type OptionDocInput = z.input<typeof optionDoc>;

const optionMap = z.record(z.string().min(1).max(LIMITS.maxPathLength), optionDoc);

/** `nixosOptionsDoc` drops invisible and internal options; so do we. */
function isDocumented(doc: z.infer<typeof optionDoc>): boolean {
  return doc.visible !== false && doc.visible !== "shallow" && doc.internal !== true;
}

/** Turn a validated `options.json` entry into an `OptionRecord`, or an issue message. */
export function toOptionRecord(key: string, doc: z.infer<typeof optionDoc>): OptionRecord | string {
  const loc = doc.loc ?? parseOptionName(key);
  if (!loc) return `option name ${quoted(key)} is not a well-formed option path and has no loc`;
  if (UNSAFE_NAME_CHARS.test(key) || loc.some((s) => UNSAFE_NAME_CHARS.test(s))) {
    return `option name ${quoted(key)} must not contain control or bidirectional formatting characters`;
  }
  const name = showOption(loc);
  if (doc.loc && name !== key && parseOptionName(key)?.join("\u0000") !== loc.join("\u0000")) {
    return `loc does not match the option name ${quoted(key)}`;
  }
  const desc = doc.description;
  const record: OptionRecord = {
    name,
    loc,
    type: doc.type,
    description: desc == null ? "" : typeof desc === "string" ? desc : desc.text,
    readOnly: doc.readOnly,
    declarations: doc.declarations.map(toDeclaration),
  };
  const def = toLiteral(doc.default);
  if (def) record.default = def;
  const ex = toLiteral(doc.example);
  if (ex) record.example = ex;
  if (doc.relatedPackages !== undefined) {
    record.relatedPackages = typeof doc.relatedPackages === "string" ? doc.relatedPackages : JSON.stringify(doc.relatedPackages);
  }
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (!KNOWN_OPTION_FIELDS.has(k)) extra[k] = v;
  if (Object.keys(extra).length) record.extra = extra;
  return record;
}

/** A module record as posted in `{ "modules": [...] }`. */
export const moduleInput = z.strictObject({
  path: modulePath,
  name: z.string().min(1).max(256).optional(),
  description: text.optional(),
  imports: z.array(modulePath).max(1_000).default([]),
  meta: z.record(z.string().max(256), z.unknown()).default({}),
  options: optionMap.default({}),
});

export const moduleBatchInput = z.strictObject({
  modules: z.array(moduleInput).min(1).max(LIMITS.maxModulesPerBatch),
});

export const optionsJsonInput = optionMap;

export const ingestQuery = z
  .strictObject({
    mode: z.enum(["merge", "replace"]).default("merge"),
    format: z.enum(["modules", "options-json"]).optional(),
    importId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
    final: z.enum(["true", "false"]).default("true").transform((v) => v === "true"),
  })
  // An import session (importId, final=false) is what lets a multi-batch replace know what it has
  // seen; on a merge it would only hold the namespace's replace lock for nothing.
  .superRefine((q, ctx) => {
    if (q.mode !== "replace" && q.importId !== undefined) ctx.addIssue({ code: "custom", path: ["importId"], message: "importId belongs to replace imports (mode=replace)" });
    if (q.mode !== "replace" && !q.final) ctx.addIssue({ code: "custom", path: ["final"], message: "final=false belongs to multi-batch replace imports (mode=replace)" });
  });

export interface Issue {
  path: (string | number)[];
  message: string;
}

/** Keys in issue paths are echoed back, so hostile (huge) keys are shortened. */
function shortKey(p: string | number): string | number {
  return typeof p === "string" && p.length > 200 ? `${p.slice(0, 200)}…` : p;
}

export function zodIssues(error: z.ZodError, prefix: (string | number)[] = []): Issue[] {
  return error.issues.slice(0, 50).map((i) => ({
    path: [...prefix, ...i.path.map((p) => (typeof p === "symbol" ? String(p) : p))].map(shortKey),
    message: i.message,
  }));
}

function quoted(key: string): string {
  return JSON.stringify(key.length > 200 ? `${key.slice(0, 200)}…` : key);
}

/** Module name from its path: `modules/programs/git.nix` → `git`, `modules/sops` → `sops`. */
export function moduleNameFromPath(path: string): string {
  const base = path.replace(/[<>]/g, "").split("/").filter(Boolean).pop() ?? path;
  return base.replace(/\.nix$/, "") || path;
}

export function sortOptions(options: OptionRecord[]): OptionRecord[] {
  return options.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Validate and normalize module records; issues name the record (`modules.N`) and the field. */
export function normalizeModules(input: unknown): { modules: ModuleRecord[] } | { issues: Issue[] } {
  const parsed = moduleBatchInput.safeParse(input);
  if (!parsed.success) return { issues: zodIssues(parsed.error) };
  const issues: Issue[] = [];
  const seenPaths = new Set<string>();
  const ownerOf = new Map<string, string>(); // option name → module path that declared it first
  const modules: ModuleRecord[] = [];
  let optionCount = 0;
  parsed.data.modules.forEach((m, i) => {
    if (seenPaths.has(m.path)) issues.push({ path: ["modules", i, "path"], message: `module ${m.path} appears twice in the batch` });
    seenPaths.add(m.path);
    const options: OptionRecord[] = [];
    for (const [key, doc] of Object.entries(m.options)) {
      if (!isDocumented(doc)) continue;
      const rec = toOptionRecord(key, doc);
      if (typeof rec === "string") {
        issues.push({ path: ["modules", i, "options", shortKey(key)], message: rec });
        continue;
      }
      const other = ownerOf.get(rec.name);
      if (other !== undefined) {
        issues.push({ path: ["modules", i, "options", shortKey(key)], message: `option ${rec.name} is also declared by module ${other} in this batch; an option belongs to one module` });
        continue;
      }
      ownerOf.set(rec.name, m.path);
      options.push(rec);
    }
    optionCount += options.length;
    modules.push({
      path: m.path,
      name: m.name ?? moduleNameFromPath(m.path),
      description: m.description ?? "",
      imports: [...new Set(m.imports)].sort(),
      meta: m.meta,
      options: sortOptions(options),
    });
  });
  if (optionCount > LIMITS.maxOptionsPerBatch) {
    issues.push({ path: ["modules"], message: `a batch carries at most ${LIMITS.maxOptionsPerBatch} options (got ${optionCount})` });
  }
  return issues.length ? { issues: issues.slice(0, 50) } : { modules };
}

/** Validate a whole `options.json` object into option records (not yet grouped into modules). */
export function normalizeOptionsJson(input: unknown): { options: OptionRecord[] } | { issues: Issue[] } {
  if (!input || typeof input !== "object" || Array.isArray(input)) {
    return { issues: [{ path: [], message: "expected an options.json object keyed by option name" }] };
  }
  const issues: Issue[] = [];
  const options: OptionRecord[] = [];
  for (const [key, raw] of Object.entries(input)) {
    const parsed = optionDoc.safeParse(raw);
    if (!parsed.success) {
      issues.push(...zodIssues(parsed.error, [key]));
      if (issues.length >= 50) break;
      continue;
    }
    if (!isDocumented(parsed.data)) continue;
    const rec = toOptionRecord(key, parsed.data);
    if (typeof rec === "string") issues.push({ path: [shortKey(key)], message: rec });
    else options.push(rec);
  }
  if (!issues.length && !options.length) {
    issues.push({ path: [], message: "the options.json holds no documented option; nothing to ingest" });
  }
  if (options.length > LIMITS.maxOptionsPerBatch) {
    issues.push({ path: [], message: `a batch carries at most ${LIMITS.maxOptionsPerBatch} options (got ${options.length}); split it with the ingest CLI` });
  }
  return issues.length ? { issues: issues.slice(0, 50) } : { options };
}

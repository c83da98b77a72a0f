/**
 * Schemas of the normalized records that cross RPC into a shard. The edge already validated the
 * user's input; the shard checks the shape again because an RPC method is a public boundary too.
 * @module
 */
import { z } from "./zod.ts";
import { LIMITS } from "./limits.ts";
import { modulePath } from "./schemas.ts";

const literal = z.strictObject({ kind: z.enum(["expression", "markdown", "value"]), text: z.string().max(LIMITS.maxTextLength) });

const optionRecord = z.strictObject({
  name: z.string().min(1).max(LIMITS.maxPathLength * 4),
  loc: z.array(z.string().min(1)).min(1).max(64),
  type: z.string(),
  description: z.string().max(LIMITS.maxTextLength),
  default: literal.optional(),
  example: literal.optional(),
  readOnly: z.boolean(),
  declarations: z.array(z.strictObject({ path: z.string().min(1), url: z.string().optional(), line: z.number().optional() })),
  relatedPackages: z.string().optional(),
  extra: z.record(z.string(), z.unknown()).optional(),
});

export const moduleRecordSchema = z.strictObject({
  path: modulePath,
  name: z.string().min(1),
  description: z.string(),
  imports: z.array(modulePath),
  meta: z.record(z.string(), z.unknown()),
  options: z.array(optionRecord).max(LIMITS.maxOptionsPerBatch),
});

export const ingestRequestSchema = z.strictObject({
  modules: z
    .array(moduleRecordSchema)
    .max(LIMITS.maxModulesPerBatch)
    .refine((modules) => {
      const names = modules.flatMap((m) => m.options.map((o) => o.name));
      return new Set(names).size === names.length;
    }, "an option is declared by two modules of the batch")
    .refine((modules) => new Set(modules.map((m) => m.path)).size === modules.length, "a module appears twice in the batch"),
  mode: z.enum(["merge", "replace"]),
  importId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  final: z.boolean(),
});

/** A live room asking its shard for events after `after` (null: only the latest seq). */
export const liveSyncRequestSchema = z.strictObject({
  after: z.number().int().nonnegative().nullable(),
  module: modulePath.nullable(),
  limit: z.number().int().min(1).max(LIMITS.liveEventPage),
  watch: z.boolean(),
});
export type LiveSyncRequest = z.infer<typeof liveSyncRequestSchema>;

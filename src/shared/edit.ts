/**
 * Docs editing: the fields an editor may change on one option (description, default and example
 * text), validated here and applied to the module's current record, which then goes through the
 * shard's ordinary ingest (new version, change list, live event).
 * @module
 */
import { LIMITS } from "./limits.ts";
import type { ModuleRecord } from "./types.ts";
import { z } from "./zod.ts";

const literal = z.strictObject({ kind: z.enum(["expression", "markdown", "value"]), text: z.string().max(LIMITS.maxTextLength) });

/** `PATCH …/options/:name` body. `null` removes a default or example. */
export const optionPatch = z
  .strictObject({
    description: z.string().max(LIMITS.maxTextLength).optional(),
    default: literal.nullable().optional(),
    example: literal.nullable().optional(),
  })
  .refine((p) => p.description !== undefined || p.default !== undefined || p.example !== undefined, "give at least one of description, default, example");
export type OptionPatch = z.infer<typeof optionPatch>;

/** The module record with option `name` edited; the option must be in the record. */
export function applyOptionPatch(record: ModuleRecord, name: string, patch: OptionPatch): ModuleRecord {
  let found = false;
  const options = record.options.map((o) => {
    if (o.name !== name) return o;
    found = true;
    const next = { ...o };
    if (patch.description !== undefined) next.description = patch.description;
    for (const field of ["default", "example"] as const) {
      const value = patch[field];
      if (value === null) delete next[field];
      else if (value !== undefined) next[field] = value;
    }
    return next;
  });
  if (!found) throw new Error(`option ${name} is not in module ${record.path}`);
  return { ...record, options };
}

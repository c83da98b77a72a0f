/**
 * The audit log's records and its query: who (actor), did what (action), to what (namespace,
 * target), with which outcome (HTTP status), when, from where (keyed hash of the IP) and in which
 * request. Shared by the edge that writes and reads it and the `AuditLog` object that stores it.
 * @module
 */
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { ApiError } from "./errors.ts";
import { LIMITS } from "./limits.ts";
import { namespaceName } from "./schemas.ts";
import { z } from "./zod.ts";

export const ACTOR_KINDS = ["admin-token", "api-key", "jwt", "access", "anonymous"] as const;
export type ActorKind = (typeof ACTOR_KINDS)[number];

/** Room for the longest principal id: `access:` and a 320-character e-mail. */
const actorId = z.string().min(1).max(340);

/** Action names are dotted words (`ingest`, `key.create`); routes added later bring their own. */
export const actionName = z.string().regex(/^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$/).max(64);

/** What the edge sends for one action. The IP travels raw and is hashed by the object. */
export const auditRecord = z.strictObject({
  at: z.number().int().nonnegative(),
  actorKind: z.enum(ACTOR_KINDS),
  actorId: actorId.nullable(),
  action: actionName,
  namespace: namespaceName.nullable(),
  target: z.string().max(LIMITS.maxPathLength).nullable(),
  status: z.number().int().min(100).max(599),
  ip: z.string().max(64).nullable(),
  requestId: z.string().max(128).nullable(),
});
export type AuditRecord = z.infer<typeof auditRecord>;

/** One stored entry as the API returns it. */
export interface AuditEntry {
  id: number;
  at: number;
  actor: { kind: ActorKind; id: string | null };
  action: string;
  namespace: string | null;
  target: string | null;
  status: number;
  ipHash: string | null;
  requestId: string | null;
}

const DAY_MS = 86_400_000;
const isoDate = z.iso.date();
const isoDateTime = z.iso.datetime({ offset: true });

/**
 * A time bound: epoch milliseconds, an ISO 8601 date-time with offset, or a date (UTC). Both
 * bounds are inclusive, so a date as `to` means the end of that day.
 */
function instant(bound: "from" | "to") {
  return z.string().transform((s, ctx) => {
    if (/^\d{1,15}$/.test(s)) return Number(s);
    if (isoDate.safeParse(s).success) return Date.parse(s) + (bound === "to" ? DAY_MS - 1 : 0);
    if (isoDateTime.safeParse(s).success) return Date.parse(s);
    ctx.addIssue({ code: "custom", message: "a time is epoch milliseconds, a date (2030-01-31, UTC) or an ISO 8601 date-time with offset (2030-01-31T12:00:00Z)" });
    return z.NEVER;
  });
}

export const AUDIT_PAGE_MAX = LIMITS.maxPageSize;

/** `GET /api/v1/admin/audit` query: filters, newest first, cursor-paged. */
export const auditQuery = z
  .strictObject({
    actor: actorId.optional(),
    actorKind: z.enum(ACTOR_KINDS).optional(),
    action: actionName.optional(),
    namespace: namespaceName.optional(),
    from: instant("from").optional(),
    to: instant("to").optional(),
    limit: z.coerce.number().int().min(1).max(AUDIT_PAGE_MAX).default(50),
    cursor: z.string().max(256).optional(),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: "from is after to", path: ["from"] });

export type AuditQuery = z.infer<typeof auditQuery>;

/** What the object is asked: the parsed filters plus the entry id to continue below (from the cursor). */
export const auditSearch = z.strictObject({
  actor: actorId.optional(),
  actorKind: z.enum(ACTOR_KINDS).optional(),
  action: actionName.optional(),
  namespace: namespaceName.optional(),
  from: z.number().int().optional(),
  to: z.number().int().optional(),
  limit: z.number().int().min(1).max(AUDIT_PAGE_MAX),
  before: z.number().int().positive().optional(),
});
export type AuditSearch = z.infer<typeof auditSearch>;

/** The query as the object takes it: the cursor becomes the id to continue below. */
export function auditSearchOf(q: AuditQuery): AuditSearch {
  const { cursor, ...filters } = q;
  if (cursor === undefined) return filters;
  const before = decodeCursor(cursor).b;
  if (typeof before !== "number" || !Number.isInteger(before) || before <= 0) throw new ApiError(400, "bad_request", "the cursor is not one this API issued");
  return { ...filters, before };
}

export function auditCursor(lastId: number): string {
  return encodeCursor({ b: lastId });
}

export interface AuditPage {
  items: AuditEntry[];
  nextCursor: string | null;
}

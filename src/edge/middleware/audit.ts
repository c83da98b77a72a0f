/**
 * Auditing at the edge: `audited(action)` wraps a write or admin route and, once the response
 * status is known (refusals included), sends one entry to the AuditLog object in the background
 * (`waitUntil`), so the caller does not wait for it. Entries still in flight in this isolate are
 * awaited before the audit log is read, so a reader sees its own isolate's actions.
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import type { AuditRecord } from "../../shared/audit.ts";
import { LIMITS } from "../../shared/limits.ts";
import { namespaceName } from "../../shared/schemas.ts";
import type { AppEnv } from "../env.ts";
import { auditLog } from "../stubs.ts";

const inFlight = new Set<Promise<void>>();

/** Wait for the audit entries this isolate is still writing. */
export async function settleAuditWrites(): Promise<void> {
  while (inFlight.size) await Promise.allSettled([...inFlight]);
}

function inBackground(c: Context<AppEnv>, work: Promise<void>): void {
  const tracked = work.finally(() => inFlight.delete(tracked));
  inFlight.add(tracked);
  try {
    c.executionCtx.waitUntil(tracked);
  } catch {
    // No execution context (app.request in a unit test): the in-flight set still tracks it.
  }
}

export interface AuditTarget {
  namespace?: string | undefined;
  target?: string | undefined;
}

export function audited(action: string, targetOf?: (c: Context<AppEnv>) => AuditTarget): MiddlewareHandler<AppEnv> {
  return createMiddleware<AppEnv>(async (c, next) => {
    await next();
    // A refused credential that proved itself is still its holder's action (a revoked key in use).
    const actor = c.get("principal") ?? c.get("refusedCaller") ?? null;
    const found = targetOf?.(c) ?? {};
    const ns = namespaceName.safeParse(found.namespace);
    const target = c.get("auditTarget") ?? found.target ?? null;
    const record: AuditRecord = {
      at: Date.now(),
      actorKind: actor?.kind ?? "anonymous",
      actorId: actor?.id ?? null,
      action,
      namespace: ns.success ? ns.data : null,
      target: target === null ? null : target.slice(0, LIMITS.maxPathLength),
      status: c.res.status,
      ip: c.req.header("cf-connecting-ip")?.slice(0, 64) ?? null,
      requestId: c.get("requestId")?.slice(0, 128) ?? null,
    };
    inBackground(
      c,
      auditLog(c.env)
        .record(record)
        .then(
          () => undefined,
          (err: unknown) => console.error("audit: entry not written", record.requestId, String(err)),
        ),
    );
  });
}

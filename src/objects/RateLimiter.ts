/**
 * `RateLimiter`: one Durable Object per rate-limit bucket, reached with `idFromName(bucket)`
 * (`ip:<hash>`, `key:<hash>`, `route:<class>`, `global`). One object per client key shards the
 * per-IP and per-key layers across as many objects as there are clients, so no single object sees
 * more than one client's traffic; only `route:*` and `global` are shared by everyone, and each of
 * them is one small SQLite upsert per request.
 *
 * The bucket lives in the object's SQLite, written in the same synchronous step that decides, so
 * the decision and the state cannot diverge, and the output gate holds the answer until the write
 * is durable: an object evicted or restarted mid-window resumes with the tokens it had.
 * The algorithm is `takeTokens` in src/shared/rateLimit.ts.
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import { ApiError, rpcResult, type RpcResult } from "../shared/errors.ts";
import { takeTokens, type BucketState, type RateGrant } from "../shared/rateLimit.ts";
import { zodIssues } from "../shared/schemas.ts";
import { z } from "../shared/zod.ts";
import { applyMigrations, type Migration } from "./migrations.ts";

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "token buckets",
    sql: `CREATE TABLE buckets (
      bucket TEXT PRIMARY KEY,
      tokens REAL NOT NULL,
      updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;`,
  },
];

const takeRequest = z.strictObject({
  bucket: z.string().min(1).max(200),
  limit: z.number().int().min(1).max(1e9),
  periodSeconds: z.number().int().min(1).max(1e7),
  cost: z.number().int().min(1).max(1e6).default(1),
  /** Tokens the caller would like in advance (granted from the upper half of the bucket only). */
  lease: z.number().int().min(0).max(1e6).default(0),
});
export type TakeRequest = z.input<typeof takeRequest>;

export class RateLimiter extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, MIGRATIONS);
    });
  }

  /** Take tokens from the bucket; the answer says whether the request may pass, and how many tokens were leased. */
  take(request: TakeRequest): Promise<RpcResult<RateGrant>> {
    return rpcResult(() => {
      const parsed = takeRequest.safeParse(request);
      if (!parsed.success) throw new ApiError(400, "validation_failed", "invalid rate limiter request", { issues: zodIssues(parsed.error) });
      return this.#take(parsed.data);
    });
  }

  #take({ bucket, limit, periodSeconds, cost, lease }: z.output<typeof takeRequest>): RateGrant {
    const row = this.#sql.exec<{ tokens: number; updated_at: number }>("SELECT tokens, updated_at FROM buckets WHERE bucket = ?", bucket).toArray()[0];
    const state: BucketState | null = row ? { tokens: row.tokens, updatedAt: row.updated_at } : null;
    const { state: next, decision } = takeTokens(state, { limit, periodSeconds }, Date.now(), cost, lease);
    this.#sql.exec(
      "INSERT INTO buckets (bucket, tokens, updated_at) VALUES (?, ?, ?) ON CONFLICT (bucket) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
      bucket,
      next.tokens,
      next.updatedAt,
    );
    return decision;
  }
}

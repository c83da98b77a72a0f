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
 *
 * A full bucket is the same as no bucket, so an alarm set for the moment the bucket will be full
 * again deletes the object's storage then: the objects of clients not seen again cost nothing.
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import { ApiError, rpcResult, type RpcResult } from "../shared/errors.ts";
import { bucketFullAt, takeTokens, type BucketState, type RateGrant } from "../shared/rateLimit.ts";
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
      updated_at INTEGER NOT NULL,
      rule_limit INTEGER NOT NULL,
      period_seconds INTEGER NOT NULL
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

type BucketRow = {
  bucket: string;
  tokens: number;
  updated_at: number;
  rule_limit: number;
  period_seconds: number;
};

export class RateLimiter extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  /** Whether this instance has set the clean-up alarm (after a restart it is set again, harmlessly). */
  #alarmSet = false;
  /** Whether the tables exist: the clean-up deletes them with everything else. */
  #schemaReady = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
  }

  /** Migrations are synchronous, so applying them on first use needs no blockConcurrencyWhile. */
  #ensureSchema(): void {
    if (this.#schemaReady) return;
    applyMigrations(this.ctx.storage, MIGRATIONS);
    this.#schemaReady = true;
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
    this.#ensureSchema();
    const row = this.#sql.exec<BucketRow>("SELECT tokens, updated_at FROM buckets WHERE bucket = ?", bucket).toArray()[0];
    const state: BucketState | null = row ? { tokens: row.tokens, updatedAt: row.updated_at } : null;
    const { state: next, decision } = takeTokens(state, { limit, periodSeconds }, Date.now(), cost, lease);
    this.#sql.exec(
      `INSERT INTO buckets (bucket, tokens, updated_at, rule_limit, period_seconds) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (bucket) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at, rule_limit = excluded.rule_limit, period_seconds = excluded.period_seconds`,
      bucket,
      next.tokens,
      next.updatedAt,
      limit,
      periodSeconds,
    );
    if (!this.#alarmSet) {
      void this.ctx.storage.setAlarm(bucketFullAt(next, { limit, periodSeconds }));
      this.#alarmSet = true;
    }
    return decision;
  }

  /** Forget buckets that have refilled; otherwise look again when they will have. */
  override async alarm(): Promise<void> {
    this.#alarmSet = false;
    this.#ensureSchema();
    const rows = this.#sql.exec<BucketRow>("SELECT bucket, tokens, updated_at, rule_limit, period_seconds FROM buckets").toArray();
    const now = Date.now();
    let next = Infinity;
    for (const r of rows) {
      const fullAt = bucketFullAt({ tokens: r.tokens, updatedAt: r.updated_at }, { limit: r.rule_limit, periodSeconds: r.period_seconds });
      if (fullAt <= now) this.#sql.exec("DELETE FROM buckets WHERE bucket = ?", r.bucket);
      else next = Math.min(next, fullAt);
    }
    if (next === Infinity) {
      await this.ctx.storage.deleteAll();
      this.#schemaReady = false;
    } else {
      await this.ctx.storage.setAlarm(next);
      this.#alarmSet = true;
    }
  }
}

/**
 * `SearchCoordinator`: one per deployment (`idFromName("global")`). It keeps the registry of
 * namespaces (shards report their counts after each committed ingest) and answers search by
 * asking the chosen shards in parallel, each within a time budget, and merging their ranked
 * lists. A shard that fails or is too slow makes the answer `partial`, never an error.
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import { decodeCursor, encodeCursor } from "../shared/cursor.ts";
import { ApiError, rpcResult, unwrap, type RpcResult } from "../shared/errors.ts";
import { LIMITS } from "../shared/limits.ts";
import { roomName } from "../shared/live.ts";
import { parseQuery } from "../shared/query.ts";
import { mergeRanked } from "../shared/rank.ts";
import { isPreviewNamespace, namespaceName, previewTtlMs } from "../shared/schemas.ts";
import type { SearchHit, ShardCounts, ShardSearchResult, ShardVectorInput } from "../shared/types.ts";
import { withDeadline } from "../shared/deadline.ts";
import { fuseRanked } from "../shared/fusion.ts";
import { QueryRewriter, wantsRewrite, type TextGenerationRunner } from "../shared/rewrite.ts";
import { boostByUsage } from "../shared/usageBoost.ts";
import { remoteNearest, remoteVectors, type RemoteVectorBindings } from "../shared/vectors/remote.ts";
import { applyMigrations, type Migration } from "./migrations.ts";

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "namespace registry",
    sql: `CREATE TABLE namespaces (
      name TEXT PRIMARY KEY,
      modules INTEGER NOT NULL,
      options INTEGER NOT NULL,
      versions INTEGER NOT NULL,
      updated_at INTEGER,
      reported_at INTEGER NOT NULL
    ) WITHOUT ROWID;`,
  },
  {
    version: 2,
    name: "preview namespaces expire",
    // expires_at: set for preview namespaces (preview-pr-<N>), moved on by every report.
    sql: `ALTER TABLE namespaces ADD COLUMN expires_at INTEGER;`,
  },
  {
    version: 3,
    name: "query rewrite cache",
    // Rewrites are cached so that every page of a query is cut from one fused ranking, and a
    // query costs one model call per TTL.
    sql: `CREATE TABLE query_rewrites (
      q TEXT PRIMARY KEY,
      model TEXT NOT NULL,
      queries TEXT NOT NULL,
      created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX query_rewrites_created ON query_rewrites(created_at);`,
  },
];

/** How long a cached rewrite is used, and how many are kept. */
const REWRITE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const REWRITE_CACHE_ROWS = 10_000;
/** Weight of each rewrite's list against the original query's (1) in the fusion. */
const REWRITE_WEIGHT = 0.5;

/** Which namespaces a listing returns: the standard ones (default), previews, or both. */
export type NamespaceKind = "standard" | "preview" | "all";

export interface NamespaceEntry extends ShardCounts {
  reportedAt: number;
  /** A preview namespace (`preview-pr-<N>`): left out of default listings and searches. */
  preview: boolean;
  /** When a preview is deleted unless it is ingested into again (null for other namespaces). */
  expiresAt: number | null;
}

export interface ShardStatus {
  namespace: string;
  status: "ok" | "error" | "timeout";
  total: number;
  ms: number;
  /** Words this namespace read as other words (each namespace corrects against its own names). */
  corrections?: Record<string, string>;
}

/**
 * The corrections to report for the whole answer: words that no namespace knew as typed, each
 * read as the namespace with the most matches read it. A word one namespace lacks but another
 * has (`services` in disko) was not a typo.
 */
export function agreedCorrections(results: readonly ShardSearchResult[]): Record<string, string> {
  const byTotal = [...results].sort((a, b) => b.total - a.total);
  const out: Record<string, string> = {};
  for (const r of byTotal) {
    for (const [word, reading] of Object.entries(r.corrections ?? {})) {
      if (word in out) continue;
      if (results.every((other) => other.unknownWords?.includes(word))) out[word] = reading;
    }
  }
  return out;
}

export interface SearchRequest {
  q: string;
  namespaces?: string[];
  limit: number;
  cursor?: string;
  /** `usage`: re-rank with the usage bonus (hosts using each hit's module). */
  boost?: "usage";
}

export interface SearchResponse {
  query: string;
  hits: SearchHit[];
  total: number;
  nextCursor: string | null;
  partial: boolean;
  shards: ShardStatus[];
  facets: { namespace: Record<string, number> };
  /** Typo corrections the shards applied: query word → name word it was read as. */
  corrections: Record<string, string>;
  /**
   * The vector side: `local` (each shard's embedded index), or the outcome of asking Workers AI
   * and Vectorize (`ok`, `error`, `timeout`; the last two make the answer partial), or `unused`
   * (asked, but no shard needed vectors for this query, so the answer did not wait for them).
   */
  vectors: "local" | "ok" | "unused" | "error" | "timeout";
  /**
   * Query rewriting (Workers AI text generation, when `AI` is bound and `QUERY_REWRITE` is `on`):
   * `off`; `skipped` (the query's own words already match names); `ok` with the keyword queries
   * fused into the answer; `none` (the model had nothing to add); `timeout` / `error` (the
   * answer is the original query's).
   */
  rewrite: { status: "off" | "skipped" | "ok" | "none" | "timeout" | "error"; queries: string[] };
  /** With `boost=usage`: whether the usage counts arrived (`error`/`timeout`: unboosted, partial). */
  usage?: "ok" | "error" | "timeout";
}

/** How soon a failed preview deletion is tried again. */
const PREVIEW_RETRY_MS = 60_000;

/** Nearest options per query asked of Vectorize (its limit with metadata). */
const VECTOR_TOP_K = 50;

type ShardAnswer = ShardStatus & { result?: ShardSearchResult };

/** Test hook: lets a test make one namespace's shard fail or hang, to exercise partial answers. */
export type ShardFault = "error" | "hang";

export class SearchCoordinator extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #faults = new Map<string, ShardFault>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, MIGRATIONS);
    });
  }

  /** A shard's counts after a committed change. A preview's expiry moves to TTL after this report. */
  async reportShard(counts: ShardCounts): Promise<void> {
    const name = namespaceName.parse(counts.namespace);
    const now = Date.now();
    const expiresAt = isPreviewNamespace(name) ? now + previewTtlMs(this.env.PREVIEW_TTL_HOURS) : null;
    this.#sql.exec(
      `INSERT INTO namespaces (name, modules, options, versions, updated_at, reported_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET modules = excluded.modules, options = excluded.options, versions = excluded.versions,
         updated_at = excluded.updated_at, reported_at = excluded.reported_at, expires_at = excluded.expires_at`,
      name, counts.modules, counts.options, counts.versions, counts.updatedAt, now, expiresAt,
    );
    if (expiresAt !== null) await this.#scheduleExpiry();
  }

  /** The alarm fires at the earliest preview expiry (none: no alarm). */
  async #scheduleExpiry(): Promise<void> {
    const next = this.#sql.exec<{ t: number | null }>("SELECT min(expires_at) AS t FROM namespaces").one().t;
    if (next === null) await this.ctx.storage.deleteAlarm();
    else if ((await this.ctx.storage.getAlarm()) !== next) await this.ctx.storage.setAlarm(next);
  }

  /**
   * Delete expired previews entirely: the shard's storage and usage counts first, then the registry entry (only
   * if it is still expired: an ingest during the deletion renews it). A shard that cannot be
   * reached keeps its entry and is retried.
   */
  override async alarm(): Promise<void> {
    const expired = this.#sql.exec<{ name: string }>("SELECT name FROM namespaces WHERE expires_at <= ?", Date.now()).toArray();
    let failed = false;
    for (const { name } of expired) {
      try {
        const { watchedModules } = unwrap(await this.env.NAMESPACE_SHARD.get(this.env.NAMESPACE_SHARD.idFromName(name)).destroy(name));
        // Its usage goes too (a preview made again under the name starts afresh). Deltas arriving
        // from now on are dropped: acceptsUsage answers no for an expired preview.
        await this.env.USAGE_AGGREGATE.get(this.env.USAGE_AGGREGATE.idFromName(name)).destroy();
        this.#sql.exec("DELETE FROM namespaces WHERE name = ? AND expires_at <= ?", name, Date.now());
        await this.#closeRooms(name, watchedModules);
      } catch (err) {
        console.error("search-coordinator: deleting expired preview failed; retrying", name, String(err));
        failed = true;
      }
    }
    if (failed) await this.ctx.storage.setAlarm(Date.now() + PREVIEW_RETRY_MS);
    else await this.#scheduleExpiry();
  }

  /** Tell the deleted namespace's subscribers and drop its rooms; a failure here loses no data. */
  async #closeRooms(namespace: string, modules: string[]): Promise<void> {
    const rooms = [roomName({ kind: "namespace", namespace }), ...modules.map((module) => roomName({ kind: "module", namespace, module }))];
    const results = await Promise.allSettled(rooms.map((room) => this.env.LIVE_ROOM.get(this.env.LIVE_ROOM.idFromName(room)).closeNamespace(namespace)));
    for (const r of results) if (r.status === "rejected") console.error("search-coordinator: closing a live room failed", namespace, String(r.reason));
  }

  listNamespaces(kind: NamespaceKind = "standard"): NamespaceEntry[] {
    return this.#sql
      .exec<{ name: string; modules: number; options: number; versions: number; updated_at: number | null; reported_at: number; expires_at: number | null }>(
        "SELECT * FROM namespaces ORDER BY name",
      )
      .toArray()
      .map((r) => ({
        namespace: r.name,
        modules: r.modules,
        options: r.options,
        versions: r.versions,
        updatedAt: r.updated_at,
        reportedAt: r.reported_at,
        preview: isPreviewNamespace(r.name),
        expiresAt: r.expires_at,
      }))
      .filter((n) => kind === "all" || n.preview === (kind === "preview"));
  }

  hasNamespace(name: string): boolean {
    return this.#sql.exec("SELECT 1 FROM namespaces WHERE name = ?", name).toArray().length > 0;
  }

  /**
   * Whether usage of `name` may be counted: it is registered and not an expired preview (one whose
   * deletion may be under way; its `UsageAggregate` is wiped before its registry entry goes).
   */
  acceptsUsage(name: string): boolean {
    return this.#sql.exec("SELECT 1 FROM namespaces WHERE name = ? AND (expires_at IS NULL OR expires_at > ?)", name, Date.now()).toArray().length > 0;
  }

  injectShardFault(namespace: string, fault: ShardFault | null): void {
    if (fault) this.#faults.set(namespace, fault);
    else this.#faults.delete(namespace);
  }

  search(req: SearchRequest): Promise<RpcResult<SearchResponse>> {
    return rpcResult(() => this.#search(req));
  }

  async #search(req: SearchRequest): Promise<SearchResponse> {
    const query = parseQuery(req.q);
    const known = this.listNamespaces("all").map((n) => n.namespace);
    // Previews are searched only when named.
    const chosen = req.namespaces?.length ? [...new Set(req.namespaces)] : this.listNamespaces("standard").map((n) => n.namespace);
    const unknown = chosen.filter((n) => !known.includes(n));
    if (unknown.length) throw new ApiError(404, "namespace_not_found", `unknown namespace: ${unknown.join(", ")}`, { unknown });

    // A cursor belongs to its query, namespace filter and boost: pages are cut from one ranking.
    const scope = (req.namespaces?.length ? [...new Set(req.namespaces)].sort().join(",") : "") + (req.boost ? `;boost=${req.boost}` : "");
    let offset = 0;
    if (req.cursor) {
      const c = decodeCursor(req.cursor);
      if (typeof c.o !== "number" || !Number.isInteger(c.o) || c.o < 0 || c.q !== query.raw || (c.n ?? "") !== scope) {
        throw new ApiError(400, "bad_request", "the cursor does not belong to this query and namespace filter");
      }
      offset = c.o;
    }
    const limit = Math.min(Math.max(1, Math.trunc(req.limit)), LIMITS.maxPageSize);
    if (offset >= LIMITS.maxSearchDepth) {
      throw new ApiError(400, "bad_request", `search pages reach the first ${LIMITS.maxSearchDepth} results; refine the query`);
    }
    const window = Math.min(offset + limit, LIMITS.maxSearchDepth);
    const budget = Number(this.env.SEARCH_SHARD_TIMEOUT_MS) || 2000;

    // One hit more than the page needs tells whether another page exists.
    // With Workers AI and Vectorize bound, the query is embedded once here, beside a lexical
    // fan-out; only the shards that would use vectors for it (no name holds every word, few
    // matches) are asked again with their namespace's nearest options. Without the bindings each
    // shard uses its local embedded index in one pass.
    const remote = remoteVectors(this.env as RemoteVectorBindings);
    // Shards use vectors only for several-word free text, so only such queries pay for the embedding.
    const nearestSoon = remote && !query.dotted && query.terms.length >= 2 ? remoteNearest(remote, query.raw, chosen, VECTOR_TOP_K, budget) : null;
    const rewriter = this.#rewriter();
    const rewriting = rewriter && wantsRewrite(query.raw) ? this.#rewrites(rewriter, query.raw) : null;
    const side: { vectors: SearchResponse["vectors"] } = { vectors: nearestSoon ? "unused" : "local" };
    // The shards' own order is one ranking, so any page can be cut from the top `window + 1`. A
    // boost or a fusion re-ranks, and would re-rank a different prefix for every page (repeats and
    // gaps): those are computed over one fixed depth, the most any page can reach.
    const depth = req.boost || rewriting ? LIMITS.maxSearchDepth + 1 : window + 1;
    const ask = async (q: string): Promise<ShardAnswer[]> => {
      const first = await Promise.all(chosen.map((ns) => this.#askShard(ns, q, depth, budget, nearestSoon ? "deferred" : undefined)));
      if (!nearestSoon || !first.some((r) => r.result?.needsVectors)) return first;
      const nearest = await nearestSoon;
      side.vectors = nearest.status;
      if (nearest.status !== "ok") return first;
      return Promise.all(
        first.map((r) => (r.result?.needsVectors ? this.#askShard(r.namespace, q, depth, budget, nearest.byNamespace.get(r.namespace) ?? {}) : r)),
      );
    };
    const results = await ask(query.raw);
    const ok = results.filter((r): r is ShardStatus & { result: ShardSearchResult } => r.status === "ok" && !!r.result);
    let merged = mergeRanked(ok.map((r) => r.result.hits));
    // The usage bonus works on tier scores (usageBoost.ts), so it re-ranks the query's own list,
    // before any rewrites are fused in (fused scores are rank-based).
    let usage: SearchResponse["usage"];
    if (req.boost === "usage") ({ hits: merged, status: usage } = await this.#boostByUsage(merged, budget));
    let rewrite: SearchResponse["rewrite"] = { status: "off", queries: [] };
    if (rewriting) {
      // Only a description of what the user wants is rewritten: when the words already match
      // option names, the answer stands (and the model's answer is still cached for later).
      if (merged[0] && merged[0].match !== "text") rewrite = { status: "skipped", queries: [] };
      else {
        rewrite = await rewriting;
        if (rewrite.status === "ok") {
          const extra = await Promise.all(rewrite.queries.map(ask));
          const lists = extra.map((rs) => ({ hits: mergeRanked(rs.flatMap((r) => (r.status === "ok" && r.result ? [r.result.hits] : []))), weight: REWRITE_WEIGHT }));
          merged = fuseRanked([{ hits: merged, weight: 1 }, ...lists]);
        }
      }
    }
    const total = Math.max(ok.reduce((sum, r) => sum + r.result.total, 0), merged.length);
    const hits = merged.slice(offset, window);
    const more = merged.length > window;
    return {
      query: query.raw,
      hits,
      total,
      nextCursor: more && window < LIMITS.maxSearchDepth ? encodeCursor(scope ? { o: window, q: query.raw, n: scope } : { o: window, q: query.raw }) : null,
      partial: results.some((r) => r.status !== "ok") || side.vectors === "error" || side.vectors === "timeout" || (usage !== undefined && usage !== "ok"),
      vectors: side.vectors,
      rewrite,
      shards: results.map(({ namespace, status, total, ms, result }) => {
        const entry: ShardStatus = { namespace, status, total, ms };
        if (result?.corrections) entry.corrections = result.corrections;
        return entry;
      }),
      facets: { namespace: Object.fromEntries(ok.map((r) => [r.namespace, r.result.total])) },
      corrections: agreedCorrections(ok.map((r) => r.result)),
      ...(usage ? { usage } : {}),
    };
  }

  /**
   * Asks each namespace's `UsageAggregate` (in parallel, within the shard budget) how many hosts
   * use the hits' modules, and re-ranks with the usage bonus. Without the counts the ranking stays.
   */
  async #boostByUsage(hits: SearchHit[], budget: number): Promise<{ hits: SearchHit[]; status: "ok" | "error" | "timeout" }> {
    const modulesByNs = new Map<string, Set<string>>();
    for (const h of hits) {
      let set = modulesByNs.get(h.namespace);
      if (!set) modulesByNs.set(h.namespace, (set = new Set()));
      set.add(h.module);
    }
    try {
      const counts = Promise.all(
        [...modulesByNs].map(async ([ns, modules]) => [ns, await this.env.USAGE_AGGREGATE.get(this.env.USAGE_AGGREGATE.idFromName(ns)).hostCounts([...modules])] as const),
      );
      const answer = await withDeadline(counts, budget);
      if (answer === "timeout") return { hits, status: "timeout" };
      const byNs = new Map(answer);
      return { hits: boostByUsage(hits, (h) => byNs.get(h.namespace)?.[h.module] ?? 0), status: "ok" };
    } catch (err) {
      console.error("search-coordinator: usage counts failed", String(err));
      return { hits, status: "error" };
    }
  }


  /** The query rewriter, when Workers AI is bound and rewriting is switched on. */
  #rewriter(): QueryRewriter | null {
    const ai = (this.env as { AI?: TextGenerationRunner }).AI;
    if (!ai || String(this.env.QUERY_REWRITE) !== "on") return null;
    return new QueryRewriter(ai, String(this.env.QUERY_REWRITE_MODEL) || undefined);
  }

  /**
   * Keyword rewrites of `q`: from the cache, else from the model within
   * `QUERY_REWRITE_TIMEOUT_MS`. Started beside the original query's fan-out, so waiting for it
   * costs only what the model takes beyond the shards.
   */
  async #rewrites(rewriter: QueryRewriter, q: string): Promise<SearchResponse["rewrite"]> {
    const now = Date.now();
    const cached = this.#sql
      .exec<{ queries: string }>("SELECT queries FROM query_rewrites WHERE q = ? AND model = ? AND created_at > ?", q, rewriter.model, now - REWRITE_TTL_MS)
      .toArray()[0];
    if (cached) {
      const queries = JSON.parse(cached.queries) as string[];
      return { status: queries.length ? "ok" : "none", queries };
    }
    const budget = Number(this.env.QUERY_REWRITE_TIMEOUT_MS) || 800;
    try {
      const queries = await withDeadline(rewriter.rewrite(q), budget);
      if (queries === "timeout") return { status: "timeout", queries: [] };
      this.#sql.exec(
        "INSERT INTO query_rewrites (q, model, queries, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(q) DO UPDATE SET model = excluded.model, queries = excluded.queries, created_at = excluded.created_at",
        q, rewriter.model, JSON.stringify(queries), now,
      );
      this.#sql.exec(
        "DELETE FROM query_rewrites WHERE q IN (SELECT q FROM query_rewrites ORDER BY created_at DESC LIMIT -1 OFFSET ?)",
        REWRITE_CACHE_ROWS,
      );
      return { status: queries.length ? "ok" : "none", queries };
    } catch (err) {
      console.error("search-coordinator: query rewrite failed", String(err));
      return { status: "error", queries: [] };
    }
  }

  async #askShard(namespace: string, q: string, window: number, budget: number, vectorHits?: ShardVectorInput): Promise<ShardAnswer> {
    const started = Date.now();
    try {
      const fault = this.#faults.get(namespace);
      const call: Promise<ShardSearchResult> =
        fault === "error"
          ? Promise.reject(new Error("injected shard fault"))
          : fault === "hang"
            ? new Promise<ShardSearchResult>(() => {})
            : this.env.NAMESPACE_SHARD.get(this.env.NAMESPACE_SHARD.idFromName(namespace)).search(namespace, q, window, vectorHits).then(unwrap);
      const result = await withDeadline(call, budget);
      if (result === "timeout") return { namespace, status: "timeout", total: 0, ms: Date.now() - started };
      return { namespace, status: "ok", total: result.total, ms: Date.now() - started, result };
    } catch (err) {
      console.error("search-coordinator: shard failed", namespace, String(err));
      return { namespace, status: "error", total: 0, ms: Date.now() - started };
    }
  }
}

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
import { parseQuery } from "../shared/query.ts";
import { mergeRanked } from "../shared/rank.ts";
import { boostByUsage } from "../shared/usageBoost.ts";
import { namespaceName } from "../shared/schemas.ts";
import type { SearchHit, ShardCounts, ShardSearchResult } from "../shared/types.ts";
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
];

export interface NamespaceEntry extends ShardCounts {
  reportedAt: number;
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
   * and Vectorize (`ok`, `error`, `timeout`; the last two make the answer partial).
   */
  vectors: "local" | "ok" | "error" | "timeout";
  /** With `boost=usage`: whether the usage counts arrived (`error`/`timeout`: unboosted, partial). */
  usage?: "ok" | "error" | "timeout";
}

/** Nearest options per query asked of Vectorize (its limit with metadata). */
const VECTOR_TOP_K = 50;

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

  reportShard(counts: ShardCounts): void {
    const name = namespaceName.parse(counts.namespace);
    this.#sql.exec(
      `INSERT INTO namespaces (name, modules, options, versions, updated_at, reported_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET modules = excluded.modules, options = excluded.options, versions = excluded.versions,
         updated_at = excluded.updated_at, reported_at = excluded.reported_at`,
      name, counts.modules, counts.options, counts.versions, counts.updatedAt, Date.now(),
    );
  }

  listNamespaces(): NamespaceEntry[] {
    return this.#sql
      .exec<{ name: string; modules: number; options: number; versions: number; updated_at: number | null; reported_at: number }>(
        "SELECT * FROM namespaces ORDER BY name",
      )
      .toArray()
      .map((r) => ({ namespace: r.name, modules: r.modules, options: r.options, versions: r.versions, updatedAt: r.updated_at, reportedAt: r.reported_at }));
  }

  hasNamespace(name: string): boolean {
    return this.#sql.exec("SELECT 1 FROM namespaces WHERE name = ?", name).toArray().length > 0;
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
    const known = this.listNamespaces().map((n) => n.namespace);
    const chosen = req.namespaces?.length ? [...new Set(req.namespaces)] : known;
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
    // With Workers AI and Vectorize bound, the query is embedded once here and each shard gets
    // its namespace's nearest options; without them each shard uses its local embedded index.
    const remote = remoteVectors(this.env as RemoteVectorBindings);
    // Shards use vectors only for several-word free text, so only such queries pay for the embedding.
    const nearest = remote && !query.dotted && query.terms.length >= 2 ? await remoteNearest(remote, query.raw, chosen, VECTOR_TOP_K, budget) : null;
    const results = await Promise.all(
      chosen.map((ns) => this.#askShard(ns, query.raw, window + 1, budget, nearest ? (nearest.byNamespace.get(ns) ?? {}) : undefined)),
    );
    const ok = results.filter((r): r is ShardStatus & { result: ShardSearchResult } => r.status === "ok" && !!r.result);
    let merged = mergeRanked(ok.map((r) => r.result.hits));
    let usage: SearchResponse["usage"];
    if (req.boost === "usage") ({ hits: merged, status: usage } = await this.#boostByUsage(merged, budget));
    const total = ok.reduce((sum, r) => sum + r.result.total, 0);
    const hits = merged.slice(offset, window);
    const more = merged.length > window;
    return {
      query: query.raw,
      hits,
      total,
      nextCursor: more && window < LIMITS.maxSearchDepth ? encodeCursor(scope ? { o: window, q: query.raw, n: scope } : { o: window, q: query.raw }) : null,
      partial: results.some((r) => r.status !== "ok") || (nearest !== null && nearest.status !== "ok") || (usage !== undefined && usage !== "ok"),
      vectors: nearest ? nearest.status : "local",
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
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), budget);
    });
    try {
      const counts = Promise.all(
        [...modulesByNs].map(async ([ns, modules]) => [ns, await this.env.USAGE_AGGREGATE.get(this.env.USAGE_AGGREGATE.idFromName(ns)).hostCounts([...modules])] as const),
      );
      const answer = await Promise.race([counts, timeout]);
      if (answer === "timeout") return { hits, status: "timeout" };
      const byNs = new Map(answer);
      return { hits: boostByUsage(hits, (h) => byNs.get(h.namespace)?.[h.module] ?? 0), status: "ok" };
    } catch (err) {
      console.error("search-coordinator: usage counts failed", String(err));
      return { hits, status: "error" };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  async #askShard(namespace: string, q: string, window: number, budget: number, vectorHits?: Record<string, number>): Promise<ShardStatus & { result?: ShardSearchResult }> {
    const started = Date.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), budget);
    });
    try {
      const fault = this.#faults.get(namespace);
      const call: Promise<ShardSearchResult> =
        fault === "error"
          ? Promise.reject(new Error("injected shard fault"))
          : fault === "hang"
            ? new Promise<ShardSearchResult>(() => {})
            : this.env.NAMESPACE_SHARD.get(this.env.NAMESPACE_SHARD.idFromName(namespace)).search(namespace, q, window, vectorHits).then(unwrap);
      const result = await Promise.race([call, timeout]);
      if (result === "timeout") return { namespace, status: "timeout", total: 0, ms: Date.now() - started };
      return { namespace, status: "ok", total: result.total, ms: Date.now() - started, result };
    } catch (err) {
      console.error("search-coordinator: shard failed", namespace, String(err));
      return { namespace, status: "error", total: 0, ms: Date.now() - started };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}

/**
 * `UsageAggregate`: one Durable Object per namespace (`idFromName(namespace)`). It holds how many
 * hosts now use each module of the namespace, by environment, and a daily series of distinct
 * hosts per module. It only ever receives deltas from `HostUsage` objects and applies each
 * (host, version) once: it keeps the last version applied per host, so a delivery retried after
 * a crash or overlapping with another changes nothing twice. When its namespace (a preview) is
 * deleted, the coordinator wipes it, and deltas for a namespace the coordinator does not hold are
 * dropped, so hosts cannot bring the counts back.
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import { ApiError, rpcResult, type RpcResult } from "../shared/errors.ts";
import { LIMITS } from "../shared/limits.ts";
import { modulePath, namespaceName, zodIssues } from "../shared/schemas.ts";
import { hostHash as hostHashSchema, lastDays, MAX_TOP_MODULES, usageDeltas, utcDay, type UsageDelta } from "../shared/telemetry.ts";
import { z } from "../shared/zod.ts";
import { applyMigrations, type Migration } from "./migrations.ts";
import { COORDINATOR_NAME } from "../shared/objectNames.ts";

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "module host counts, daily series, applied host versions",
    sql: `
      -- Last delta version applied per host (keyed host hash): deltas at or below it are repeats.
      CREATE TABLE host_versions (host TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
      -- Hosts using a module now, per environment (rows at zero are deleted).
      CREATE TABLE module_hosts (
        module TEXT NOT NULL,
        environment TEXT NOT NULL,
        hosts INTEGER NOT NULL,
        PRIMARY KEY (module, environment)
      ) WITHOUT ROWID;
      -- Distinct hosts that reported a module on a UTC day (YYYY-MM-DD).
      CREATE TABLE daily_hosts (day TEXT NOT NULL, module TEXT NOT NULL, hosts INTEGER NOT NULL, PRIMARY KEY (day, module)) WITHOUT ROWID;
      CREATE INDEX daily_hosts_module ON daily_hosts(module, day);
    `,
  },
];

export interface ModuleUsage {
  namespace: string;
  module: string;
  /** Hosts using the module now (not aged out), over all environments. */
  hosts: number;
  byEnvironment: Record<string, number>;
  /** Distinct hosts that reported the module, per UTC day, oldest first (days without reports count 0). */
  daily: { day: string; hosts: number }[];
}

export interface TopModule {
  namespace: string;
  module: string;
  hosts: number;
  byEnvironment: Record<string, number>;
}

/** How long a namespace's existence is taken as known without asking the coordinator again. */
const KNOWN_NAMESPACE_TTL_MS = 30_000;

const moduleList = z.array(modulePath).max(LIMITS.maxSearchDepth * 8);

export class UsageAggregate extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  #prunedOn = "";
  /** Until when the namespace is known to exist (see #namespaceExists). */
  #knownUntil = 0;
  /** Counts deletions of this object's data. */
  #generation = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, MIGRATIONS);
    });
  }

  /**
   * Whether the coordinator's registry holds `namespace` (and it is not an expired preview being
   * deleted). A yes is kept in memory for a while, a no never; `destroy` forgets it, and
   * `#generation` tells a caller that a deletion happened while it waited for the answer.
   */
  async #namespaceExists(namespace: string): Promise<boolean> {
    for (;;) {
      if (this.#knownUntil > Date.now()) return true;
      const generation = this.#generation;
      const exists = await this.env.SEARCH_COORDINATOR.get(this.env.SEARCH_COORDINATOR.idFromName(COORDINATOR_NAME)).acceptsUsage(namespace);
      if (generation !== this.#generation) continue; // destroyed meanwhile: ask again
      if (exists) this.#knownUntil = Date.now() + KNOWN_NAMESPACE_TTL_MS;
      return exists;
    }
  }

  /**
   * Applies the deltas of one host newer than the last applied; returns how many were new. Deltas
   * for a namespace the registry does not hold (a deleted preview) are dropped and answered with
   * null, so a host's outbox cannot bring a deleted namespace's usage back.
   */
  async applyDeltas(namespace: string, hostHash: string, deltas: UsageDelta[]): Promise<number | null> {
    const ns = namespaceName.safeParse(namespace);
    const host = hostHashSchema.safeParse(hostHash);
    const parsed = usageDeltas.safeParse(deltas);
    if (!ns.success || !host.success || !parsed.success) {
      // A bug in HostUsage, not user input: fail loudly so the outbox keeps the rows.
      throw new Error(`usage-aggregate: invalid deltas ${JSON.stringify(parsed.success ? [] : zodIssues(parsed.error))}`);
    }
    if (!(await this.#namespaceExists(ns.data))) return null;
    return this.ctx.storage.transactionSync(() => {
      let last = this.#sql.exec<{ version: number }>("SELECT version FROM host_versions WHERE host = ?", host.data).toArray()[0]?.version ?? 0;
      let applied = 0;
      for (const delta of [...parsed.data].sort((a, b) => a.version - b.version)) {
        if (delta.version <= last) continue;
        for (const c of delta.changes) {
          const { hosts } = this.#sql
            .exec<{ hosts: number }>(
              `INSERT INTO module_hosts (module, environment, hosts) VALUES (?, ?, ?)
               ON CONFLICT(module, environment) DO UPDATE SET hosts = hosts + excluded.hosts RETURNING hosts`,
              c.module, c.environment, c.delta,
            )
            .one();
          if (hosts < 0) console.error("usage-aggregate: a count fell below zero (a delta applied out of order?)", c.module, c.environment);
          if (hosts <= 0) this.#sql.exec("DELETE FROM module_hosts WHERE module = ? AND environment = ?", c.module, c.environment);
        }
        for (const m of delta.seen?.modules ?? []) {
          this.#sql.exec(
            "INSERT INTO daily_hosts (day, module, hosts) VALUES (?, ?, 1) ON CONFLICT(day, module) DO UPDATE SET hosts = hosts + 1",
            delta.seen!.day, m,
          );
        }
        last = delta.version;
        applied++;
      }
      if (!applied) return 0;
      this.#sql.exec("INSERT INTO host_versions (host, version) VALUES (?, ?) ON CONFLICT(host) DO UPDATE SET version = excluded.version", host.data, last);
      // Days beyond the kept series are dropped once per day (per instance).
      const today = utcDay(Date.now());
      if (this.#prunedOn !== today) {
        this.#sql.exec("DELETE FROM daily_hosts WHERE day < ?", utcDay(Date.now() - LIMITS.maxUsageDays * 86_400_000));
        this.#prunedOn = today;
      }
      return applied;
    });
  }

  /** Deletes everything (the namespace was deleted); later deltas are dropped until it exists again. */
  async destroy(): Promise<void> {
    this.#generation++;
    this.#knownUntil = 0;
    await this.ctx.storage.deleteAll();
    applyMigrations(this.ctx.storage, MIGRATIONS);
    this.#prunedOn = "";
  }

  moduleUsage(namespace: string, module: string, days: number): Promise<RpcResult<ModuleUsage>> {
    return rpcResult(() => {
      const path = modulePath.safeParse(module);
      if (!path.success) throw new ApiError(400, "validation_failed", "invalid module path", { issues: zodIssues(path.error, ["path"]) });
      const span = Math.min(Math.max(1, Math.trunc(days)), LIMITS.maxUsageDays);
      const byEnvironment = Object.fromEntries(
        this.#sql.exec<{ environment: string; hosts: number }>("SELECT environment, hosts FROM module_hosts WHERE module = ? ORDER BY environment", path.data).toArray().map((r) => [r.environment, r.hosts]),
      );
      const dayList = lastDays(Date.now(), span);
      const perDay = new Map(
        this.#sql.exec<{ day: string; hosts: number }>("SELECT day, hosts FROM daily_hosts WHERE module = ? AND day >= ?", path.data, dayList[0]!).toArray().map((r) => [r.day, r.hosts]),
      );
      return {
        namespace,
        module: path.data,
        hosts: Object.values(byEnvironment).reduce((n, h) => n + h, 0),
        byEnvironment,
        daily: dayList.map((day) => ({ day, hosts: perDay.get(day) ?? 0 })),
      };
    });
  }

  /**
   * The most used modules of the namespace, by hosts now using them. Counted modules may not exist
   * in the namespace (hosts name what they like), so callers ask for more than they show and filter.
   */
  topModules(namespace: string, limit: number): TopModule[] {
    const rows = this.#sql
      .exec<{ module: string; hosts: number }>("SELECT module, SUM(hosts) AS hosts FROM module_hosts GROUP BY module ORDER BY hosts DESC, module LIMIT ?", Math.max(1, Math.min(limit, MAX_TOP_MODULES)))
      .toArray();
    return rows.map((r) => ({
      namespace,
      module: r.module,
      hosts: r.hosts,
      byEnvironment: Object.fromEntries(
        this.#sql.exec<{ environment: string; hosts: number }>("SELECT environment, hosts FROM module_hosts WHERE module = ? ORDER BY environment", r.module).toArray().map((e) => [e.environment, e.hosts]),
      ),
    }));
  }

  /** Hosts now using each of `modules` (for `boost=usage`); modules nobody uses are left out. */
  hostCounts(modules: string[]): Record<string, number> {
    const wanted = new Set(moduleList.parse(modules));
    const out: Record<string, number> = {};
    for (const r of this.#sql.exec<{ module: string; hosts: number }>("SELECT module, SUM(hosts) AS hosts FROM module_hosts GROUP BY module")) {
      if (wanted.has(r.module)) out[r.module] = r.hosts;
    }
    return out;
  }
}

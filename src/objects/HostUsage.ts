/**
 * `HostUsage`: one Durable Object per reporting host, named by the keyed host hash (the raw
 * host value never reaches it). It keeps the host's latest report, first/last seen and report
 * count, and turns each accepted report into the increments and decrements of its namespaces'
 * `UsageAggregate`s (src/shared/telemetry.ts computes them).
 *
 * Exact counts under retries and crashes: every change of the host's module set gets the next
 * host version, and its deltas are written to an outbox in the same transaction as the new
 * state. The outbox is then delivered per namespace, all pending versions in order in one call;
 * the aggregate applies each (host, version) once and the rows are deleted only after it
 * answered. A delivery that fails is retried by the alarm, and a repeat delivery is a no-op.
 *
 * Reports not newer than the latest (by the host's own `reportedAt`) are acknowledged and change
 * nothing, not even last seen or the report count; a host may report once a minute; a host silent for `TELEMETRY_AGE_OUT_DAYS` is aged
 * out by its alarm, which sends the decrements of all its modules.
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import { ApiError, rpcResult, type RpcResult } from "../shared/errors.ts";
import { zodIssues } from "../shared/schemas.ts";
import {
  ageOutMs,
  diffHostModules,
  hostHash as hostHashSchema,
  hostReport,
  retryAfterSeconds,
  uniqueModules,
  utcDay,
  type HostModules,
  type HostReport,
  type ModuleRef,
  type UsageDelta,
} from "../shared/telemetry.ts";
import { applyMigrations, type Migration } from "./migrations.ts";

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "host state, modules, daily seen set, delta outbox",
    sql: `
      -- One row: the host. reported_at is the host's clock (seconds) of the latest applied report;
      -- last_accepted_at the server time of the latest report (for the once-a-minute limit).
      CREATE TABLE host (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        host_hash TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        last_accepted_at INTEGER NOT NULL,
        report_count INTEGER NOT NULL,
        reported_at INTEGER,
        environment TEXT,
        system TEXT,
        version INTEGER NOT NULL,
        aged_out_at INTEGER,
        seen_day TEXT
      );
      -- The modules of the latest applied report.
      CREATE TABLE host_modules (namespace TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (namespace, path)) WITHOUT ROWID;
      -- Modules already counted in the daily series for host.seen_day (UTC).
      CREATE TABLE seen_today (namespace TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (namespace, path)) WITHOUT ROWID;
      -- Deltas not yet acknowledged by their namespace's UsageAggregate (payload: JSON UsageDelta).
      CREATE TABLE outbox (
        version INTEGER NOT NULL,
        namespace TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (namespace, version)
      ) WITHOUT ROWID;
    `,
  },
];

/** A failed delivery is retried by the alarm after this long. */
const DELIVERY_RETRY_MS = 10_000;
/** An age-out alarm set this much earlier than needed is kept rather than moved (see #schedule). */
const ALARM_SLACK_MS = 60 * 60 * 1000;
/** Deltas per aggregate call (a host that could not deliver for hours has many pending). */
const DELIVERY_BATCH = 200;

interface HostRow {
  host_hash: string;
  first_seen: number;
  last_seen: number;
  last_accepted_at: number;
  report_count: number;
  reported_at: number | null;
  environment: string | null;
  system: string | null;
  version: number;
  aged_out_at: number | null;
  seen_day: string | null;
  [key: string]: SqlStorageValue;
}

export interface ReportOutcome {
  /** False when the report was older than the latest one (acknowledged, nothing changed). */
  applied: boolean;
  reason?: "stale";
  /** The host version after the report (it grows only when the module set or environment changed). */
  version: number;
  /** Modules recorded for the host now. */
  modules: number;
  /** Increments and decrements this report caused. */
  changes: number;
  /** Every pending delta reached its aggregate (otherwise the alarm retries). */
  delivered: boolean;
  reportCount: number;
  firstSeen: number;
  lastSeen: number;
}

export interface HostState {
  firstSeen: number;
  lastSeen: number;
  reportCount: number;
  reportedAt: number | null;
  environment: string | null;
  system: string | null;
  version: number;
  agedOutAt: number | null;
  modules: ModuleRef[];
  pendingDeltas: number;
}

export class HostUsage extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  /** When the alarm is set for (read from storage at start; null: none). */
  #alarmAt: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, MIGRATIONS);
      this.#alarmAt = await ctx.storage.getAlarm();
    });
  }

  report(hostHash: string, report: HostReport): Promise<RpcResult<ReportOutcome>> {
    return rpcResult(async () => {
      const hash = hostHashSchema.safeParse(hostHash);
      const parsed = hostReport.safeParse(report);
      if (!hash.success || !parsed.success) {
        throw new ApiError(400, "validation_failed", "invalid telemetry report", { issues: parsed.success ? [] : zodIssues(parsed.error) });
      }
      const outcome = this.#accept(hash.data, parsed.data, Date.now());
      const delivered = await this.#deliver();
      this.#schedule();
      return { ...outcome, delivered };
    });
  }

  state(): HostState | null {
    const row = this.#host();
    if (!row) return null;
    return {
      firstSeen: row.first_seen,
      lastSeen: row.last_seen,
      reportCount: row.report_count,
      reportedAt: row.reported_at,
      environment: row.environment,
      system: row.system,
      version: row.version,
      agedOutAt: row.aged_out_at,
      modules: this.#modules(),
      pendingDeltas: this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM outbox").one().n,
    };
  }

  override async alarm(): Promise<void> {
    this.#alarmAt = null; // a fired alarm is gone
    const row = this.#host();
    if (!row) return;
    const now = Date.now();
    if (row.aged_out_at === null && now - row.last_seen >= ageOutMs(this.env)) this.#ageOut(row, now);
    await this.#deliver();
    this.#schedule();
  }

  #host(): HostRow | null {
    return this.#sql.exec<HostRow>("SELECT * FROM host WHERE id = 1").toArray()[0] ?? null;
  }

  #modules(): ModuleRef[] {
    return this.#sql.exec<{ namespace: string; path: string }>("SELECT namespace, path FROM host_modules ORDER BY namespace, path").toArray();
  }

  /** Records the report and its deltas in one transaction; throws 429 when the host reported less than a minute ago. */
  #accept(hostHash: string, report: HostReport, now: number): Omit<ReportOutcome, "delivered"> {
    return this.ctx.storage.transactionSync(() => {
      let row = this.#host();
      if (row) {
        const wait = retryAfterSeconds(row.last_accepted_at, now);
        if (wait > 0) throw new ApiError(429, "rate_limited", `a host reports at most once a minute; retry in ${wait} s`, { retryAfterSeconds: wait });
        // A stale report changes nothing at all: counting it as a sign of life would let replayed
        // or delayed reports keep a silent host from aging out.
        if (row.reported_at !== null && report.reportedAt <= row.reported_at) {
          return {
            applied: false, reason: "stale" as const, modules: this.#modules().length, changes: 0,
            version: row.version, reportCount: row.report_count, firstSeen: row.first_seen, lastSeen: row.last_seen,
          };
        }
        this.#sql.exec("UPDATE host SET last_seen = ?, last_accepted_at = ?, report_count = report_count + 1 WHERE id = 1", now, now);
      } else {
        this.#sql.exec(
          "INSERT INTO host (id, host_hash, first_seen, last_seen, last_accepted_at, report_count, version) VALUES (1, ?, ?, ?, ?, 1, 0)",
          hostHash, now, now, now,
        );
      }
      row = this.#host()!;
      const summary = { version: row.version, reportCount: row.report_count, firstSeen: row.first_seen, lastSeen: row.last_seen };

      const modules = uniqueModules(report.modules);
      const beforeModules = this.#modules();
      const before: HostModules | null = row.environment === null ? null : { environment: row.environment, modules: beforeModules };
      const changes = diffHostModules(before, { environment: report.environment, modules });

      // The daily series counts each host once per module and UTC day.
      const day = utcDay(now);
      if (row.seen_day !== day) this.#sql.exec("DELETE FROM seen_today");
      const seenToday = new Set(this.#sql.exec<{ k: string }>("SELECT namespace || char(0) || path AS k FROM seen_today").toArray().map((r) => r.k));
      const newlySeen = modules.filter((m) => !seenToday.has(`${m.namespace}\u0000${m.path}`));
      for (const m of newlySeen) this.#sql.exec("INSERT INTO seen_today (namespace, path) VALUES (?, ?)", m.namespace, m.path);

      const version = this.#enqueue(row.version, changes, newlySeen, day);
      const key = (m: ModuleRef) => `${m.namespace}\u0000${m.path}`;
      const next = new Set(modules.map(key));
      const prev = new Set(beforeModules.map(key));
      for (const m of beforeModules) if (!next.has(key(m))) this.#sql.exec("DELETE FROM host_modules WHERE namespace = ? AND path = ?", m.namespace, m.path);
      for (const m of modules) if (!prev.has(key(m))) this.#sql.exec("INSERT INTO host_modules (namespace, path) VALUES (?, ?)", m.namespace, m.path);
      this.#sql.exec(
        "UPDATE host SET host_hash = ?, reported_at = ?, environment = ?, system = ?, version = ?, aged_out_at = NULL, seen_day = ? WHERE id = 1",
        hostHash, report.reportedAt, report.environment, report.system, version, day,
      );
      const changed = [...changes.values()].reduce((n, list) => n + list.length, 0);
      return { applied: true, modules: modules.length, changes: changed, ...summary, version };
    });
  }

  /** Writes one outbox row per namespace touched, under the next host version; returns the host's version. */
  #enqueue(version: number, changes: Map<string, UsageDelta["changes"]>, seen: readonly ModuleRef[], day: string): number {
    const seenByNs = new Map<string, string[]>();
    for (const m of seen) seenByNs.set(m.namespace, [...(seenByNs.get(m.namespace) ?? []), m.path]);
    const namespaces = new Set([...changes.keys(), ...seenByNs.keys()]);
    if (!namespaces.size) return version;
    const next = version + 1;
    for (const ns of namespaces) {
      const delta: UsageDelta = { version: next, changes: changes.get(ns) ?? [] };
      const paths = seenByNs.get(ns);
      if (paths) delta.seen = { day, modules: paths };
      this.#sql.exec("INSERT INTO outbox (version, namespace, payload) VALUES (?, ?, ?)", next, ns, JSON.stringify(delta));
    }
    return next;
  }

  /** Aging out: decrements for every module of the host, and the host keeps no report. */
  #ageOut(row: HostRow, now: number): void {
    this.ctx.storage.transactionSync(() => {
      const modules = this.#modules();
      const before = row.environment === null ? null : { environment: row.environment, modules };
      const version = this.#enqueue(row.version, diffHostModules(before, null), [], utcDay(now));
      this.#sql.exec("DELETE FROM host_modules");
      // seen_today stays: a host back the same UTC day was already counted in that day's series.
      this.#sql.exec("UPDATE host SET version = ?, aged_out_at = ?, environment = NULL, system = NULL WHERE id = 1", version, now);
    });
  }

  /**
   * Sends every pending delta, per namespace in version order, and deletes what was acknowledged.
   * Two deliveries may overlap (a report arriving while another awaits an aggregate); both send
   * all rows still pending, and the aggregate applies each version once, so that is harmless.
   */
  async #deliver(): Promise<boolean> {
    const row = this.#host();
    if (!row) return true;
    const pending = this.#sql.exec<{ version: number; namespace: string; payload: string }>("SELECT version, namespace, payload FROM outbox ORDER BY namespace, version").toArray();
    if (!pending.length) return true;
    const byNs = new Map<string, UsageDelta[]>();
    for (const p of pending) byNs.set(p.namespace, [...(byNs.get(p.namespace) ?? []), JSON.parse(p.payload) as UsageDelta]);
    const results = await Promise.all(
      [...byNs].map(async ([ns, deltas]) => {
        try {
          const aggregate = this.env.USAGE_AGGREGATE.get(this.env.USAGE_AGGREGATE.idFromName(ns));
          for (let i = 0; i < deltas.length; i += DELIVERY_BATCH) {
            const batch = deltas.slice(i, i + DELIVERY_BATCH);
            const applied = await aggregate.applyDeltas(ns, row.host_hash, batch);
            this.ctx.storage.transactionSync(() => {
              this.#sql.exec("DELETE FROM outbox WHERE namespace = ? AND version <= ?", ns, batch[batch.length - 1]!.version);
              // The namespace is gone (a deleted preview): the host no longer counts as using its
              // modules, so if it is made again the host's next report counts them afresh.
              if (applied === null) {
                this.#sql.exec("DELETE FROM host_modules WHERE namespace = ?", ns);
                this.#sql.exec("DELETE FROM seen_today WHERE namespace = ?", ns);
              }
            });
          }
          return true;
        } catch (err) {
          console.error("host-usage: delivery to usage aggregate failed; the alarm retries", ns, String(err));
          return false;
        }
      }),
    );
    return results.every(Boolean);
  }

  /** One alarm: the next delivery retry when deltas are pending, else the age-out time. */
  #schedule(): void {
    const row = this.#host();
    if (!row) return;
    const pending = this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM outbox").one().n > 0;
    const ageOutAt = row.aged_out_at === null ? row.last_seen + ageOutMs(this.env) : Number.POSITIVE_INFINITY;
    const at = Math.min(ageOutAt, pending ? Date.now() + DELIVERY_RETRY_MS : Number.POSITIVE_INFINITY);
    if (!Number.isFinite(at)) {
      if (this.#alarmAt !== null) void this.ctx.storage.deleteAlarm();
      this.#alarmAt = null;
      return;
    }
    // Setting an alarm is a storage write: an age-out alarm already within the slack is kept
    // (a host reporting every minute would otherwise write one per report). The alarm re-checks
    // the silence itself, so firing a little early only reschedules.
    if (this.#alarmAt !== null && this.#alarmAt <= at && at - this.#alarmAt < ALARM_SLACK_MS) return;
    void this.ctx.storage.setAlarm(at);
    this.#alarmAt = at;
  }
}

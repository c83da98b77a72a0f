/**
 * `AuditLog`: one per deployment (`idFromName("global")`). An append-only record of every write
 * and admin action the edge saw, with its outcome. Client IPs are stored only as an HMAC under a
 * random key that this object generates for itself and never returns, so the log can tell
 * requests from one address apart without holding the address.
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import { auditCursor, auditRecord, auditSearch, type ActorKind, type AuditEntry, type AuditPage, type AuditRecord, type AuditSearch } from "../shared/audit.ts";
import { fromHex, toHex } from "../shared/bytes.ts";
import { applyMigrations, type Migration } from "./migrations.ts";

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "audit entries",
    sql: `CREATE TABLE audit_entries (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at INTEGER NOT NULL,
      actor_kind TEXT NOT NULL,
      actor_id TEXT,
      action TEXT NOT NULL,
      namespace TEXT,
      target TEXT,
      status INTEGER NOT NULL,
      ip_hash TEXT,
      request_id TEXT
    );
    CREATE INDEX audit_by_actor ON audit_entries (actor_id, id);
    CREATE INDEX audit_by_action ON audit_entries (action, id);
    CREATE INDEX audit_by_namespace ON audit_entries (namespace, id);
    CREATE INDEX audit_by_time ON audit_entries (at);
    CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    INSERT INTO audit_meta (key, value) VALUES ('ip_hmac_key', hex(randomblob(32)));`,
  },
];

interface EntryRow {
  id: number;
  at: number;
  actor_kind: string;
  actor_id: string | null;
  action: string;
  namespace: string | null;
  target: string | null;
  status: number;
  ip_hash: string | null;
  request_id: string | null;
  [column: string]: SqlStorageValue;
}

function toEntry(r: EntryRow): AuditEntry {
  return {
    id: r.id,
    at: r.at,
    actor: { kind: r.actor_kind as ActorKind, id: r.actor_id },
    action: r.action,
    namespace: r.namespace,
    target: r.target,
    status: r.status,
    ipHash: r.ip_hash,
    requestId: r.request_id,
  };
}

const DAY_MS = 86_400_000;
const DEFAULT_RETENTION_DAYS = 365;

export class AuditLog extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  #ipKey: Promise<CryptoKey> | null = null;
  #pruneScheduled = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, MIGRATIONS);
    });
  }

  #hmacKey(): Promise<CryptoKey> {
    if (!this.#ipKey) {
      const hex = this.#sql.exec<{ value: string }>("SELECT value FROM audit_meta WHERE key = 'ip_hmac_key'").one().value;
      this.#ipKey = crypto.subtle.importKey("raw", fromHex(hex), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    }
    return this.#ipKey;
  }

  async #ipHash(ip: string | null): Promise<string | null> {
    if (!ip) return null;
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await this.#hmacKey(), new TextEncoder().encode(ip)));
    // 128 bits tell addresses apart; the full MAC adds nothing.
    return toHex(mac.subarray(0, 16));
  }

  async record(input: AuditRecord): Promise<number> {
    const r = auditRecord.parse(input);
    const ipHash = await this.#ipHash(r.ip);
    const id = this.#sql
      .exec<{ id: number }>(
        `INSERT INTO audit_entries (at, actor_kind, actor_id, action, namespace, target, status, ip_hash, request_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        r.at, r.actorKind, r.actorId, r.action, r.namespace, r.target, r.status, ipHash, r.requestId,
      )
      .one().id;
    await this.#schedulePrune();
    return id;
  }

  /** Entries older than `AUDIT_RETENTION_DAYS` are dropped once a day, so the log cannot grow forever. */
  async #schedulePrune(): Promise<void> {
    if (this.#pruneScheduled) return;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + DAY_MS);
    this.#pruneScheduled = true;
  }

  override async alarm(): Promise<void> {
    const days = Number(this.env.AUDIT_RETENTION_DAYS);
    const cutoff = Date.now() - (Number.isFinite(days) && days > 0 ? days : DEFAULT_RETENTION_DAYS) * DAY_MS;
    this.#sql.exec("DELETE FROM audit_entries WHERE at < ?", cutoff);
    await this.ctx.storage.setAlarm(Date.now() + DAY_MS);
  }

  /** Entries newest first, filtered; the next cursor continues below the last entry of the page. */
  query(input: AuditSearch): AuditPage {
    const q = auditSearch.parse(input);
    const where: string[] = [];
    const params: SqlStorageValue[] = [];
    const add = (clause: string, value: SqlStorageValue) => {
      where.push(clause);
      params.push(value);
    };
    if (q.before !== undefined) add("id < ?", q.before);
    if (q.actor !== undefined) add("actor_id = ?", q.actor);
    if (q.actorKind !== undefined) add("actor_kind = ?", q.actorKind);
    if (q.action !== undefined) add("action = ?", q.action);
    if (q.namespace !== undefined) add("namespace = ?", q.namespace);
    if (q.from !== undefined) add("at >= ?", q.from);
    if (q.to !== undefined) add("at <= ?", q.to);
    const rows = this.#sql
      .exec<EntryRow>(`SELECT * FROM audit_entries ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`, ...params, q.limit + 1)
      .toArray();
    const items = rows.slice(0, q.limit).map(toEntry);
    return { items, nextCursor: rows.length > q.limit ? auditCursor(items.at(-1)!.id) : null };
  }
}

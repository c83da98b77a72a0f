/**
 * `KeyStore`: one per deployment (`idFromName("global")`). It holds the API keys: their public
 * id, the SHA-256 of the whole key (the key itself is shown once by the edge and never reaches
 * this object), role, namespace scope, expiry, revocation and last use. The edge asks it to
 * check a presented key on every authenticated request.
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import { apiKeyId, type KeyInfo, role, shouldTouchLastUsed, namespaceScope } from "../shared/auth.ts";
import { sameDigest } from "../shared/secrets.ts";
import { fromHex } from "../shared/bytes.ts";
import { ApiError, rpcResult, type RpcResult } from "../shared/errors.ts";
import { z } from "../shared/zod.ts";
import { applyMigrations, type Migration } from "./migrations.ts";

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "api keys",
    sql: `CREATE TABLE api_keys (
      id TEXT PRIMARY KEY,
      key_sha256 TEXT NOT NULL,
      name TEXT NOT NULL,
      role TEXT NOT NULL,
      namespaces TEXT,
      created_at INTEGER NOT NULL,
      expires_at INTEGER,
      revoked_at INTEGER,
      last_used_at INTEGER
    ) WITHOUT ROWID;`,
  },
];

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

const newKeyRecord = z.strictObject({
  id: apiKeyId,
  keySha256: sha256Hex,
  name: z.string().min(1).max(100),
  role,
  namespaces: namespaceScope.nullable(),
  expiresAt: z.number().int().nullable(),
});
export type NewKeyRecord = z.input<typeof newKeyRecord>;

interface KeyRow {
  id: string;
  key_sha256: string;
  name: string;
  role: string;
  namespaces: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
  [column: string]: SqlStorageValue;
}

function toInfo(r: KeyRow): KeyInfo {
  return {
    id: r.id,
    name: r.name,
    role: role.parse(r.role),
    namespaces: r.namespaces === null ? null : (JSON.parse(r.namespaces) as string[]),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  };
}

/** Compared against when the id is unknown, so an unknown id costs the same as a wrong secret. */
const NO_KEY = new Uint8Array(32);

export class KeyStore extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, MIGRATIONS);
    });
  }

  #row(id: string): KeyRow | null {
    return this.#sql.exec<KeyRow>("SELECT * FROM api_keys WHERE id = ?", id).toArray()[0] ?? null;
  }

  create(record: NewKeyRecord): Promise<RpcResult<KeyInfo>> {
    return rpcResult(() => {
      const r = newKeyRecord.parse(record);
      if (this.#row(r.id)) throw new ApiError(409, "conflict", "a key with this id exists; create it again");
      this.#sql.exec(
        "INSERT INTO api_keys (id, key_sha256, name, role, namespaces, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        r.id, r.keySha256, r.name, r.role, r.namespaces ? JSON.stringify(r.namespaces) : null, Date.now(), r.expiresAt,
      );
      return toInfo(this.#row(r.id)!);
    });
  }

  /**
   * The key with this id if `keySha256` is its hash and it is neither revoked nor expired
   * (401 otherwise). Records the use, at most once a minute per key.
   */
  authenticate(id: string, keySha256: string): Promise<RpcResult<KeyInfo>> {
    return rpcResult(() => {
      const invalid = new ApiError(401, "unauthorized", "the API key is not valid");
      if (!apiKeyId.safeParse(id).success || !sha256Hex.safeParse(keySha256).success) throw invalid;
      const row = this.#row(id);
      const matches = sameDigest(row ? fromHex(row.key_sha256) : NO_KEY, fromHex(keySha256));
      if (!row || !matches) throw invalid;
      // The caller holds the real key, so telling it why the key stopped working leaks nothing.
      const now = Date.now();
      if (row.revoked_at !== null) throw new ApiError(401, "unauthorized", "the API key has been revoked", { reason: "revoked" });
      if (row.expires_at !== null && row.expires_at <= now) throw new ApiError(401, "unauthorized", "the API key has expired", { reason: "expired" });
      if (shouldTouchLastUsed(row.last_used_at, now)) {
        this.#sql.exec("UPDATE api_keys SET last_used_at = ? WHERE id = ?", now, id);
        row.last_used_at = now;
      }
      return toInfo(row);
    });
  }

  list(): KeyInfo[] {
    return this.#sql.exec<KeyRow>("SELECT * FROM api_keys ORDER BY created_at, id").toArray().map(toInfo);
  }

  /** Revoke a key; revoking it again keeps the first revocation time. */
  revoke(id: string): Promise<RpcResult<KeyInfo>> {
    return rpcResult(() => {
      const row = apiKeyId.safeParse(id).success ? this.#row(id) : null;
      if (!row) throw new ApiError(404, "not_found", `no API key with id ${id}`);
      this.#sql.exec("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", Date.now(), id);
      return toInfo(this.#row(id)!);
    });
  }
}

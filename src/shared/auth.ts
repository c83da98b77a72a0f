/**
 * Who may do what, as pure functions: roles, principals, the authorization rule, and the format
 * of API keys (greppable prefix, public id for lookup, 256-bit secret; only a SHA-256 is stored).
 * The edge resolves a caller to a `Principal`; `authorize` decides; objects never see secrets.
 * @module
 */
import { base64url, toHex } from "./bytes.ts";
import { namespaceName } from "./schemas.ts";
import { z } from "./zod.ts";

/**
 * `telemetry` is for keys installed on reporting hosts: it may send usage reports and nothing
 * else (reads are public), so a key copied off a host cannot ingest or edit docs.
 */
export const ROLES = ["read", "telemetry", "write", "admin"] as const;
export type Role = (typeof ROLES)[number];
export const role = z.enum(ROLES);

const RANK: Record<Role, number> = { read: 0, telemetry: 1, write: 2, admin: 3 };

export type PrincipalKind = "admin-token" | "api-key" | "jwt" | "access";

export interface Principal {
  kind: PrincipalKind;
  /**
   * Stable id of the caller, unique across kinds (the audit log filters on it): the key id
   * (16 hex), `admin-token`, `jwt:<sub>` or `access:<e-mail, common name or sub>`. Token claims
   * are chosen by whoever signs them, so they are prefixed: a JWT with `sub: "admin-token"` or a
   * key id must not pass for the bootstrap token or that key.
   */
  id: string;
  role: Role;
  /** Namespaces the caller may act in; absent means every namespace. */
  namespaces?: string[];
}

/**
 * A caller whose credentials proved themselves (the key's secret or the token's signature
 * matched) but were refused (revoked, expired, claims not accepted): the audit log names it.
 * Never built from an unverified credential, so nobody can be blamed by a forged one.
 */
export type ProvenCaller = Pick<Principal, "kind" | "id">;

export type Decision = { ok: true } | { ok: false; reason: "role" | "scope"; message: string };

/**
 * Does `principal` hold `need` (in `namespace`, when the action targets one)? Higher roles imply
 * lower ones. Admin actions that are not about one namespace (keys, audit) need an admin without
 * a namespace scope: a scoped admin could otherwise mint itself an unscoped key.
 */
export function authorize(principal: Principal, need: Role, namespace?: string): Decision {
  if (RANK[principal.role] < RANK[need]) {
    return { ok: false, reason: "role", message: `this needs the ${need} role; the credentials have ${principal.role}` };
  }
  const scope = principal.namespaces;
  if (scope) {
    if (namespace === undefined) {
      return { ok: false, reason: "scope", message: "the credentials are limited to some namespaces; this action is not about one namespace" };
    }
    if (!scope.includes(namespace)) {
      return { ok: false, reason: "scope", message: `the credentials do not cover namespace ${namespace}` };
    }
  }
  return { ok: true };
}

/** A namespace scope list as keys and tokens carry it: 1–100 distinct namespace names. */
export const namespaceScope = z
  .array(namespaceName)
  .min(1, "a namespace scope lists at least one namespace (leave it out for all namespaces)")
  .max(100)
  .transform((list) => [...new Set(list)].sort());

// ---------------------------------------------------------------------------------------------
// API keys: `ndk_<16 hex id>_<43 base64url chars of a 32-byte secret>`.

export const API_KEY_PREFIX = "ndk_";
const API_KEY_PATTERN = /^ndk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
export const apiKeyId = z.string().regex(/^[0-9a-f]{16}$/, "a key id is 16 hexadecimal characters");

export function newApiKey(): { id: string; key: string } {
  const id = toHex(crypto.getRandomValues(new Uint8Array(8)));
  return { id, key: `${API_KEY_PREFIX}${id}_${base64url(crypto.getRandomValues(new Uint8Array(32)))}` };
}

/** The id part of a well-formed key, or null (then the caller is not presenting an API key). */
export function apiKeyIdOf(key: string): string | null {
  return API_KEY_PATTERN.exec(key)?.[1] ?? null;
}

/** The token of an `Authorization: Bearer <token>` header; null when absent, `undefined` when malformed. */
export function bearerToken(header: string | undefined): string | null | undefined {
  if (header === undefined || header === "") return null;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? match[1]! : undefined;
}

// ---------------------------------------------------------------------------------------------
// Creating keys (the admin API's body) and what is shown of them.

export const MAX_KEY_TTL_SECONDS = 5 * 366 * 24 * 3600;

export const createKeyBody = z
  .strictObject({
    name: z.string().trim().min(1).max(100),
    role,
    namespaces: namespaceScope.optional(),
    /** Absolute expiry: ISO 8601 with offset, or epoch milliseconds. */
    expiresAt: z.union([z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)), z.number().int().positive()]).optional(),
    /** Relative expiry in seconds. */
    ttlSeconds: z.number().int().min(60).max(MAX_KEY_TTL_SECONDS).optional(),
  })
  .refine((b) => b.expiresAt === undefined || b.ttlSeconds === undefined, { message: "give expiresAt or ttlSeconds, not both", path: ["ttlSeconds"] })
  .refine((b) => !(b.role === "admin" && b.namespaces), { message: "admin keys cannot be limited to namespaces (they manage every key)", path: ["namespaces"] })
  // A report names modules of any namespace, so a scoped telemetry key could never send one.
  .refine((b) => !(b.role === "telemetry" && b.namespaces), { message: "telemetry keys cannot be limited to namespaces (a report may name modules of any namespace)", path: ["namespaces"] });

export type CreateKeyBody = z.infer<typeof createKeyBody>;

/** The expiry a new key gets, or a reason it cannot have it. */
export function keyExpiry(body: Pick<CreateKeyBody, "expiresAt" | "ttlSeconds">, now: number): number | null | { error: string } {
  if (body.ttlSeconds !== undefined) return now + body.ttlSeconds * 1000;
  if (body.expiresAt === undefined) return null;
  if (body.expiresAt <= now) return { error: "expiresAt is in the past" };
  if (body.expiresAt > now + MAX_KEY_TTL_SECONDS * 1000) return { error: "expiresAt is more than five years away" };
  return body.expiresAt;
}

/** A key as the admin API lists it: never the secret, never its hash. */
export interface KeyInfo {
  id: string;
  name: string;
  role: Role;
  namespaces: string[] | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

/** `lastUsedAt` is written at most this often per key, so busy keys do not write on every request. */
export const LAST_USED_RESOLUTION_MS = 60_000;

export function shouldTouchLastUsed(lastUsedAt: number | null, now: number): boolean {
  return lastUsedAt === null || now - lastUsedAt >= LAST_USED_RESOLUTION_MS;
}

// ---------------------------------------------------------------------------------------------
// Token claims (JWT bearer tokens and Cloudflare Access).

/** Claims of an HS256 bearer token: who (`sub`), what (`role`), where (`ns`, optional), until (`exp`). */
export const jwtClaims = z
  .object({
    sub: z.string().min(1).max(200),
    role,
    ns: namespaceScope.optional(),
    exp: z.number(),
  })
  .refine((c) => !(c.role === "admin" && c.ns), { message: "admin tokens cannot be limited to namespaces", path: ["ns"] });

/**
 * Why a verified token's lifetime is not accepted, or null. A token cannot outlive an API key
 * (`exp` at most five years ahead) nor claim to be issued in the future (`iat`), beyond the
 * clock tolerance. jose has checked that both, when present, are numbers.
 */
export function tokenLifetimeProblem(claims: { exp?: unknown; iat?: unknown }, nowSeconds: number, toleranceSeconds: number): string | null {
  if (typeof claims.exp === "number" && claims.exp > nowSeconds + MAX_KEY_TTL_SECONDS + toleranceSeconds) return "the token's exp claim is more than five years away";
  if (typeof claims.iat === "number" && claims.iat > nowSeconds + toleranceSeconds) return "the token's iat claim is in the future";
  return null;
}

/** Claims of a Cloudflare Access token that name the user (service tokens have only `common_name`). */
export const accessClaims = z.object({
  sub: z.string().max(200).optional(),
  email: z.string().max(320).optional(),
  common_name: z.string().max(200).optional(),
});

export function accessPrincipalId(claims: z.infer<typeof accessClaims>): string | null {
  const id = claims.email || claims.common_name || claims.sub;
  return id ? `access:${id}` : null;
}

/** The principal id of a bearer token's subject (see `Principal.id`). */
export function jwtPrincipalId(sub: string): string {
  return `jwt:${sub}`;
}

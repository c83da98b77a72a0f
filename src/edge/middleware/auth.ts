/**
 * Authentication and authorization at the edge. A caller is resolved once per request to a
 * `Principal` from, in this order: the `ADMIN_TOKEN` bootstrap secret, an API key (`ndk_…`,
 * checked by the KeyStore object), an HS256 bearer token (`JWT_SECRET`), or a Cloudflare Access
 * token (`Cf-Access-Jwt-Assertion`, when ACCESS_TEAM_DOMAIN and ACCESS_AUD are set).
 * `requireRole` guards a route: no credentials → 401 with a `WWW-Authenticate` challenge;
 * credentials that do not verify → 401; a role or namespace scope that does not fit → 403.
 * Reads are public and resolve nothing.
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { createRemoteJWKSet, type JWTVerifyGetKey } from "jose";
import { apiKeyIdOf, authorize, bearerToken, type KeyInfo, type Principal, type Role } from "../../shared/auth.ts";
import { sameSecret, sha256Hex } from "../../shared/secrets.ts";
import { accessIssuer, accessRole, TokenRejected, verifyAccessJwt, verifyBearerJwt } from "../../shared/authTokens.ts";
import { ApiError, unwrap } from "../../shared/errors.ts";
import type { AppEnv } from "../env.ts";
import { keyStore } from "../stubs.ts";

/** Optional settings of authentication (secrets and vars that may be absent). */
export interface AuthBindings {
  ADMIN_TOKEN?: string;
  JWT_SECRET?: string;
  JWT_ISSUER?: string;
  JWT_AUDIENCE?: string;
  ACCESS_TEAM_DOMAIN?: string;
  ACCESS_AUD?: string;
  ACCESS_ROLE?: string;
}

const REALM = 'Bearer realm="nixdocs"';
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function unauthorized(c: Context<AppEnv>, message: string, invalidToken: boolean, details?: unknown): ApiError {
  c.header("WWW-Authenticate", invalidToken ? `${REALM}, error="invalid_token"` : REALM);
  return new ApiError(401, "unauthorized", message, details);
}

function refusedKeyReason(details: unknown): boolean {
  const reason = (details as { reason?: unknown } | undefined)?.reason;
  return reason === "revoked" || reason === "expired";
}

/** A refused token: 401, and when its signature verified, the audit log names its subject. */
function rejected(c: Context<AppEnv>, err: TokenRejected, message: string): ApiError {
  if (err.caller) c.set("refusedCaller", err.caller);
  return unauthorized(c, message, true);
}

// Access signing keys, fetched from the team's JWKS and cached per isolate (jose refreshes them
// when a token names a key it has not seen, so Access's key rotation needs nothing here).
const accessKeySets = new Map<string, JWTVerifyGetKey>();

function accessKeys(issuer: string): JWTVerifyGetKey {
  let keys = accessKeySets.get(issuer);
  if (!keys) {
    keys = createRemoteJWKSet(new URL(`${issuer}/cdn-cgi/access/certs`));
    accessKeySets.set(issuer, keys);
  }
  return keys;
}

/** Install the key set used for an Access issuer instead of fetching it (tests have no network). */
export function useAccessKeySet(issuer: string, keys: JWTVerifyGetKey | null): void {
  if (keys) accessKeySets.set(issuer, keys);
  else accessKeySets.delete(issuer);
}

async function resolve(c: Context<AppEnv>): Promise<Principal | null> {
  const env = c.env as Env & AuthBindings;
  const token = bearerToken(c.req.header("authorization"));
  if (token === undefined) throw unauthorized(c, "the Authorization header must be `Bearer <token>`", true);
  if (token !== null) {
    if (env.ADMIN_TOKEN && (await sameSecret(token, env.ADMIN_TOKEN))) return { kind: "admin-token", id: "admin-token", role: "admin" };
    const keyId = apiKeyIdOf(token);
    if (keyId) {
      let key: KeyInfo;
      try {
        key = unwrap(await keyStore(env).authenticate(keyId, await sha256Hex(token)));
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          // The store names the reason only once the secret matched: then the refusal is the key's.
          if (refusedKeyReason(err.details)) c.set("refusedCaller", { kind: "api-key", id: keyId });
          throw unauthorized(c, err.message, true, err.details);
        }
        throw err;
      }
      const principal: Principal = { kind: "api-key", id: key.id, role: key.role };
      if (key.namespaces) principal.namespaces = key.namespaces;
      return principal;
    }
    if (JWT_SHAPE.test(token)) {
      if (!env.JWT_SECRET) throw unauthorized(c, "JWT bearer tokens are not enabled here (no JWT_SECRET)", true);
      try {
        return await verifyBearerJwt(token, { secret: env.JWT_SECRET, issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE });
      } catch (err) {
        if (err instanceof TokenRejected) throw rejected(c, err, err.message);
        throw err;
      }
    }
    throw unauthorized(c, "the bearer token is not valid", true);
  }
  const assertion = c.req.header("cf-access-jwt-assertion");
  if (assertion && env.ACCESS_TEAM_DOMAIN && env.ACCESS_AUD) {
    const issuer = accessIssuer(env.ACCESS_TEAM_DOMAIN);
    try {
      return await verifyAccessJwt(assertion, { issuer, audience: env.ACCESS_AUD, keys: accessKeys(issuer), role: accessRole(env.ACCESS_ROLE) });
    } catch (err) {
      if (err instanceof TokenRejected) throw rejected(c, err, `Cloudflare Access: ${err.message}`);
      throw err;
    }
  }
  return null;
}

/**
 * The caller of this request, resolved once (null: no credentials). Throws a 401 `ApiError`
 * for credentials that do not verify.
 */
export async function principalOf(c: Context<AppEnv>): Promise<Principal | null> {
  const known = c.get("principal");
  if (known !== undefined) return known;
  const principal = await resolve(c);
  c.set("principal", principal);
  return principal;
}

/**
 * Guard a route: the caller needs `role`, in the namespace `namespaceFrom` names when given
 * (an admin holds every role; a scoped key or token only acts in its namespaces).
 */
export function requireRole(role: Role, namespaceFrom?: (c: Context<AppEnv>) => string | undefined): MiddlewareHandler<AppEnv> {
  return createMiddleware<AppEnv>(async (c, next) => {
    const principal = await principalOf(c);
    if (!principal) throw unauthorized(c, "this route needs credentials: `Authorization: Bearer <API key, token or ADMIN_TOKEN>`", false);
    const decision = authorize(principal, role, namespaceFrom?.(c));
    if (!decision.ok) {
      c.header("WWW-Authenticate", `${REALM}, error="insufficient_scope"`);
      throw new ApiError(403, "forbidden", decision.message, { need: role, reason: decision.reason });
    }
    await next();
  });
}

/** The namespace of routes under `/namespaces/:ns`. */
export const namespaceParam = (c: Context<AppEnv>): string | undefined => c.req.param("ns");

/**
 * Docs edits (`PUT` a module, `PATCH` an option): the `write` role in the edited namespace, the
 * same as ingest.
 */
export const requireEditor = requireRole("write", namespaceParam);

/**
 * `POST /api/v1/telemetry`: the `telemetry` role (an API key made for reporting hosts, which can do
 * nothing else), or any higher one. Not about one namespace: a host reports modules of many.
 */
export const requireTelemetryCredential = requireRole("telemetry");

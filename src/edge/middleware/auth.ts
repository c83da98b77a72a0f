/**
 * Write authentication, for now a single bearer token from the `ADMIN_TOKEN` secret. Both sides
 * are hashed before a constant-time comparison, so neither content nor length leaks through
 * timing (the comparison Hono's bearerAuth and Cloudflare's timing-attack guide use).
 * @module
 */
import { createMiddleware } from "hono/factory";
import { ApiError } from "../../shared/errors.ts";
import type { AppEnv } from "../env.ts";

const encoder = new TextEncoder();

async function sameSecret(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([crypto.subtle.digest("SHA-256", encoder.encode(a)), crypto.subtle.digest("SHA-256", encoder.encode(b))]);
  return crypto.subtle.timingSafeEqual(da, db);
}

export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const expected = c.env.ADMIN_TOKEN;
  if (!expected) {
    throw new ApiError(401, "unauthorized", "writes are disabled: the ADMIN_TOKEN secret is not configured");
  }
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) {
    c.header("WWW-Authenticate", 'Bearer realm="nixdocs"');
    throw new ApiError(401, "unauthorized", "this route needs `Authorization: Bearer <token>`");
  }
  if (!(await sameSecret(match[1]!, expected))) {
    c.header("WWW-Authenticate", 'Bearer realm="nixdocs", error="invalid_token"');
    throw new ApiError(401, "unauthorized", "the bearer token is not valid");
  }
  await next();
});

/**
 * The credential `POST /api/v1/telemetry` needs. For now the admin token; this is the one place
 * to swap in a `telemetry`/`write` API key check.
 */
export const requireTelemetryCredential = requireAdmin;

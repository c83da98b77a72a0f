/**
 * The error envelope at the edge: every failure leaves as `{ error: { code, message, details? } }`
 * with its status. Objects return expected failures as `RpcResult`s that the routes unwrap;
 * anything unexpected is logged with the request id and answered as a bare 500 that leaks nothing.
 * @module
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ApiError, type ErrorStatus } from "../../shared/errors.ts";
import type { AppEnv } from "../env.ts";

export function errorResponse(c: Context<AppEnv>, err: ApiError): Response {
  // A 429 says when to come back: `details.retryAfterSeconds` becomes the Retry-After header.
  const retryAfter = (err.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  if (err.status === 429 && typeof retryAfter === "number") c.header("Retry-After", String(retryAfter));
  return c.json(err.toBody(), err.status);
}

export function onError(err: Error, c: Context<AppEnv>): Response {
  if (err instanceof ApiError) return errorResponse(c, err);
  if (err instanceof HTTPException) {
    const status = err.status as ErrorStatus;
    const code = status === 413 ? "payload_too_large" : status === 401 ? "unauthorized" : status === 404 ? "not_found" : "bad_request";
    return errorResponse(c, new ApiError(status, code, err.message || "request rejected"));
  }
  console.error("edge: unhandled error", c.get("requestId"), err.stack ?? String(err));
  return errorResponse(c, new ApiError(500, "internal_error", "internal error; quote the request id when reporting it", { requestId: c.get("requestId") }));
}

export function notFound(c: Context<AppEnv>): Response {
  return errorResponse(c, new ApiError(404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));
}

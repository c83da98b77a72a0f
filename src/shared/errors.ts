/**
 * One error shape for the whole API: `{ error: { code, message, details? } }`.
 * `ApiError` is thrown anywhere (edge or object) and turned into that body by the edge.
 * @module
 */

export type ErrorCode =
  | "bad_request"
  | "invalid_json"
  | "validation_failed"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "namespace_not_found"
  | "module_not_found"
  | "option_not_found"
  | "version_not_found"
  | "payload_too_large"
  | "unsupported_media_type"
  | "query_empty"
  | "query_too_long"
  | "method_not_allowed"
  | "upgrade_required"
  | "conflict"
  | "rate_limited"
  | "internal_error"
  | "unavailable";

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 426 | 429 | 500 | 503;

export class ApiError extends Error {
  readonly status: ErrorStatus;
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(status: ErrorStatus, code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }

  toBody(): ErrorBody {
    const error: ErrorBody["error"] = { code: this.code, message: this.message };
    if (this.details !== undefined) error.details = this.details;
    return { error };
  }
}

/**
 * Expected failures cross RPC as values, not exceptions: an exception thrown by an RPC method
 * loses its class and status on the way, and workerd logs it as uncaught. Objects return an
 * `RpcResult`; the edge unwraps it back into an `ApiError`.
 */
export type RpcResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: { status: ErrorStatus; code: ErrorCode; message: string; details?: unknown } };

/** Run `fn`, returning its value or the `ApiError` it threw as an `RpcResult`. Other errors propagate. */
export async function rpcResult<T>(fn: () => T | Promise<T>): Promise<RpcResult<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (err instanceof ApiError) return { ok: false, error: { status: err.status, code: err.code, message: err.message, details: err.details } };
    throw err;
  }
}

export function unwrap<T>(result: RpcResult<T>): T {
  if (result.ok) return result.value;
  const { status, code, message, details } = result.error;
  throw new ApiError(status, code, message, details);
}

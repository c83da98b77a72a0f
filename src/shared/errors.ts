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
  | "internal_error"
  | "unavailable";

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 413 | 415 | 500 | 503;

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
 * Errors thrown inside a Durable Object reach the caller over RPC as plain `Error`s: only the
 * message survives. Objects therefore encode an `ApiError` into the message with this prefix,
 * and the edge decodes it back, so a 404 raised in a shard stays a 404 at the edge.
 */
const WIRE_PREFIX = "nixdocs-api-error:";

export function toWireError(err: ApiError): Error {
  return new Error(WIRE_PREFIX + JSON.stringify({ s: err.status, c: err.code, m: err.message, d: err.details }));
}

export function fromWireError(err: unknown): ApiError | null {
  if (err instanceof ApiError) return err;
  const message = err instanceof Error ? err.message : typeof err === "string" ? err : "";
  const at = message.indexOf(WIRE_PREFIX);
  if (at < 0) return null;
  try {
    const o = JSON.parse(message.slice(at + WIRE_PREFIX.length)) as { s: ErrorStatus; c: ErrorCode; m: string; d?: unknown };
    return new ApiError(o.s, o.c, o.m, o.d);
  } catch {
    return null;
  }
}

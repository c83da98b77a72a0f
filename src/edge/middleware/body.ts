/**
 * Reading JSON bodies safely: size limit before parsing (413, also for chunked bodies without a
 * Content-Length), JSON content type (415), strict UTF-8 and syntax (400), and a nesting-depth
 * limit so hostile documents cannot exhaust the stack of later recursive code (400).
 * @module
 */
import { bodyLimit } from "hono/body-limit";
import type { Context } from "hono";
import { ApiError } from "../../shared/errors.ts";
import { LIMITS } from "../../shared/limits.ts";
import type { AppEnv } from "../env.ts";
import { errorResponse } from "./errors.ts";

export const MAX_JSON_DEPTH = 64;

export function maxBodyBytes(env: Env): number {
  const n = Number(env.MAX_BODY_BYTES);
  return Number.isFinite(n) && n > 0 ? n : LIMITS.maxBodyBytes;
}

/** Refuses bodies over `MAX_BODY_BYTES` (or over `cap` when that is smaller) with 413. */
export function limitBody(cap = Number.POSITIVE_INFINITY) {
  return async (c: Context<AppEnv>, next: () => Promise<void>) => {
    const max = Math.min(cap, maxBodyBytes(c.env));
    return bodyLimit({
      maxSize: max,
      onError: (ctx) => errorResponse(ctx as Context<AppEnv>, new ApiError(413, "payload_too_large", `the request body is larger than ${max} bytes; send smaller batches (npm run ingest does)`, { limit: max })),
    })(c, next);
  };
}

/** Depth of nested arrays/objects in JSON text, without parsing (strings are skipped). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92) i++;
      else if (ch === 34) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 || ch === 91) max = Math.max(max, ++depth);
    else if (ch === 125 || ch === 93) depth--;
  }
  return max;
}

export async function readJson(c: Context<AppEnv>): Promise<unknown> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") {
    throw new ApiError(415, "unsupported_media_type", "send the body as `Content-Type: application/json`");
  }
  const bytes = await c.req.arrayBuffer();
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError(400, "invalid_json", "the body is not valid UTF-8");
  }
  if (jsonDepth(text) > MAX_JSON_DEPTH) {
    throw new ApiError(400, "invalid_json", `the body nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, "invalid_json", `the body is not valid JSON: ${err instanceof Error ? err.message : "parse error"}`);
  }
}

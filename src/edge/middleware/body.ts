/**
 * Reading JSON bodies safely: size limit before parsing (413, also for chunked bodies without a
 * Content-Length), JSON content type (415), strict UTF-8 and syntax (400), a nesting-depth limit
 * so hostile documents cannot exhaust the stack of later recursive code (400), and a limit on the
 * longest string (413 `string_too_long`), both found in one pass over the text before it is parsed.
 * @module
 */
import { bodyLimit } from "hono/body-limit";
import type { Context } from "hono";
import { ApiError } from "../../shared/errors.ts";
import { LIMITS } from "../../shared/limits.ts";
import type { AppEnv } from "../env.ts";
import { errorResponse } from "./errors.ts";

export const MAX_JSON_DEPTH = LIMITS.maxJsonDepth;

/**
 * Refuses bodies over `MAX_BODY_BYTES` (or over `cap` when that is smaller) with 413; `advice`
 * ends the message with what the sender can do instead.
 */
export function limitBody(cap = Number.POSITIVE_INFINITY, advice = "send smaller batches (npm run ingest does)") {
  return async (c: Context<AppEnv>, next: () => Promise<void>) => {
    const max = Math.min(cap, c.get("config").maxBodyBytes);
    return bodyLimit({
      maxSize: max,
      onError: (ctx) => errorResponse(ctx as Context<AppEnv>, new ApiError(413, "payload_too_large", `the request body is larger than ${max} bytes; ${advice}`, { limit: max })),
    })(c, next);
  };
}

/**
 * In one pass over JSON text, without parsing: the deepest nesting of arrays/objects, the longest
 * string literal (keys too, in characters as sent, escapes included), and whether a `\uD800`-style
 * escape leaves a surrogate unpaired (JSON.parse accepts it; it is not text and cannot be stored as UTF-8).
 */
export function scanJson(text: string): { depth: number; longestString: number; loneSurrogate: boolean } {
  let depth = 0;
  let max = 0;
  let longest = 0;
  let stringStart = -1;
  let loneSurrogate = false;
  /** The previous thing in this string was a high-surrogate escape: a low one must come next. */
  let highPending = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (stringStart >= 0) {
      if (ch === 92 && text.charCodeAt(i + 1) === 117 /* \u */) {
        const unit = parseInt(text.slice(i + 2, i + 6), 16);
        const isLow = unit >= 0xdc00 && unit <= 0xdfff;
        if (isLow !== highPending) loneSurrogate = true;
        highPending = unit >= 0xd800 && unit <= 0xdbff;
        i += 5;
        continue;
      }
      if (highPending) loneSurrogate = true;
      highPending = false;
      if (ch === 92) i++;
      else if (ch === 34) {
        longest = Math.max(longest, i - stringStart - 1);
        stringStart = -1;
      }
    } else if (ch === 34) stringStart = i;
    else if (ch === 123 || ch === 91) max = Math.max(max, ++depth);
    else if (ch === 125 || ch === 93) depth--;
  }
  // An unterminated string still counts (the parse will refuse it anyway).
  if (stringStart >= 0) longest = Math.max(longest, text.length - stringStart - 1);
  return { depth: max, longestString: longest, loneSurrogate: loneSurrogate || highPending };
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
  const scan = scanJson(text);
  if (scan.depth > MAX_JSON_DEPTH) {
    throw new ApiError(400, "invalid_json", `the body nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  if (scan.loneSurrogate) {
    throw new ApiError(400, "invalid_json", "the body holds an unpaired surrogate escape (such as \\ud800), which is not text");
  }
  const maxString = c.get("config").maxJsonStringChars;
  if (scan.longestString > maxString) {
    throw new ApiError(413, "string_too_long", `the body holds a string of ${scan.longestString} characters; the longest accepted is ${maxString}`, { limit: maxString });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, "invalid_json", `the body is not valid JSON: ${err instanceof Error ? err.message : "parse error"}`);
  }
}

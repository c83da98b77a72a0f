/** Opaque page cursors: base64url JSON, validated on the way back in. @module */
import { base64url } from "./bytes.ts";
import { ApiError } from "./errors.ts";

export function encodeCursor(value: Record<string, string | number>): string {
  return base64url(new TextEncoder().encode(JSON.stringify(value)));
}

export function decodeCursor(cursor: string): Record<string, unknown> {
  try {
    const bin = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
    if (value && typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw new ApiError(400, "bad_request", "the cursor is not one this API issued");
}

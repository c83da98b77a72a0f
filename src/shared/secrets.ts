/**
 * Hashing and constant-time comparison of secrets with the Workers-only
 * `crypto.subtle.timingSafeEqual` (not in Node's WebCrypto, so the CLI's type check leaves this
 * file out). `timingSafeEqual` needs equal lengths and is not constant in length, so secrets are
 * hashed first and digests compared (Cloudflare's timing-attack guide; Hono's bearerAuth).
 * @module
 */
import { toHex } from "./bytes.ts";

const encoder = new TextEncoder();

export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

export async function sha256Hex(text: string): Promise<string> {
  return toHex(await sha256(text));
}

/** Equal-length digests compared without an early exit (`timingSafeEqual` is not constant in length). */
export function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}

/** Two secrets compared in constant time: both are hashed first, so length does not leak either. */
export async function sameSecret(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([sha256(a), sha256(b)]);
  return sameDigest(da, db);
}

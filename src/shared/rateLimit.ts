/**
 * Rate limiting, the pure part: the token-bucket algorithm (clock injected), the limit syntax of
 * the `RATE_LIMIT_*` vars and the choice of which layer's figures a response reports.
 *
 * Why a token bucket and not a sliding window: its state is two numbers per client (tokens,
 * last refill), it is exact (a sliding-window *counter* approximates the previous window, a
 * sliding *log* stores every request), it has no window-boundary burst of 2× the limit as a fixed
 * window has, and the wait until the next allowed request (`Retry-After`) follows from the state
 * exactly. A bucket of `limit` tokens refilling `limit` tokens per `period` allows a burst of
 * `limit` and `limit` per period sustained, which is what "600/60" reads as.
 * @module
 */
import { z } from "./zod.ts";

/** `limit` requests per `periodSeconds`. */
export interface RateRule {
  limit: number;
  periodSeconds: number;
}

/** What a limiter keeps per bucket; `updatedAt` in ms since the epoch. */
export interface BucketState {
  tokens: number;
  updatedAt: number;
}

/** One layer's answer, in the units of the IETF RateLimit header fields draft. */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  /** Requests left now (whole tokens). */
  remaining: number;
  /** Seconds until the bucket is full again (the quota fully "resets"). */
  resetSeconds: number;
  /** Seconds until the next request would be allowed; 0 when allowed. */
  retryAfterSeconds: number;
}

/** Tokens taken in advance for an edge isolate to spend without a round trip (see `leaseSize`). */
export interface RateGrant extends RateDecision {
  leased: number;
}

/**
 * How many tokens an isolate asks for in advance: 1% of the limit (none for limits under 100, which
 * stay exact per request). Leased tokens are taken from the bucket at once, so leasing can only
 * refuse a little early (tokens an isolate leased and did not spend), never let more through.
 */
export function leaseSize(rule: RateRule): number {
  return Math.floor(rule.limit / 100);
}

/**
 * Take `cost` tokens from a bucket at time `now` (ms), plus up to `lease` more for the caller to
 * spend on its own, granted only from the upper half of the bucket so decisions near the limit stay
 * per request. A missing state is a full bucket. Tokens never exceed the limit, also when the rule
 * shrank since the state was written, and a clock that went backwards refills nothing.
 */
export function takeTokens(state: BucketState | null, rule: RateRule, now: number, cost = 1, lease = 0): { state: BucketState; decision: RateGrant } {
  const perMs = rule.limit / (rule.periodSeconds * 1000);
  const elapsed = state ? Math.max(0, now - state.updatedAt) : 0;
  const before = state ? Math.min(rule.limit, state.tokens + elapsed * perMs) : rule.limit;
  const allowed = before >= cost;
  const afterCost = allowed ? before - cost : before;
  const leased = allowed ? Math.max(0, Math.min(lease, Math.floor(afterCost - rule.limit / 2))) : 0;
  const tokens = afterCost - leased;
  const next = { tokens, updatedAt: state ? Math.max(now, state.updatedAt) : now };
  return {
    state: next,
    decision: {
      allowed,
      limit: rule.limit,
      remaining: Math.floor(tokens),
      resetSeconds: Math.ceil((rule.limit - tokens) / perMs / 1000),
      retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((cost - tokens) / perMs / 1000)),
      leased,
    },
  };
}

/** When (ms) the bucket will be full again if nobody takes from it: from then on it is the same as no bucket. */
export function bucketFullAt(state: BucketState, rule: RateRule): number {
  const perMs = rule.limit / (rule.periodSeconds * 1000);
  return state.updatedAt + Math.ceil(Math.max(0, rule.limit - state.tokens) / perMs);
}

/**
 * The figures a response carries when several layers apply: a refusing layer (the longest wait)
 * if any, else the layer with the fewest requests left (the IETF draft's "most restrictive").
 * Layers without figures (a Workers Rate Limiting binding that allowed) are left out by callers.
 */
export function mostRestrictive<T extends RateDecision>(decisions: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const d of decisions) {
    if (!best) best = d;
    else if (!d.allowed && (best.allowed || d.retryAfterSeconds > best.retryAfterSeconds)) best = d;
    else if (d.allowed && best.allowed && (d.remaining < best.remaining || (d.remaining === best.remaining && d.resetSeconds > best.resetSeconds))) best = d;
  }
  return best;
}

/** A limit as written in `wrangler.jsonc`: `"<requests>/<seconds>"` (e.g. `"600/60"`) or `"off"`. */
export const rateRuleText = z
  .string()
  .trim()
  .transform((text, ctx): RateRule | null => {
    if (text === "off") return null;
    const m = /^(\d{1,9})\s*\/\s*(\d{1,7})$/.exec(text);
    const limit = m ? Number(m[1]) : 0;
    const periodSeconds = m ? Number(m[2]) : 0;
    if (!m || limit < 1 || periodSeconds < 1) {
      ctx.addIssue({ code: "custom", message: `expected "<requests>/<seconds>" with both at least 1 (such as "600/60"), or "off"; got ${JSON.stringify(text.slice(0, 40))}` });
      return z.NEVER;
    }
    return { limit, periodSeconds };
  });

/** The route classes with a limit of their own. */
export const ROUTE_CLASSES = ["search", "read", "write", "admin"] as const;
export type RouteClass = (typeof ROUTE_CLASSES)[number];

/** The limits of each layer; `null` turns a layer off. */
export interface RateLimitConfig {
  ip: RateRule | null;
  key: RateRule | null;
  route: Record<RouteClass, RateRule | null>;
  global: RateRule | null;
}

/**
 * The part of a client address a per-IP bucket is keyed on: an IPv4 address whole, an IPv6
 * address by its /64 prefix (one subscriber usually holds a whole /64, and could otherwise take a
 * fresh bucket per address). Expects a valid address (the edge validates it first).
 */
export function clientAddressKey(ip: string): string {
  if (!ip.includes(":")) return ip;
  // An embedded IPv4 tail (::ffff:192.0.2.1) stands for two groups.
  const groupsOf = (part: string) => (part ? part.split(":").flatMap((g) => (g.includes(".") ? ["0", "0"] : [g])) : []);
  const [head = "", tail] = ip.toLowerCase().split("::");
  const left = groupsOf(head);
  const right = tail === undefined ? [] : groupsOf(tail);
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/** Which limit class a request falls in: writes and admin routes by method/path, searches, the rest reads. */
export function routeClass(method: string, path: string): RouteClass {
  if (path === "/api/v1/admin" || path.startsWith("/api/v1/admin/")) return "admin";
  if (method !== "GET" && method !== "HEAD") return "write";
  if (path === "/api/v1/search" || path.startsWith("/api/v1/search/")) return "search";
  return "read";
}

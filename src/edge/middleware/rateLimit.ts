/**
 * Rate limiting at the edge, in layers: per client IP (`CF-Connecting-IP`; IPv6 by /64), per bearer credential
 * when one is sent, per route class (search / read / write / admin, shared by all callers) and
 * global. Every layer is one bucket: at most one `RateLimiter` object round trip, asked in stages
 * (see `STAGES`), or a Workers Rate Limiting binding when one is bound for that layer (`RATE_LIMITER_<LAYER>`).
 * Far from its limit a bucket leases this isolate 1% of its limit for up to a second, spent here
 * without round trips; near the limit every request asks the object, so decisions there are exact.
 * A request refused by one layer has used a token of the layers of earlier stages only.
 *
 * Every API response carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` of the
 * most restrictive layer (IETF httpapi ratelimit-headers draft); a refused request gets 429 with
 * `Retry-After` and the error envelope, before any auth, body parsing or shard work.
 *
 * A layer whose limiter fails (an object error) lets the request through and logs: an outage of
 * the limiter should not take the whole API down with it.
 * @module
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { ApiError, unwrap } from "../../shared/errors.ts";
import { clientAddressKey, leaseSize, mostRestrictive, routeClass, type RateDecision, type RateGrant, type RateLimitConfig, type RateRule } from "../../shared/rateLimit.ts";
import { z } from "../../shared/zod.ts";
import type { AppEnv } from "../env.ts";
import { parseOr400 } from "../validate.ts";
import { errorResponse } from "./errors.ts";

/** The Workers Rate Limiting binding (`ratelimits` in wrangler.jsonc): the runtime's own `RateLimit` interface. */
export type RateLimitBinding = RateLimit;

type LayerName = "ip" | "key" | "route" | "global";

interface Layer {
  name: LayerName;
  bucket: string;
  rule: RateRule;
  binding?: RateLimitBinding;
}

interface LayerDecision extends RateDecision {
  layer: LayerName;
  /** False for a binding that allowed: it reports no figures. */
  hasFigures: boolean;
}

function isBinding(v: unknown): v is RateLimitBinding {
  return !!v && typeof v === "object" && typeof (v as { limit?: unknown }).limit === "function";
}

/** `RATE_LIMITER_IP`, `RATE_LIMITER_SEARCH`, …: a Workers Rate Limiting binding for that layer, if bound. */
function bindingFor(env: Env, name: string): RateLimitBinding | undefined {
  const v = (env as unknown as Record<string, unknown>)[`RATE_LIMITER_${name.toUpperCase()}`];
  return isBinding(v) ? v : undefined;
}

const encoder = new TextEncoder();

/** First 16 hex digits of SHA-256: buckets never hold a raw IP address or token. */
async function shortHash(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  return Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

const clientHeaders = z.object({
  // Set by Cloudflare on every request; absent under local tools, where all callers share one bucket.
  "cf-connecting-ip": z.union([z.ipv4(), z.ipv6()]).optional(),
  authorization: z.string().max(4096, "the Authorization header is longer than 4096 characters").optional(),
});

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** What the limiter reads of a request. */
interface ClientRequest {
  method: string;
  path: string;
  headers: Headers;
}

async function layersFor(env: Env, req: ClientRequest, cfg: RateLimitConfig): Promise<Layer[]> {
  const headers = parseOr400(clientHeaders, { "cf-connecting-ip": req.headers.get("cf-connecting-ip") ?? undefined, authorization: req.headers.get("authorization") ?? undefined }, "header");
  const cls = routeClass(req.method, req.path);
  const bearer = headers.authorization ? BEARER.exec(headers.authorization)?.[1] : undefined;
  const [ipHash, keyHash] = await Promise.all([shortHash(clientAddressKey(headers["cf-connecting-ip"] ?? "local")), bearer ? shortHash(bearer) : undefined]);
  const layers: Layer[] = [];
  const add = (name: LayerName, bindingName: string, bucket: string, rule: RateRule | null) => {
    if (rule) layers.push({ name, bucket, rule, binding: bindingFor(env, bindingName) });
  };
  add("ip", "ip", `ip:${ipHash}`, cfg.ip);
  if (keyHash) add("key", "key", `key:${keyHash}`, cfg.key);
  add("route", cls, `route:${cls}`, cfg.route[cls]);
  add("global", "global", "global", cfg.global);
  return layers;
}

/** How long an isolate may spend leased tokens; unspent ones are lost (the limit is never exceeded). */
const LEASE_MS = 1_000;

interface Lease {
  tokens: number;
  expiresAt: number;
  grant: RateGrant;
}

/** Leased tokens of this isolate, by bucket and rule (an environment with other limits is another lease). */
const leases = new Map<string, Lease>();

function spendLease(key: string, now: number): RateDecision | null {
  const lease = leases.get(key);
  if (!lease) return null;
  if (lease.expiresAt <= now || lease.tokens < 1) {
    leases.delete(key);
    return null;
  }
  lease.tokens--;
  const { leased: _leased, ...figures } = lease.grant;
  return { ...figures, remaining: lease.grant.remaining + lease.tokens };
}

async function take(env: Env, layer: Layer): Promise<RateDecision> {
  const key = `${layer.bucket}|${layer.rule.limit}/${layer.rule.periodSeconds}`;
  const now = Date.now();
  const spent = spendLease(key, now);
  if (spent) return spent;
  const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(layer.bucket));
  const grant = unwrap(await stub.take({ bucket: layer.bucket, limit: layer.rule.limit, periodSeconds: layer.rule.periodSeconds, lease: leaseSize(layer.rule) }));
  if (grant.leased > 0) {
    // Keep the map small in a long-lived isolate that has seen many clients.
    if (leases.size >= 10_000) for (const [k, l] of leases) if (l.expiresAt <= now) leases.delete(k);
    // Concurrent misses each bring a lease: add them up, so no granted token is dropped.
    const held = leases.get(key);
    if (held && held.expiresAt > now) leases.set(key, { tokens: held.tokens + grant.leased, expiresAt: Math.min(held.expiresAt, now + LEASE_MS), grant });
    else leases.set(key, { tokens: grant.leased, expiresAt: now + LEASE_MS, grant });
  }
  const { leased, ...figures } = grant;
  return { ...figures, remaining: figures.remaining + leased };
}

async function check(env: Env, layer: Layer): Promise<LayerDecision | null> {
  try {
    if (layer.binding) {
      // The binding answers yes or no only; a refusal reports the configured rule, waiting a whole period.
      const { success } = await layer.binding.limit({ key: layer.bucket });
      const { limit, periodSeconds } = layer.rule;
      return success
        ? { layer: layer.name, hasFigures: false, allowed: true, limit, remaining: limit, resetSeconds: 0, retryAfterSeconds: 0 }
        : { layer: layer.name, hasFigures: true, allowed: false, limit, remaining: 0, resetSeconds: periodSeconds, retryAfterSeconds: periodSeconds };
    }
    return { layer: layer.name, hasFigures: true, ...(await take(env, layer)) };
  } catch (err) {
    console.error("rate limit: layer failed, letting the request through", layer.name, err instanceof Error ? err.message : String(err));
    return null;
  }
}

/**
 * Layers are asked in stages, each only when the ones before allowed the request: the client's own
 * IP first, then its credential, then the buckets every caller shares (route class and global,
 * together). So a client over its own limit spends nothing of the shared buckets (one client
 * cannot starve the others), and junk credentials cost a bucket each only within the IP's limit.
 */
const STAGES: readonly (readonly LayerName[])[] = [["ip"], ["key"], ["route", "global"]];

async function decide(env: Env, layers: readonly Layer[]): Promise<LayerDecision[]> {
  const decisions: LayerDecision[] = [];
  for (const stage of STAGES) {
    const asked = layers.filter((l) => stage.includes(l.name));
    if (!asked.length) continue;
    const answers = (await Promise.all(asked.map((l) => check(env, l)))).filter((d): d is LayerDecision => d !== null);
    decisions.push(...answers);
    if (answers.some((d) => !d.allowed)) break;
  }
  return decisions;
}

/** The limiter's verdict on a request: the figures to report, and the 429 when it is refused. */
export interface RateVerdict {
  headers: Record<string, string>;
  refused: ApiError | null;
}

/**
 * Ask the layers for `req` (API requests, and WebSocket connects to the live rooms, which count as
 * reads): the most restrictive layer's `RateLimit-*` headers, and a 429 with `Retry-After` when
 * a layer refuses.
 */
export async function rateVerdict(env: Env, req: ClientRequest, cfg: RateLimitConfig): Promise<RateVerdict> {
  const decisions = await decide(env, await layersFor(env, req, cfg));
  const shown = mostRestrictive(decisions.filter((d) => d.hasFigures));
  if (!shown) return { headers: {}, refused: null };
  const headers: Record<string, string> = {
    "RateLimit-Limit": String(shown.limit),
    "RateLimit-Remaining": String(shown.remaining),
    "RateLimit-Reset": String(shown.resetSeconds),
  };
  if (shown.allowed) return { headers, refused: null };
  headers["Retry-After"] = String(shown.retryAfterSeconds);
  const refused = new ApiError(429, "rate_limited", `too many requests (${shown.layer} limit: ${shown.limit}); retry after ${shown.retryAfterSeconds} s`, {
    layer: shown.layer,
    limit: shown.limit,
    retryAfterSeconds: shown.retryAfterSeconds,
  });
  return { headers, refused };
}

export const rateLimit = createMiddleware<AppEnv>(async (c, next) => {
  const verdict = await rateVerdict(c.env, { method: c.req.method, path: c.req.path, headers: c.req.raw.headers }, c.get("config").rateLimits);
  const setHeaders = () => {
    for (const [name, value] of Object.entries(verdict.headers)) c.header(name, value);
  };
  if (verdict.refused) {
    setHeaders();
    return errorResponse(c, verdict.refused);
  }
  await next();
  setHeaders();
});

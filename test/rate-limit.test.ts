/**
 * Rate limiting: the token bucket (clock injected), the limit syntax of the vars, the
 * `RateLimiter` object across eviction, and the layered middleware with its headers, its 429s and
 * the Workers Rate Limiting binding adapter (a fake binding in the documented shape).
 */
import { abortAllDurableObjects, createExecutionContext, evictDurableObject, runDurableObjectAlarm, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/edge/app.ts";
import { routeLive } from "../src/edge/live.ts";
import type { RateLimitBinding } from "../src/edge/middleware/rateLimit.ts";
import type { RateLimiter } from "../src/objects/RateLimiter.ts";
import { parseServiceConfig } from "../src/shared/config.ts";
import { unwrap } from "../src/shared/errors.ts";
import { bucketFullAt, clientAddressKey, mostRestrictive, routeClass, takeTokens, type BucketState, type RateDecision } from "../src/shared/rateLimit.ts";
import { ADMIN, api, json } from "./helpers.ts";

const RULE = { limit: 3, periodSeconds: 60 };

describe("token bucket (takeTokens)", () => {
  it("allows a burst of `limit`, then refuses with the exact wait for one token", () => {
    let state: BucketState | null = null;
    const seen: RateDecision[] = [];
    for (let i = 0; i < 4; i++) {
      const r = takeTokens(state, RULE, 1_000_000);
      state = r.state;
      seen.push(r.decision);
    }
    expect(seen.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(seen.map((d) => d.remaining)).toEqual([2, 1, 0, 0]);
    // One token per 20 s: the fourth waits 20 s, and the bucket is full 60 s after it emptied.
    expect(seen[3]).toMatchObject({ limit: 3, retryAfterSeconds: 20, resetSeconds: 60 });
    expect(seen[0]).toMatchObject({ retryAfterSeconds: 0, resetSeconds: 20 });
  });

  it("refills with time, never above the limit, and not when the clock goes backwards", () => {
    const empty: BucketState = { tokens: 0, updatedAt: 0 };
    expect(takeTokens(empty, RULE, 19_999).decision.allowed).toBe(false);
    expect(takeTokens(empty, RULE, 20_000).decision).toMatchObject({ allowed: true, remaining: 0 });
    expect(takeTokens(empty, RULE, 10 * 60_000).decision.remaining).toBe(2);
    const back = takeTokens({ tokens: 0.5, updatedAt: 50_000 }, RULE, 10_000);
    expect(back.decision.allowed).toBe(false);
    expect(back.state.updatedAt).toBe(50_000);
  });

  it("leases tokens in advance from the upper half of the bucket only", () => {
    const rule = { limit: 1000, periodSeconds: 60 };
    const first = takeTokens(null, rule, 0, 1, 10);
    expect(first.decision).toMatchObject({ allowed: true, leased: 10, remaining: 989 });
    // Near the middle the lease shrinks to what lies above half, then stops.
    expect(takeTokens({ tokens: 505, updatedAt: 0 }, rule, 0, 1, 10).decision.leased).toBe(4);
    expect(takeTokens({ tokens: 400, updatedAt: 0 }, rule, 0, 1, 10).decision).toMatchObject({ allowed: true, leased: 0, remaining: 399 });
    expect(takeTokens({ tokens: 0, updatedAt: 0 }, rule, 0, 1, 10).decision).toMatchObject({ allowed: false, leased: 0 });
  });

  it("says when a bucket will be full again", () => {
    expect(bucketFullAt({ tokens: 1, updatedAt: 1_000 }, RULE)).toBe(1_000 + 40_000);
    expect(bucketFullAt({ tokens: 3, updatedAt: 1_000 }, RULE)).toBe(1_000);
  });

  it("clamps tokens saved under a larger limit to the new one", () => {
    const r = takeTokens({ tokens: 500, updatedAt: 0 }, RULE, 0);
    expect(r.decision.remaining).toBe(2);
  });

  it("reports the most restrictive layer: a refusal with the longest wait, else the fewest remaining", () => {
    const d = (allowed: boolean, remaining: number, retryAfterSeconds = 0, resetSeconds = 1) => ({ allowed, limit: 10, remaining, resetSeconds, retryAfterSeconds });
    expect(mostRestrictive([d(true, 5), d(true, 2), d(true, 9)])?.remaining).toBe(2);
    expect(mostRestrictive([d(true, 0), d(false, 0, 3), d(false, 0, 7)])?.retryAfterSeconds).toBe(7);
    expect(mostRestrictive([d(true, 2, 0, 5), d(true, 2, 0, 30)])?.resetSeconds).toBe(30);
    expect(mostRestrictive([])).toBeUndefined();
  });

  it("keys IPv4 clients by address and IPv6 clients by their /64", () => {
    expect(clientAddressKey("192.0.2.7")).toBe("192.0.2.7");
    expect(clientAddressKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(clientAddressKey("2001:0DB8:0000:0000:1:2:3:4")).toBe("2001:db8:0:0::/64");
    expect(clientAddressKey("2001:db8:1:2::")).toBe("2001:db8:1:2::/64");
    expect(clientAddressKey("2001:db8:1:2:ffff::9")).toBe("2001:db8:1:2::/64");
    expect(clientAddressKey("::1")).toBe("0:0:0:0::/64");
    expect(clientAddressKey("::ffff:192.0.2.1")).toBe("0:0:0:0::/64");
  });

  it("classes routes as search, read, write and admin", () => {
    expect(routeClass("GET", "/api/v1/search")).toBe("search");
    expect(routeClass("HEAD", "/api/v1/namespaces/x")).toBe("read");
    expect(routeClass("POST", "/api/v1/namespaces/x/modules/batch")).toBe("write");
    expect(routeClass("DELETE", "/api/v1/namespaces/x")).toBe("write");
    expect(routeClass("GET", "/api/v1/admin/keys")).toBe("admin");
  });
});

const VARS = {
  RATE_LIMIT_IP: "600/60",
  RATE_LIMIT_KEY: "off",
  RATE_LIMIT_SEARCH: "100/10",
  RATE_LIMIT_READ: "1000/60",
  RATE_LIMIT_WRITE: "60/60",
  RATE_LIMIT_ADMIN: "10/60",
  RATE_LIMIT_GLOBAL: "5000/60",
};

describe("configuration (wrangler.jsonc vars)", () => {
  it("parses limits, defaults the body limits and reads CORS origins", () => {
    const cfg = parseServiceConfig({ ...VARS, CORS_ORIGINS: "https://a.example, http://localhost:5173" });
    expect(cfg.rateLimits.ip).toEqual({ limit: 600, periodSeconds: 60 });
    expect(cfg.rateLimits.key).toBeNull();
    expect(cfg.rateLimits.route.search).toEqual({ limit: 100, periodSeconds: 10 });
    expect(cfg.maxBodyBytes).toBe(8 * 1024 * 1024);
    expect(cfg.corsOrigins).toEqual(["https://a.example", "http://localhost:5173"]);
  });

  it("names every bad var in one clear error", () => {
    const bad = { ...VARS, RATE_LIMIT_IP: "600 per minute", RATE_LIMIT_GLOBAL: "0/60", MAX_BODY_BYTES: "-1", CORS_ORIGINS: "example.org" };
    delete (bad as Partial<typeof VARS>).RATE_LIMIT_WRITE;
    let message = "";
    try {
      parseServiceConfig(bad);
    } catch (err) {
      message = (err as Error).message;
    }
    for (const name of ["RATE_LIMIT_IP", "RATE_LIMIT_GLOBAL", "RATE_LIMIT_WRITE: missing", "MAX_BODY_BYTES", "CORS_ORIGINS"]) expect(message).toContain(name);
    expect(message).toContain('"600/60"');
  });

  it("checks every other var's form too: no silent fallback (an ACCESS_ROLE of `Read` is not `write`)", () => {
    for (const [name, value, message] of [
      ["ACCESS_ROLE", "Read", /ACCESS_ROLE/],
      ["PREVIEW_TTL_HOURS", "abc", /PREVIEW_TTL_HOURS: expected a positive number/],
      ["TELEMETRY_AGE_OUT_DAYS", "-5", /TELEMETRY_AGE_OUT_DAYS/],
      ["AUDIT_RETENTION_DAYS", "forever", /AUDIT_RETENTION_DAYS/],
      ["SEARCH_SHARD_TIMEOUT_MS", "fast", /SEARCH_SHARD_TIMEOUT_MS/],
      ["QUERY_REWRITE", "yes", /QUERY_REWRITE/],
    ] as const) {
      expect(() => parseServiceConfig({ ...VARS, [name]: value }), name).toThrow(message);
    }
    expect(() => parseServiceConfig({ ...VARS, PREVIEW_TTL_HOURS: "0.5", ACCESS_ROLE: "read", QUERY_REWRITE: "off" })).not.toThrow();
  });

  it("answers 503 without details when a var is invalid, and logs which", async () => {
    const res = await appFetch(new Request("http://nixdocs.test/api/v1/health"), { RATE_LIMIT_IP: "lots" });
    expect(res.status).toBe(503);
    const body = await json(res);
    expect(body.error.code).toBe("unavailable");
    expect(JSON.stringify(body)).not.toContain("RATE_LIMIT_IP");
    expect(res.headers.get("x-request-id")).toMatch(/.+/);
  });
});

const limiter = (bucket: string) => env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(bucket));

/** Buckets stored by a limiter object (none, too, when it has no tables: never used, or cleaned up). */
function storedBuckets(stub: ReturnType<typeof limiter>): Promise<{ bucket: string; tokens: number }[]> {
  return runInDurableObject(stub, (_i: RateLimiter, state) => {
    const hasTable = state.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'buckets'").toArray().length > 0;
    return hasTable ? state.storage.sql.exec<{ bucket: string; tokens: number }>("SELECT bucket, tokens FROM buckets").toArray() : [];
  });
}

describe("RateLimiter object", () => {
  it("keeps its bucket in SQLite: evicted or aborted mid-window it still refuses", async () => {
    const stub = limiter("ip:evict-test");
    const take = async () => unwrap(await stub.take({ bucket: "ip:evict-test", limit: 3, periodSeconds: 3600 }));
    expect((await take()).remaining).toBe(2);
    expect((await take()).remaining).toBe(1);
    await evictDurableObject(stub);
    expect((await take()).remaining).toBe(0);
    await abortAllDurableObjects();
    const refused = unwrap(await limiter("ip:evict-test").take({ bucket: "ip:evict-test", limit: 3, periodSeconds: 3600 }));
    expect(refused).toMatchObject({ allowed: false, remaining: 0 });
    expect(refused.retryAfterSeconds).toBeGreaterThan(1000);
    expect((await storedBuckets(limiter("ip:evict-test"))).map((b) => b.bucket)).toEqual(["ip:evict-test"]);
  });

  it("deletes its storage once the bucket has refilled, and keeps it while it has not", async () => {
    const fast = limiter("ip:cleanup-fast");
    unwrap(await fast.take({ bucket: "ip:cleanup-fast", limit: 2, periodSeconds: 1 }));
    const slow = limiter("ip:cleanup-slow");
    unwrap(await slow.take({ bucket: "ip:cleanup-slow", limit: 2, periodSeconds: 3600 }));
    await new Promise((r) => setTimeout(r, 700));
    // The fast bucket's alarm (due after 500 ms) may have run by itself already; run it if not.
    await runDurableObjectAlarm(fast);
    expect(await runDurableObjectAlarm(slow)).toBe(true);
    expect(await storedBuckets(fast)).toEqual([]);
    expect(await runInDurableObject(fast, (_i: RateLimiter, state) => state.storage.sql.exec("SELECT name FROM sqlite_master").toArray())).toEqual([]);
    expect(await storedBuckets(slow)).toHaveLength(1);
    expect(await runInDurableObject(slow, (_i: RateLimiter, state) => state.storage.getAlarm())).toBeGreaterThan(Date.now() + 1_000_000);
    // A bucket taken from again after its clean-up starts full.
    expect(unwrap(await fast.take({ bucket: "ip:cleanup-fast", limit: 2, periodSeconds: 1 })).remaining).toBe(1);
  });

  it("refuses malformed calls", async () => {
    const result = await limiter("x").take({ bucket: "", limit: 0, periodSeconds: 1 });
    expect(result).toMatchObject({ ok: false, error: { code: "validation_failed" } });
  });
});

/** The app with some vars overridden (the limiter objects are the real ones). */
async function appFetch(req: Request, vars: Record<string, unknown>): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await createApp().fetch(req, { ...env, ...vars } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

function from(ip: string, path = "/api/v1/health", init: RequestInit = {}): Request {
  return new Request(`http://nixdocs.test${path}`, { ...init, headers: { "cf-connecting-ip": ip, ...(init.headers as Record<string, string>) } });
}

const LOOSE = { RATE_LIMIT_SEARCH: "off", RATE_LIMIT_READ: "off", RATE_LIMIT_WRITE: "off", RATE_LIMIT_ADMIN: "off", RATE_LIMIT_GLOBAL: "off", RATE_LIMIT_KEY: "off" };

describe("rate limit middleware", () => {
  it("carries RateLimit-* headers on every API response, from the most restrictive layer", async () => {
    const res = await appFetch(from("192.0.2.1"), { ...LOOSE, RATE_LIMIT_IP: "50/60", RATE_LIMIT_GLOBAL: "1000/60" });
    expect(res.status).toBe(200);
    expect(res.headers.get("ratelimit-limit")).toBe("50");
    expect(res.headers.get("ratelimit-remaining")).toBe("49");
    expect(Number(res.headers.get("ratelimit-reset"))).toBeGreaterThanOrEqual(1);
    // Also on 404s and 405s.
    for (const [path, method, status] of [["/api/v1/nothing", "GET", 404], ["/api/v1/namespaces/x", "DELETE", 405]] as const) {
      const r = await appFetch(from("192.0.2.1", path, { method }), { ...LOOSE, RATE_LIMIT_IP: "50/60" });
      expect(r.status).toBe(status);
      expect(r.headers.get("ratelimit-limit")).toBe("50");
    }
  });

  it("refuses per IP with 429, Retry-After and the error envelope, while another IP passes", async () => {
    const vars = { ...LOOSE, RATE_LIMIT_IP: "3/60" };
    for (let i = 0; i < 3; i++) expect((await appFetch(from("192.0.2.2"), vars)).status).toBe(200);
    const refused = await appFetch(from("192.0.2.2"), vars);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("20");
    expect(refused.headers.get("ratelimit-remaining")).toBe("0");
    expect(refused.headers.get("x-request-id")).toMatch(/.+/);
    const body = await json(refused);
    expect(body.error).toMatchObject({ code: "rate_limited", details: { layer: "ip", limit: 3, retryAfterSeconds: 20 } });
    expect((await appFetch(from("2001:db8::1"), vars)).status).toBe(200);
    // Addresses of one IPv6 /64 share a bucket.
    for (const ip of ["2001:db8::2", "2001:db8::3"]) expect((await appFetch(from(ip), vars)).status).toBe(200);
    expect((await appFetch(from("2001:db8:0:0:ffff::1"), vars)).status).toBe(429);
  });

  it("limits each bearer credential, whichever IP it comes from", async () => {
    const vars = { ...LOOSE, RATE_LIMIT_IP: "100/60", RATE_LIMIT_KEY: "2/60" };
    const withKey = (ip: string, token: string) => from(ip, "/api/v1/health", { headers: { authorization: `Bearer ${token}` } });
    expect((await appFetch(withKey("192.0.2.10", "key-a"), vars)).status).toBe(200);
    expect((await appFetch(withKey("192.0.2.11", "key-a"), vars)).status).toBe(200);
    const refused = await appFetch(withKey("192.0.2.12", "key-a"), vars);
    expect(refused.status).toBe(429);
    expect((await json(refused)).error.details.layer).toBe("key");
    expect((await appFetch(withKey("192.0.2.12", "key-b"), vars)).status).toBe(200);
  });

  it("spends nothing of the shared buckets for a client over its own limit: one client cannot starve the others", async () => {
    const vars = { ...LOOSE, RATE_LIMIT_IP: "3/60", RATE_LIMIT_GLOBAL: "10/60" };
    // 30 requests from one address: 3 pass, 27 are refused by its own layer…
    const statuses = await Promise.all(Array.from({ length: 30 }, () => appFetch(from("198.51.100.7"), vars).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    // …and the 7 global tokens left still serve 7 other clients.
    for (let i = 0; i < 7; i++) expect((await appFetch(from(`198.51.100.${20 + i}`), vars)).status, `client ${i}`).toBe(200);
    const eighth = await appFetch(from("198.51.100.40"), vars);
    expect(eighth.status).toBe(429);
    expect((await json(eighth)).error.details.layer).toBe("global");
  });

  it("limits WebSocket connects to the live rooms per IP too, before looking the namespace up", async () => {
    const vars = { ...LOOSE, RATE_LIMIT_IP: "2/60" };
    const connect = () =>
      routeLive(from("198.51.100.99", "/parties/live-room/ns:no-such-namespace", { headers: { "cf-connecting-ip": "198.51.100.99", upgrade: "websocket" } }), { ...env, ...vars } as Env);
    for (let i = 0; i < 2; i++) expect((await connect())!.status).toBe(404);
    const refused = (await connect())!;
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    expect((await json(refused)).error.code).toBe("rate_limited");
  });

  it("limits a route class for all callers together, leaving other classes alone", async () => {
    const vars = { ...LOOSE, RATE_LIMIT_IP: "100/60", RATE_LIMIT_WRITE: "1/60" };
    const write = (ip: string) => from(ip, "/api/v1/namespaces/rl-write/modules/batch", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect((await appFetch(write("192.0.2.20"), vars)).status).toBe(401); // passed the limiter, refused by auth
    const refused = await appFetch(write("192.0.2.21"), vars);
    expect(refused.status).toBe(429);
    expect((await json(refused)).error.details.layer).toBe("route");
    expect((await appFetch(from("192.0.2.21"), vars)).status).toBe(200);
  });

  it("spends tokens leased to the isolate without asking the object, far from the limit only", async () => {
    const vars = { ...LOOSE, RATE_LIMIT_IP: "1000/60" };
    const stored = async (ip: string) => {
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(ip)));
      const bucket = `ip:${Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("")}`;
      return (await storedBuckets(limiter(bucket)))[0]?.tokens;
    };
    const remaining: string[] = [];
    for (let i = 0; i < 11; i++) remaining.push((await appFetch(from("192.0.2.61"), vars)).headers.get("ratelimit-remaining")!);
    // One round trip took 1 + 10 leased tokens; the next 10 requests spent the lease locally.
    expect(await stored("192.0.2.61")).toBe(989);
    expect(remaining.map(Number)).toEqual([999, 998, 997, 996, 995, 994, 993, 992, 991, 990, 989]);
    await appFetch(from("192.0.2.61"), vars);
    expect(await stored("192.0.2.61")).toBeLessThan(989);
  });

  it("answers 400 for a CF-Connecting-IP that is not an address", async () => {
    const res = await appFetch(from("not-an-ip"), LOOSE);
    expect(res.status).toBe(400);
    expect((await json(res)).error.code).toBe("validation_failed");
  });

  it("uses a Workers Rate Limiting binding for its layer instead of the object", async () => {
    const keys: string[] = [];
    let allow = true;
    const binding: RateLimitBinding = {
      async limit({ key }) {
        keys.push(key);
        return { success: allow };
      },
    };
    const vars = { ...LOOSE, RATE_LIMIT_IP: "1/60", RATE_LIMITER_IP: binding };
    // The object would refuse the second request (1/60); the binding decides instead.
    expect((await appFetch(from("192.0.2.30"), vars)).status).toBe(200);
    const passed = await appFetch(from("192.0.2.30"), vars);
    expect(passed.status).toBe(200);
    // A binding that allowed has no figures to report.
    expect(passed.headers.get("ratelimit-limit")).toBeNull();
    allow = false;
    const refused = await appFetch(from("192.0.2.30"), vars);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("60");
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^ip:[0-9a-f]{16}$/);
    expect(keys[0]).not.toContain("192.0.2.30");
    expect(await storedBuckets(limiter(keys[0]!))).toEqual([]);
  });

  it("lets requests through when a limiter object fails, rather than failing the API", async () => {
    const broken = { idFromName: () => { throw new Error("limiter unavailable"); }, get: () => { throw new Error("unreachable"); } };
    const res = await appFetch(from("192.0.2.40"), { ...LOOSE, RATE_LIMIT_IP: "1/60", RATE_LIMITER: broken });
    expect(res.status).toBe(200);
    expect(res.headers.get("ratelimit-limit")).toBeNull();
  });

  it("applies the default limits of wrangler.jsonc to the deployed app", async () => {
    const res = await api("/api/v1/health", { headers: ADMIN });
    expect(res.headers.get("ratelimit-limit")).toMatch(/^\d+$/);
  });
});

describe("CORS", () => {
  const preflight = (origin: string) =>
    new Request("http://nixdocs.test/api/v1/search?q=git", { method: "OPTIONS", headers: { origin, "access-control-request-method": "GET", "cf-connecting-ip": "192.0.2.50" } });

  it("allows the configured origins only, with Vary: Origin", async () => {
    const vars = { CORS_ORIGINS: "https://docs.example" };
    const ok = await appFetch(preflight("https://docs.example"), vars);
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://docs.example");
    expect(ok.headers.get("access-control-allow-methods")).toContain("GET");
    const other = await appFetch(preflight("https://evil.example"), vars);
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const get = await appFetch(from("192.0.2.51", "/api/v1/health", { headers: { origin: "https://docs.example" } }), vars);
    expect(get.headers.get("access-control-allow-origin")).toBe("https://docs.example");
    expect(get.headers.get("vary")).toContain("Origin");
    expect(get.headers.get("access-control-expose-headers")).toContain("RateLimit-Remaining");
  });

  it("sends no CORS headers when CORS_ORIGINS is empty (the default)", async () => {
    const res = await api("/api/v1/health", { headers: { origin: "https://docs.example" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });
});

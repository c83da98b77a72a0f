/** The Hono application: middleware order, route mounting and the error envelope. @module */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { etag } from "hono/etag";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { ApiError } from "../shared/errors.ts";
import { loadConfig } from "./config.ts";
import type { AppEnv } from "./env.ts";
import { errorResponse, notFound, onError } from "./middleware/errors.ts";
import { admin } from "./routes/admin.ts";
import { rateLimit } from "./middleware/rateLimit.ts";
import { namespaces } from "./routes/namespaces.ts";
import { search } from "./routes/search.ts";
import { stats } from "./routes/stats.ts";
import { noQuery } from "./validate.ts";
import { telemetry } from "./routes/telemetry.ts";

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // The id is always made here (the audit log stores it): hono reuses an incoming X-Request-Id
  // unless it is longer than limitLength, so 0 refuses every client-supplied one.
  app.use(requestId({ headerName: "X-Request-Id", limitLength: 0 }));
  app.use(secureHeaders());
  app.use(loadConfig);
  // Browsers may call the API from the origins in CORS_ORIGINS only; others get no CORS headers.
  app.use(
    "/api/*",
    cors({
      origin: (origin, c) => {
        const allowed: string[] = c.get("config").corsOrigins;
        return allowed[0] === "*" ? "*" : allowed.includes(origin) ? origin : null;
      },
      allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      allowHeaders: ["Authorization", "Content-Type", "If-None-Match"],
      exposeHeaders: ["ETag", "X-Request-Id", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"],
      maxAge: 600,
    }),
  );
  // Before auth, body parsing and any shard: a refused request costs one limiter round trip per layer.
  app.use("/api/*", rateLimit);
  // Reads revalidate cheaply: an unchanged answer is a 304 (data changes only on ingest).
  // Admin answers (keys, audit) are for one caller and never stored by caches.
  app.use("/api/v1/*", async (c, next) => {
    await next();
    if (c.req.path.startsWith("/api/v1/admin")) c.header("Cache-Control", "no-store");
    else if (c.req.method === "GET" && c.res.status === 200 && !c.req.path.startsWith("/api/v1/search")) c.header("Cache-Control", "public, max-age=0, must-revalidate");
  });
  // Search answers carry per-shard timings, so they are never byte-identical: no ETag there.
  app.use("/api/v1/*", async (c, next) => (c.req.path.startsWith("/api/v1/search") || c.req.path.startsWith("/api/v1/admin") ? next() : etag()(c, next)));
  app.onError(onError);
  app.notFound(notFound);

  app.route("/api/v1/admin", admin);
  app.get("/api/v1/health", (c) => {
    noQuery(c.req.query());
    return c.json({ ok: true });
  });
  app.route("/api/v1/namespaces", namespaces);
  app.route("/api/v1/search", search);
  app.route("/api/v1/stats", stats);
  app.route("/api/v1/telemetry", telemetry);
  // Past the routes: PUT and PATCH exist only for docs edits (a module, an option), DELETE only
  // for revoking an API key; elsewhere these methods are refused as such, not as 404s.
  app.on(["PUT", "PATCH", "DELETE"], "/api/v1/*", (c) => {
    c.header("Allow", /^\/api\/v1\/admin\/keys\/[^/]+$/.test(c.req.path) ? "DELETE" : "GET, HEAD, POST");
    return errorResponse(c, new ApiError(405, "method_not_allowed", `${c.req.method} is not supported on ${new URL(c.req.url).pathname}`));
  });
  return app;
}

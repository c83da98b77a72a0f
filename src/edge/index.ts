/**
 * Worker entry point: the Hono edge plus the Durable Object classes it binds.
 * @module
 */
import "../shared/zod.ts";
import { env } from "cloudflare:workers";
import { parseServiceConfig } from "../shared/config.ts";
import { createApp } from "./app.ts";
import { routeLive } from "./live.ts";

export { LiveRoom } from "../objects/LiveRoom.ts";
export { NamespaceShard } from "../objects/NamespaceShard/index.ts";
export { RateLimiter } from "../objects/RateLimiter.ts";
export { SearchCoordinator } from "../objects/SearchCoordinator.ts";
export { KeyStore } from "../objects/KeyStore.ts";
export { AuditLog } from "../objects/AuditLog.ts";
export { HostUsage } from "../objects/HostUsage.ts";
export { UsageAggregate } from "../objects/UsageAggregate.ts";

// A bad var fails the Worker's startup (wrangler dev, wrangler deploy) with a message naming it,
// instead of answering every request with 503 (which src/edge/config.ts still does, should one slip by).
parseServiceConfig(env as unknown as Record<string, unknown>);

const app = createApp();

export default {
  // WebSocket upgrades to /parties/* go to partyserver before Hono, whose header middleware
  // must not touch a 101 response.
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname.startsWith("/parties/")) {
      const live = await routeLive(request, env);
      if (live) return live;
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;

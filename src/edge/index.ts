/**
 * Worker entry point: the Hono edge plus the Durable Object classes it binds.
 * @module
 */
import "../shared/zod.ts";
import { env } from "cloudflare:workers";
import { parseServiceConfig } from "../shared/config.ts";
import { createApp } from "./app.ts";

export { NamespaceShard } from "../objects/NamespaceShard/index.ts";
export { RateLimiter } from "../objects/RateLimiter.ts";
export { SearchCoordinator } from "../objects/SearchCoordinator.ts";

// A bad var fails the Worker's startup (wrangler dev, wrangler deploy) with a message naming it,
// instead of answering every request with 503 (which src/edge/config.ts still does, should one slip by).
parseServiceConfig(env as unknown as Record<string, unknown>);

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;

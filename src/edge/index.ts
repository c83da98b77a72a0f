/**
 * Worker entry point: the Hono edge plus the Durable Object classes it binds.
 * @module
 */
import "../shared/zod.ts";
import { createApp } from "./app.ts";
import { routeLive } from "./live.ts";

export { LiveRoom } from "../objects/LiveRoom.ts";
export { NamespaceShard } from "../objects/NamespaceShard/index.ts";
export { SearchCoordinator } from "../objects/SearchCoordinator.ts";
export { KeyStore } from "../objects/KeyStore.ts";
export { AuditLog } from "../objects/AuditLog.ts";
export { HostUsage } from "../objects/HostUsage.ts";
export { UsageAggregate } from "../objects/UsageAggregate.ts";

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

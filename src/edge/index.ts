/**
 * Worker entry point: the Hono edge plus the Durable Object classes it binds.
 * @module
 */
import "../shared/zod.ts";
import { createApp } from "./app.ts";

export { NamespaceShard } from "../objects/NamespaceShard/index.ts";
export { SearchCoordinator } from "../objects/SearchCoordinator.ts";
export { HostUsage } from "../objects/HostUsage.ts";
export { UsageAggregate } from "../objects/UsageAggregate.ts";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;

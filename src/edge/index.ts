/**
 * Worker entry point: the Hono edge plus the Durable Object classes it binds.
 * @module
 */
import "../shared/zod.ts";
import { createApp } from "./app.ts";

export { NamespaceShard } from "../objects/NamespaceShard/index.ts";
export { SearchCoordinator } from "../objects/SearchCoordinator.ts";
export { KeyStore } from "../objects/KeyStore.ts";
export { AuditLog } from "../objects/AuditLog.ts";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;

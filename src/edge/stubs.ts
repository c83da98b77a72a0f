/** How the edge reaches its Durable Objects: every isolate names the same objects. @module */

import { AUDIT_LOG_NAME, COORDINATOR_NAME, KEY_STORE_NAME } from "../shared/objectNames.ts";

export { AUDIT_LOG_NAME, COORDINATOR_NAME, KEY_STORE_NAME };

export function shard(env: Env, namespace: string): DurableObjectStub<import("../objects/NamespaceShard/index.ts").NamespaceShard> {
  return env.NAMESPACE_SHARD.get(env.NAMESPACE_SHARD.idFromName(namespace));
}

/** The usage object of one reporting host, named by its keyed hash (never by the raw host value). */
export function hostUsage(env: Env, keyedHostHash: string): DurableObjectStub<import("../objects/HostUsage.ts").HostUsage> {
  return env.HOST_USAGE.get(env.HOST_USAGE.idFromName(keyedHostHash));
}

export function usageAggregate(env: Env, namespace: string): DurableObjectStub<import("../objects/UsageAggregate.ts").UsageAggregate> {
  return env.USAGE_AGGREGATE.get(env.USAGE_AGGREGATE.idFromName(namespace));
}

export function coordinator(env: Env): DurableObjectStub<import("../objects/SearchCoordinator.ts").SearchCoordinator> {
  return env.SEARCH_COORDINATOR.get(env.SEARCH_COORDINATOR.idFromName(COORDINATOR_NAME));
}

/** API keys and the audit log are one object each per deployment. */

export function keyStore(env: Env): DurableObjectStub<import("../objects/KeyStore.ts").KeyStore> {
  return env.KEY_STORE.get(env.KEY_STORE.idFromName(KEY_STORE_NAME));
}

export function auditLog(env: Env): DurableObjectStub<import("../objects/AuditLog.ts").AuditLog> {
  return env.AUDIT_LOG.get(env.AUDIT_LOG.idFromName(AUDIT_LOG_NAME));
}

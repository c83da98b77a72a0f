/** How the edge reaches its Durable Objects: every isolate names the same objects. @module */

export const COORDINATOR_NAME = "global";

export function shard(env: Env, namespace: string): DurableObjectStub<import("../objects/NamespaceShard/index.ts").NamespaceShard> {
  return env.NAMESPACE_SHARD.get(env.NAMESPACE_SHARD.idFromName(namespace));
}

export function coordinator(env: Env): DurableObjectStub<import("../objects/SearchCoordinator.ts").SearchCoordinator> {
  return env.SEARCH_COORDINATOR.get(env.SEARCH_COORDINATOR.idFromName(COORDINATOR_NAME));
}

/** Names of the Durable Objects there is one of per deployment, shared by the edge and the objects. @module */
export const COORDINATOR_NAME = "global";
export const KEY_STORE_NAME = "global";
export const AUDIT_LOG_NAME = "global";

/** Types of the edge: bindings come from the generated `Env` (worker-configuration.d.ts). @module */
import type { Principal, ProvenCaller } from "../shared/auth.ts";

import type { ServiceConfig } from "../shared/config.ts";

export interface AppVariables {
  requestId: string;
  /** The authenticated caller: unset until a guarded route resolves it, null without credentials. */
  principal?: Principal | null;
  /** Whose credentials were refused although they proved themselves (a revoked key, an expired token). */
  refusedCaller?: ProvenCaller;
  /** What an audited action acted on, when only the handler knows it (a new key's id). */
  auditTarget?: string;
  /** The validated vars (src/edge/config.ts). */
  config: ServiceConfig;
}

export interface AppEnv {
  Bindings: Env;
  Variables: AppVariables;
}

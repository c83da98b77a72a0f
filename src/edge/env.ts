/** Types of the edge: bindings come from the generated `Env` (worker-configuration.d.ts). @module */

import type { ServiceConfig } from "../shared/config.ts";

export interface AppVariables {
  requestId: string;
  /** The validated vars (src/edge/config.ts). */
  config: ServiceConfig;
}

export interface AppEnv {
  Bindings: Env;
  Variables: AppVariables;
}

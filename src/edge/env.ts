/** Types of the edge: bindings come from the generated `Env` (worker-configuration.d.ts). @module */

export interface AppVariables {
  requestId: string;
}

export interface AppEnv {
  Bindings: Env;
  Variables: AppVariables;
}

/** Types of the edge: bindings come from the generated `Env` (worker-configuration.d.ts). @module */
import type { Principal } from "../shared/auth.ts";

export interface AppVariables {
  requestId: string;
  /** The authenticated caller: unset until a guarded route resolves it, null without credentials. */
  principal?: Principal | null;
  /** What an audited action acted on, when only the handler knows it (a new key's id). */
  auditTarget?: string;
}

export interface AppEnv {
  Bindings: Env;
  Variables: AppVariables;
}

/**
 * The one place zod is configured. Workers forbid code generation (`new Function`) during
 * requests, and zod v4 compiles fast-path parsers with it unless `jitless` is set
 * (colinhacks/zod#4638). Every module imports `z` from here so the setting runs first.
 * @module
 */
import { z } from "zod";

z.config({ jitless: true });

export { z };

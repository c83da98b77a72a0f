/**
 * The validated settings at the edge: parsed once per environment object, then read from the
 * context (`c.get("config")`). A bad var answers every request with 503 and logs which var and why.
 * @module
 */
import { createMiddleware } from "hono/factory";
import { parseServiceConfig, type ServiceConfig } from "../shared/config.ts";
import { ApiError } from "../shared/errors.ts";
import type { AppEnv } from "./env.ts";
import { errorResponse } from "./middleware/errors.ts";

const parsed = new WeakMap<object, ServiceConfig | Error>();

export function serviceConfig(env: Env): ServiceConfig {
  let cfg = parsed.get(env);
  if (!cfg) {
    try {
      cfg = parseServiceConfig(env as unknown as Record<string, unknown>);
    } catch (err) {
      cfg = err as Error;
    }
    parsed.set(env, cfg);
  }
  if (cfg instanceof Error) throw cfg;
  return cfg;
}

export const loadConfig = createMiddleware<AppEnv>(async (c, next) => {
  try {
    c.set("config", serviceConfig(c.env));
  } catch (err) {
    console.error("config:", err instanceof Error ? err.message : String(err));
    return errorResponse(c, new ApiError(503, "unavailable", "the service is misconfigured; quote the request id when reporting it", { requestId: c.get("requestId") }));
  }
  await next();
});

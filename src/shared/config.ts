/**
 * The service's settings from `wrangler.jsonc` vars, validated with zod: rate limits, CORS
 * origins, body and string limits. The Worker parses them once per environment (src/edge/config.ts)
 * and `npm start` checks them before it starts wrangler, so a typo is named plainly instead of
 * surfacing as odd behaviour.
 * @module
 */
import { LIMITS } from "./limits.ts";
import { rateRuleText, type RateLimitConfig } from "./rateLimit.ts";
import { z } from "./zod.ts";

const positiveInt = (fallback: number) =>
  z
    .string()
    .trim()
    .regex(/^\d{1,12}$/, "expected a whole number")
    .transform(Number)
    .refine((n) => n >= 1, "expected at least 1")
    .optional()
    .transform((n) => n ?? fallback);

/** An origin as browsers send it: scheme, host and optional port, nothing else. */
const ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/;

/** `CORS_ORIGINS`: comma-separated origins allowed to call the API from browsers; `*` for any; empty for none. */
const corsOrigins = z
  .string()
  .optional()
  .transform((text, ctx) => {
    const list = (text ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    for (const origin of list) {
      if (origin !== "*" && !ORIGIN.test(origin)) ctx.addIssue({ code: "custom", message: `${JSON.stringify(origin.slice(0, 80))} is not an origin such as https://example.org or http://localhost:5173` });
    }
    if (list.includes("*") && list.length > 1) ctx.addIssue({ code: "custom", message: '"*" allows every origin; list origins or give "*" alone' });
    return list;
  });

export const serviceVars = z.object({
  MAX_BODY_BYTES: positiveInt(LIMITS.maxBodyBytes),
  MAX_JSON_STRING_CHARS: positiveInt(LIMITS.maxJsonStringChars),
  CORS_ORIGINS: corsOrigins,
  RATE_LIMIT_IP: rateRuleText,
  RATE_LIMIT_KEY: rateRuleText,
  RATE_LIMIT_SEARCH: rateRuleText,
  RATE_LIMIT_READ: rateRuleText,
  RATE_LIMIT_WRITE: rateRuleText,
  RATE_LIMIT_ADMIN: rateRuleText,
  RATE_LIMIT_GLOBAL: rateRuleText,
});

export interface ServiceConfig {
  maxBodyBytes: number;
  maxJsonStringChars: number;
  /** Allowed browser origins; `["*"]` for any, `[]` for none (no CORS headers at all). */
  corsOrigins: string[];
  rateLimits: RateLimitConfig;
}

/** Parse the vars, or throw an Error naming every bad one (its message is for the operator's log). */
export function parseServiceConfig(vars: Record<string, unknown>): ServiceConfig {
  const parsed = serviceVars.safeParse(vars);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.code === "invalid_type" ? "missing or not a string (set it in wrangler.jsonc vars)" : i.message}`);
    throw new Error(`invalid configuration in wrangler.jsonc vars: ${lines.join("; ")}`);
  }
  const v = parsed.data;
  return {
    maxBodyBytes: v.MAX_BODY_BYTES,
    maxJsonStringChars: v.MAX_JSON_STRING_CHARS,
    corsOrigins: v.CORS_ORIGINS,
    rateLimits: {
      ip: v.RATE_LIMIT_IP,
      key: v.RATE_LIMIT_KEY,
      route: { search: v.RATE_LIMIT_SEARCH, read: v.RATE_LIMIT_READ, write: v.RATE_LIMIT_WRITE, admin: v.RATE_LIMIT_ADMIN },
      global: v.RATE_LIMIT_GLOBAL,
    },
  };
}

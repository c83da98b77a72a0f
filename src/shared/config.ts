/**
 * The service's settings from `wrangler.jsonc` vars, validated with zod: rate limits, CORS
 * origins, body and string limits, and every other var's form (time budgets, TTLs, roles). The
 * Worker checks them when it starts (src/edge/index.ts: a bad var stops `wrangler dev` and
 * `wrangler deploy` naming it) and parses them once per environment (src/edge/config.ts), so a
 * typo is named plainly instead of surfacing as odd behaviour.
 * @module
 */
import { ROLES } from "./auth.ts";
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

/** A positive decimal number as text (fractions allowed: `PREVIEW_TTL_HOURS=0.5`). */
const positiveNumber = z
  .string()
  .trim()
  .regex(/^\d{1,9}(\.\d{1,6})?$/, "expected a positive number such as 72 or 0.5")
  .refine((t) => Number(t) > 0, "expected a number above 0")
  .optional();

export const serviceVars = z.object({
  // Read where they are used; checked here so a typo stops the start instead of silently
  // falling back (an `ACCESS_ROLE` of `Read` must not quietly grant `write`).
  SEARCH_SHARD_TIMEOUT_MS: positiveInt(2000),
  QUERY_REWRITE: z.enum(["on", "off"]).optional(),
  QUERY_REWRITE_TIMEOUT_MS: positiveInt(800),
  PREVIEW_TTL_HOURS: positiveNumber,
  TELEMETRY_AGE_OUT_DAYS: positiveNumber,
  AUDIT_RETENTION_DAYS: positiveInt(365),
  ACCESS_ROLE: z.enum(ROLES).optional(),
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
    throw new Error(`invalid configuration (wrangler.jsonc vars, or their overrides in .dev.vars): ${lines.join("; ")}`);
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

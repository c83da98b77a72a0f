/**
 * Host usage telemetry: the report schema, the keyed re-hash of the host, and the pure diff that
 * turns two successive reports of one host into the increments and decrements its namespaces'
 * `UsageAggregate`s apply. The objects (`HostUsage`, `UsageAggregate`) only store and forward.
 * @module
 */
import { LIMITS } from "./limits.ts";
import { modulePath, namespaceName } from "./schemas.ts";
import { z } from "./zod.ts";

/** A module a host uses: a namespace and a module path of that namespace. */
export interface ModuleRef {
  namespace: string;
  path: string;
}

/**
 * A module is sent as one string `namespace:path` (`home-manager:modules/programs/git.nix`):
 * namespaces never contain `:`, so the first `:` splits it, and the list stays flat and small.
 */
export const moduleRef = z
  .string()
  .max(64 + LIMITS.maxPathLength)
  .transform((s, ctx): ModuleRef => {
    const at = s.indexOf(":");
    const ns = namespaceName.safeParse(s.slice(0, Math.max(0, at)));
    const path = modulePath.safeParse(s.slice(at + 1));
    if (at < 1 || !ns.success || !path.success) {
      const why = at < 1 || !ns.success ? "the part before `:` is not a namespace name" : path.error!.issues[0]!.message;
      ctx.addIssue({ code: "custom", message: `a module is \`namespace:path\` (e.g. \`home-manager:modules/programs/git.nix\`): ${why}` });
      return z.NEVER;
    }
    return { namespace: ns.data, path: path.data };
  });

/**
 * Reports from the future by more than this are refused. Reports of one host are ordered by
 * `reportedAt`, so one accepted from far ahead would make the host's later true reports stale
 * until then; a few minutes cover ordinary clock skew.
 */
export const MAX_CLOCK_AHEAD_S = 5 * 60;

const environment = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, "environment: a short label (1-32 of a-z, 0-9, '.', '_', '-'), e.g. `production`");
const system = z.string().max(64).regex(/^[a-z0-9_]+(-[a-z0-9_]+){1,3}$/, "system: a Nix system double such as `x86_64-linux`");
/** The host's clock in Unix seconds when it made the report: orders the reports of one host. */
const reportedAt = z
  .number()
  .int()
  .min(0)
  .refine((t) => t <= Date.now() / 1000 + MAX_CLOCK_AHEAD_S, `reportedAt: Unix time in seconds, at most ${MAX_CLOCK_AHEAD_S / 60} minutes (${MAX_CLOCK_AHEAD_S} s) ahead of the server clock`);

/** `POST /api/v1/telemetry` body. */
export const telemetryReport = z.strictObject({
  host: z.string().regex(/^[0-9a-f]{64}$/, "host: the SHA-256 of the hostname as 64 lowercase hex digits, computed on the host"),
  environment,
  system,
  reportedAt,
  modules: z.array(moduleRef).max(LIMITS.maxTelemetryModules, `modules: at most ${LIMITS.maxTelemetryModules} per report`),
});
export type TelemetryReport = z.infer<typeof telemetryReport>;

/** What the edge hands a `HostUsage`: the report without the host (which never leaves the edge). */
export const hostReport = z.strictObject({
  environment,
  system,
  reportedAt,
  modules: z.array(z.strictObject({ namespace: namespaceName, path: modulePath })).max(LIMITS.maxTelemetryModules),
});
export type HostReport = z.infer<typeof hostReport>;

/** A keyed host hash (see {@link keyedHostHash}): names a `HostUsage` and its deltas. */
export const hostHash = z.string().regex(/^[0-9a-f]{64}$/, "a keyed host hash is 64 lowercase hex digits");

const encoder = new TextEncoder();
const hmacKeys = new Map<string, Promise<CryptoKey>>();

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * HMAC-SHA-256 of the host's own hash under the `TELEMETRY_HASH_KEY` secret. Only this value is
 * stored or used as an object name: a SHA-256 of a hostname alone can be reversed by hashing
 * likely hostnames, the keyed hash cannot without the key.
 */
export async function keyedHostHash(secret: string, host: string): Promise<string> {
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    hmacKeys.set(secret, key);
  }
  return hex(await crypto.subtle.sign("HMAC", await key, encoder.encode(host)));
}

/** One host starting (+1) or stopping (-1) to use a module in an environment. */
export interface UsageChange {
  module: string;
  environment: string;
  delta: 1 | -1;
}

/**
 * What one host version changes in one namespace: counts, and modules seen for the first time
 * on that UTC day (for the distinct-hosts-per-day series). `version` orders a host's deltas; an
 * aggregate applies each (host, version) once.
 */
export interface UsageDelta {
  version: number;
  changes: UsageChange[];
  seen?: { day: string; modules: string[] };
}

export const usageDeltas = z
  .array(
    z.strictObject({
      version: z.number().int().min(1),
      // A host moving environment changes each module twice (-1 in the old, +1 in the new).
      changes: z.array(z.strictObject({ module: modulePath, environment, delta: z.union([z.literal(1), z.literal(-1)]) })).max(2 * LIMITS.maxTelemetryModules),
      seen: z.strictObject({ day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/), modules: z.array(modulePath).max(LIMITS.maxTelemetryModules) }).optional(),
    }),
  )
  .max(500);

/** The modules a host uses, in one environment. */
export interface HostModules {
  environment: string;
  modules: readonly ModuleRef[];
}

/**
 * Per namespace, the changes that take the counts from `before` to `after`: a module gained or
 * lost counts ±1 in its environment, and a host that moved environment moves every module.
 */
export function diffHostModules(before: HostModules | null, after: HostModules | null): Map<string, UsageChange[]> {
  const keyed = (h: HostModules | null) => new Map((h?.modules ?? []).map((m) => [`${h!.environment}\u0000${m.namespace}\u0000${m.path}`, { ...m, environment: h!.environment }]));
  const old = keyed(before);
  const now = keyed(after);
  const out = new Map<string, UsageChange[]>();
  const add = (m: ModuleRef & { environment: string }, delta: 1 | -1) => {
    let list = out.get(m.namespace);
    if (!list) out.set(m.namespace, (list = []));
    list.push({ module: m.path, environment: m.environment, delta });
  };
  for (const [k, m] of old) if (!now.has(k)) add(m, -1);
  for (const [k, m] of now) if (!old.has(k)) add(m, 1);
  return out;
}

/** Distinct modules, sorted by namespace then path (a report may list one twice). */
export function uniqueModules(modules: readonly ModuleRef[]): ModuleRef[] {
  const seen = new Map(modules.map((m) => [`${m.namespace}\u0000${m.path}`, m]));
  return [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, m]) => m);
}

/** The UTC day of a time in ms, `YYYY-MM-DD`. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The last `days` UTC days up to and including the day of `now`, oldest first. */
export function lastDays(now: number, days: number): string[] {
  const out: string[] = [];
  for (let i = days - 1; i >= 0; i--) out.push(utcDay(now - i * 86_400_000));
  return out;
}

/** The most modules a `UsageAggregate`'s top list answers: a page, and room for the unknown modules a reader filters out. */
export const MAX_TOP_MODULES = 2 * LIMITS.maxPageSize;

/** Shortest interval between two accepted reports of one host. */
export const REPORT_INTERVAL_MS = 60_000;

/** Seconds until a host may report again, or 0 when it may now. */
export function retryAfterSeconds(lastAcceptedAt: number | null, now: number): number {
  if (lastAcceptedAt === null) return 0;
  const wait = lastAcceptedAt + REPORT_INTERVAL_MS - now;
  return wait > 0 ? Math.ceil(wait / 1000) : 0;
}

/** `TELEMETRY_AGE_OUT_DAYS` in ms (default 30 days). */
export function ageOutMs(env: { TELEMETRY_AGE_OUT_DAYS?: string }): number {
  const days = Number(env.TELEMETRY_AGE_OUT_DAYS);
  return (Number.isFinite(days) && days > 0 ? days : 30) * 86_400_000;
}

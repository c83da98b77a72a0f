/**
 * `POST /api/v1/telemetry`: a host reports the modules it uses. The host's own SHA-256 of its
 * hostname is hashed again here with the `TELEMETRY_HASH_KEY` secret; only that keyed hash goes
 * further (object name, stored rows). The raw value is never stored or logged.
 * @module
 */
import { Hono } from "hono";
import { ApiError, unwrap } from "../../shared/errors.ts";
import { LIMITS } from "../../shared/limits.ts";
import { keyedHostHash, telemetryReport } from "../../shared/telemetry.ts";
import type { AppEnv } from "../env.ts";
import { requireTelemetryCredential } from "../middleware/auth.ts";
import { limitBody, readJson } from "../middleware/body.ts";
import { knownNamespaces } from "../registry.ts";
import { hostUsage } from "../stubs.ts";
import { parseOr400 } from "../validate.ts";

export const telemetry = new Hono<AppEnv>();

telemetry.post("/", requireTelemetryCredential, limitBody(LIMITS.maxTelemetryBodyBytes, `a report lists at most ${LIMITS.maxTelemetryModules} modules`), async (c) => {
  const secret = c.env.TELEMETRY_HASH_KEY;
  if (!secret) throw new ApiError(503, "unavailable", "telemetry is disabled: the TELEMETRY_HASH_KEY secret is not configured");
  const report = parseOr400(telemetryReport, await readJson(c), "body");
  const hash = await keyedHostHash(secret, report.host);
  // Modules of namespaces this service does not hold are not counted (no object is created for
  // them); they count once the namespace exists and the host reports again.
  const known = await knownNamespaces(c.env, report.modules.map((m) => m.namespace));
  const modules = report.modules.filter((m) => known.has(m.namespace));
  const ignoredNamespaces = [...new Set(report.modules.filter((m) => !known.has(m.namespace)).map((m) => m.namespace))].sort();
  const outcome = unwrap(await hostUsage(c.env, hash).report(hash, { environment: report.environment, system: report.system, reportedAt: report.reportedAt, modules }));
  return c.json({ ...outcome, ignoredNamespaces });
});

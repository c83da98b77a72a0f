/**
 * `/api/v1/admin`: API keys (create, list, revoke) and the audit log. Every route needs the
 * admin role without a namespace scope; every key action is audited, refusals included.
 * @module
 */
import { Hono, type Context } from "hono";
import { createFactory } from "hono/factory";
import { apiKeyId, createKeyBody, keyExpiry, newApiKey } from "../../shared/auth.ts";
import { sha256Hex } from "../../shared/secrets.ts";
import { auditQuery, auditSearchOf } from "../../shared/audit.ts";
import { ApiError, unwrap } from "../../shared/errors.ts";
import { z } from "../../shared/zod.ts";
import type { AppEnv } from "../env.ts";
import { audited, settleAuditWrites } from "../middleware/audit.ts";
import { requireRole } from "../middleware/auth.ts";
import { limitBody, readJson } from "../middleware/body.ts";
import { auditLog, keyStore } from "../stubs.ts";
import { parseOr400 } from "../validate.ts";

const keyParam = z.object({ id: apiKeyId });
const keyTarget = (c: Context<AppEnv>) => ({ target: c.req.param("id") });

export const admin = new Hono<AppEnv>();

admin.post("/keys", audited("key.create"), requireRole("admin"), limitBody(), async (c) => {
  const body = parseOr400(createKeyBody, await readJson(c), "body");
  const now = Date.now();
  const expiresAt = keyExpiry(body, now);
  if (expiresAt !== null && typeof expiresAt === "object") {
    throw new ApiError(400, "validation_failed", "invalid body parameters", { issues: [{ path: ["body", "expiresAt"], message: expiresAt.error }] });
  }
  const { id, key } = newApiKey();
  const info = unwrap(
    await keyStore(c.env).create({ id, keySha256: await sha256Hex(key), name: body.name, role: body.role, namespaces: body.namespaces ?? null, expiresAt }),
  );
  c.set("auditTarget", id);
  // The only time the key itself is shown: the object keeps its hash alone.
  return c.json({ ...info, key }, 201);
});

admin.get("/keys", audited("key.list"), requireRole("admin"), async (c) => {
  return c.json({ items: await keyStore(c.env).list() });
});

const revoke = createFactory<AppEnv>().createHandlers(audited("key.revoke", keyTarget), requireRole("admin"), async (c) => {
  const { id } = parseOr400(keyParam, { id: c.req.param("id") }, "path");
  return c.json(unwrap(await keyStore(c.env).revoke(id)));
});
admin.post("/keys/:id/revoke", ...revoke);
admin.delete("/keys/:id", ...revoke);

admin.get("/audit", requireRole("admin"), async (c) => {
  const q = parseOr400(auditQuery, c.req.query(), "query");
  await settleAuditWrites();
  return c.json(await auditLog(c.env).query(auditSearchOf(q)));
});

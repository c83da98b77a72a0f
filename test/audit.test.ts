/**
 * The audit log: every write and admin action, allowed or refused, leaves one entry naming the
 * actor, the action, its target, the outcome, the time, a keyed hash of the client IP and the
 * request id; admins read it newest first, filtered and cursor-paged.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { auditLog, keyStore } from "../src/edge/stubs.ts";
import { newApiKey } from "../src/shared/auth.ts";
import { unwrap } from "../src/shared/errors.ts";
import { sha256Hex } from "../src/shared/secrets.ts";
import { ADMIN, api, bearer, createKey, dataFile, hs256, json, now, postBatchAs } from "./helpers.ts";

type OptionsJson = Record<string, Record<string, unknown>>;
let sops: OptionsJson;
const slice = (from: number, to: number) => Object.fromEntries(Object.entries(sops).slice(from, to));

async function audit(query = "", headers: Record<string, string> = ADMIN): Promise<any> {
  const res = await api(`/api/v1/admin/audit${query}`, { headers });
  expect(res.status, await res.clone().text()).toBe(200);
  return json(res);
}

beforeAll(async () => {
  sops = (await dataFile("sops-nix-options.json.gz")) as OptionsJson;
});

describe("audit entries", () => {
  it("record an ingest with its actor, namespace, status, request id and hashed IP", async () => {
    const writer = await createKey({ name: "sops writer", role: "write", namespaces: ["sops-nix"] });
    const started = Date.now();
    const res = await postBatchAs({ ...bearer(writer.key), "cf-connecting-ip": "203.0.113.7" }, "sops-nix", slice(0, 10), "?mode=replace&importId=import-1");
    expect(res.status).toBe(200);
    const { items } = await audit(`?actor=${writer.id}&action=ingest`);
    expect(items).toHaveLength(1);
    const [entry] = items;
    expect(entry).toMatchObject({
      actor: { kind: "api-key", id: writer.id },
      action: "ingest",
      namespace: "sops-nix",
      target: "import-1",
      status: 200,
      requestId: res.headers.get("x-request-id"),
    });
    expect(entry.at).toBeGreaterThanOrEqual(started);
    expect(entry.ipHash).toMatch(/^[0-9a-f]{32}$/);

    // The same address hashes alike, another differently; the address itself is stored nowhere.
    await postBatchAs({ ...bearer(writer.key), "cf-connecting-ip": "203.0.113.7" }, "sops-nix", slice(0, 10));
    await postBatchAs({ ...bearer(writer.key), "cf-connecting-ip": "198.51.100.1" }, "sops-nix", slice(0, 10));
    const [other, same] = (await audit(`?actor=${writer.id}&limit=2`)).items;
    expect(same.ipHash).toBe(entry.ipHash);
    expect(other.ipHash).not.toBe(entry.ipHash);
    await runInDurableObject(auditLog(env), (_obj, state) => {
      expect(JSON.stringify(state.storage.sql.exec("SELECT * FROM audit_entries").toArray())).not.toContain("203.0.113.7");
    });
  });

  it("record refused writes: anonymous 401, forbidden 403, invalid body 400", async () => {
    const reader = await createKey({ name: "reader", role: "read" });
    const anonymous = await postBatchAs({}, "sops-nix", slice(10, 12));
    expect(anonymous.status).toBe(401);
    expect((await postBatchAs(bearer(reader.key), "sops-nix", slice(10, 12))).status).toBe(403);
    expect((await postBatchAs(ADMIN, "sops-nix", "{ not json")).status).toBe(400);
    const { items } = await audit("?action=ingest&namespace=sops-nix&limit=3");
    expect(items.map((e: any) => [e.actor.kind, e.actor.id, e.status])).toEqual([
      ["admin-token", "admin-token", 400],
      ["api-key", reader.id, 403],
      ["anonymous", null, 401],
    ]);
    expect(items[2].requestId).toBe(anonymous.headers.get("x-request-id"));
  });

  it("record key creation, listing and revocation with the key id as target", async () => {
    const created = await createKey({ name: "short-lived", role: "read", ttlSeconds: 3600 });
    expect((await api("/api/v1/admin/keys", { headers: ADMIN })).status).toBe(200);
    expect((await api(`/api/v1/admin/keys/${created.id}/revoke`, { method: "POST", headers: ADMIN })).status).toBe(200);
    expect((await api("/api/v1/admin/keys", { method: "POST", headers: bearer(created.key), body: "{}" })).status).toBe(401);
    const { items } = await audit("?limit=4");
    expect(items.map((e: any) => [e.action, e.actor.kind, e.target, e.status])).toEqual([
      ["key.create", "api-key", null, 401],
      ["key.revoke", "admin-token", created.id, 200],
      ["key.list", "admin-token", null, 200],
      ["key.create", "admin-token", created.id, 201],
    ]);
    expect(items[0].actor.id).toBe(created.id);
    // Reading the log is not itself logged.
    expect((await audit("?limit=1")).items[0].action).toBe("key.create");
  });
});

describe("audit actors", () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

  it("name a revoked or expired key whose secret matched, and no key for a forged secret or an unknown id", async () => {
    const revoked = await createKey({ name: "revoked writer", role: "write" });
    expect((await api(`/api/v1/admin/keys/${revoked.id}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
    // An expired key: stored directly, as the admin API only makes keys that expire in the future.
    const expired = newApiKey();
    unwrap(await keyStore(env).create({ id: expired.id, keySha256: await sha256Hex(expired.key), name: "expired writer", role: "write", namespaces: null, expiresAt: Date.now() - 1000 }));
    const forged = `ndk_${revoked.id}_${"A".repeat(43)}`;
    const unknown = newApiKey().key;
    for (const key of [revoked.key, expired.key, forged, unknown]) {
      expect((await postBatchAs(bearer(key), "audit-actors", slice(0, 1))).status).toBe(401);
    }
    const { items } = await audit("?namespace=audit-actors&action=ingest");
    expect(items.map((e: any) => [e.actor.kind, e.actor.id, e.status])).toEqual([
      ["anonymous", null, 401],
      ["anonymous", null, 401],
      ["api-key", expired.id, 401],
      ["api-key", revoked.id, 401],
    ]);
    expect((await audit(`?actor=${revoked.id}&action=ingest`)).items).toHaveLength(1);
  });

  it("name token subjects apart from other kinds (jwt:<sub>), also when a token whose signature verified is refused", async () => {
    const impostor = await hs256({ sub: "admin-token", role: "write", ns: ["audit-jwt"] });
    expect((await postBatchAs(bearer(impostor), "audit-jwt", slice(1, 2))).status).toBe(200);
    const expired = await hs256({ sub: "ci-bot", role: "write" }, { exp: now() - 3600 });
    const forged = await hs256({ sub: "ci-bot", role: "write" }, { secret: new TextEncoder().encode("not-the-secret-of-this-deployment-0000") });
    for (const token of [expired, forged]) expect((await postBatchAs(bearer(token), "audit-jwt", slice(1, 2))).status).toBe(401);

    const { items } = await audit("?namespace=audit-jwt");
    expect(items.map((e: any) => [e.actor.kind, e.actor.id, e.status])).toEqual([
      ["anonymous", null, 401],
      ["jwt", "jwt:ci-bot", 401],
      ["jwt", "jwt:admin-token", 200],
    ]);
    // The bootstrap token's entries are not mixed with a token that calls itself admin-token.
    expect((await audit("?actor=admin-token&namespace=audit-jwt")).items).toHaveLength(0);
    expect((await audit("?actor=jwt:admin-token")).items).toHaveLength(1);
  });

  it("store the request id the server made, never one the client sent", async () => {
    const writer = await createKey({ name: "request ids", role: "write" });
    const responses = [
      await postBatchAs({ ...bearer(writer.key), "x-request-id": "forged-request-id" }, "audit-ids", slice(2, 3)),
      await postBatchAs({ "x-request-id": "replayed-request-id" }, "audit-ids", slice(2, 3)),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 401]);
    const ids = responses.map((r) => r.headers.get("x-request-id"));
    for (const id of ids) expect(id).toMatch(UUID);
    const { items } = await audit("?namespace=audit-ids");
    expect(items.map((e: any) => e.requestId)).toEqual([ids[1], ids[0]]);
  });
});

describe("reading the audit log", () => {
  let actor: string;
  let first: number;

  beforeAll(async () => {
    const key = await createKey({ name: "pager", role: "write" });
    actor = key.id;
    first = Date.now();
    for (let i = 0; i < 7; i++) expect((await postBatchAs(bearer(key.key), "paging", slice(i, i + 1))).status).toBe(200);
  });

  it("pages newest first with a cursor, each entry exactly once", async () => {
    const all = (await audit(`?actor=${actor}`)).items;
    expect(all).toHaveLength(7);
    expect(all.map((e: any) => e.id)).toEqual([...all.map((e: any) => e.id)].sort((a: number, b: number) => b - a));
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: any = await audit(`?actor=${actor}&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      seen.push(...page.items.map((e: any) => e.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(all.map((e: any) => e.id));
  });

  it("filters by actor, actor kind, action, namespace and time", async () => {
    const byNamespace = (await audit("?namespace=paging")).items;
    expect(byNamespace).toHaveLength(7);
    expect(byNamespace.every((e: any) => e.actor.id === actor && e.action === "ingest")).toBe(true);
    expect((await audit("?actorKind=api-key&namespace=paging")).items).toHaveLength(7);
    expect((await audit("?actorKind=jwt&namespace=paging")).items).toHaveLength(0);
    expect((await audit("?action=key.revoke&namespace=paging")).items).toHaveLength(0);

    const times = byNamespace.map((e: any) => e.at).sort((a: number, b: number) => a - b);
    const middle = times[3];
    const fromMiddle = (await audit(`?namespace=paging&from=${middle}`)).items;
    expect(fromMiddle.length).toBe(times.filter((t: number) => t >= middle).length);
    const untilMiddle = (await audit(`?namespace=paging&to=${new Date(middle).toISOString()}`)).items;
    expect(untilMiddle.length).toBe(times.filter((t: number) => t <= middle).length);
    expect((await audit(`?namespace=paging&to=${first - 1}`)).items).toHaveLength(0);
  });

  it("takes dates as whole UTC days: from its start, to its end, both inclusive", async () => {
    const entries = (await audit("?namespace=paging")).items;
    const dayOf = (at: number) => new Date(at).toISOString().slice(0, 10);
    const day = dayOf(entries[0].at);
    const onDay = entries.filter((e: any) => dayOf(e.at) === day).length;
    expect(onDay).toBeGreaterThan(0);
    const next = dayOf(Date.parse(day) + 86_400_000);
    const previous = dayOf(Date.parse(day) - 86_400_000);
    expect((await audit(`?namespace=paging&from=${day}&to=${day}`)).items).toHaveLength(onDay);
    expect((await audit(`?namespace=paging&from=${next}`)).items).toHaveLength(0);
    expect((await audit(`?namespace=paging&to=${previous}`)).items).toHaveLength(0);
    expect((await audit("?namespace=paging&from=2030-01-01")).items).toHaveLength(0);
    for (const q of ["?from=yesterday", "?to=2030-13-01", "?from=2030-01-01T00:00:00"]) {
      const res = await api(`/api/v1/admin/audit${q}`, { headers: ADMIN });
      expect(res.status, q).toBe(400);
      expect((await json(res)).error.details.issues[0].message, q).toMatch(/epoch milliseconds, a date \(2030-01-31, UTC\) or an ISO 8601 date-time with offset/);
    }
  });

  it("rejects bad queries with 400 and callers who are not admins with 401/403", async () => {
    for (const q of ["?limit=0", "?limit=101", "?limit=x", "?from=yesterday", "?from=20&to=10", "?namespace=Bad_NS", "?cursor=%%%", "?cursor=eyJiIjoiYSJ9", "?unknown=1", "?actorKind=root", "?action=DROP%20TABLE"]) {
      const res = await api(`/api/v1/admin/audit${q}`, { headers: ADMIN });
      expect(res.status, q).toBe(400);
      expect((await json(res)).error.code, q).toMatch(/^(validation_failed|bad_request)$/);
    }
    expect((await api("/api/v1/admin/audit")).status).toBe(401);
    const writer = await createKey({ name: "not admin", role: "write" });
    expect((await api("/api/v1/admin/audit", { headers: bearer(writer.key) })).status).toBe(403);
  });
});

describe("retention", () => {
  it("drops entries older than AUDIT_RETENTION_DAYS when the daily alarm runs, and keeps the rest", async () => {
    const log = auditLog(env);
    const base = { actorKind: "admin-token", actorId: "admin-token", action: "retention.check", namespace: null, target: null, status: 200, ip: null, requestId: null } as const;
    const old = await log.record({ ...base, at: Date.now() - 366 * 86_400_000 });
    const recent = await log.record({ ...base, at: Date.now() - 364 * 86_400_000 });
    expect(await runInDurableObject(log, (_obj, state) => state.storage.getAlarm())).not.toBeNull();
    expect(await runDurableObjectAlarm(log)).toBe(true);
    const kept = (await audit("?action=retention.check")).items.map((e: any) => e.id);
    expect(kept).toEqual([recent]);
    expect(kept).not.toContain(old);
    // The next pass is scheduled.
    expect(await runInDurableObject(log, (_obj, state) => state.storage.getAlarm())).toBeGreaterThan(Date.now());
  });
});

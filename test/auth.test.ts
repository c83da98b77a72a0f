/**
 * Who may write: API keys (roles, namespace scope, expiry, revocation), HS256 bearer tokens and
 * Cloudflare Access tokens. Every refusal is checked for its exact status and error envelope, and
 * for leaving the store exactly as it was.
 */
import { exportJWK, generateKeyPair, createLocalJWKSet, SignJWT, type JWK } from "jose";
import { env, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { useAccessKeySet } from "../src/edge/middleware/auth.ts";
import { apiKeyIdOf, authorize, bearerToken, keyExpiry, newApiKey, type Principal } from "../src/shared/auth.ts";
import { accessIssuer, accessRole } from "../src/shared/authTokens.ts";
import { keyStore } from "../src/edge/stubs.ts";
import { ADMIN, api, AUDIENCE, bearer, createKey, dataFile, hs256, ISSUER, JWT_SECRET, json, now, postBatch, postBatchAs, storeTotals } from "./helpers.ts";

type OptionsJson = Record<string, Record<string, unknown>>;

/** Real option data: agenix and impermanence, split so each write can add something new. */
let agenix: OptionsJson;
let impermanence: OptionsJson;

function pick(options: OptionsJson, from: number, to: number): OptionsJson {
  return Object.fromEntries(Object.entries(options).slice(from, to));
}

beforeAll(async () => {
  agenix = (await dataFile("agenix-options.json.gz")) as OptionsJson;
  impermanence = (await dataFile("impermanence-options.json.gz")) as OptionsJson;
  expect(Object.keys(agenix).length).toBeGreaterThan(6);
  expect((await postBatch("agenix", pick(agenix, 0, 3))).status).toBe(200);
  expect((await postBatch("impermanence", pick(impermanence, 0, 3))).status).toBe(200);
});

function expectError(body: any, code: string): void {
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
}

/** Send a write with `headers`; it must be refused with `status` and leave every namespace unchanged. */
async function expectRefusedWrite(headers: Record<string, string>, status: 401 | 403, namespace = "agenix"): Promise<any> {
  const before = await storeTotals();
  const res = await postBatchAs(headers, namespace, pick(namespace === "agenix" ? agenix : impermanence, 3, 6));
  const body = await json(res);
  expect(res.status, JSON.stringify(body)).toBe(status);
  expectError(body, status === 401 ? "unauthorized" : "forbidden");
  if (status === 401) expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm="nixdocs"/);
  expect(await storeTotals()).toEqual(before);
  return body;
}

describe("API keys", () => {
  it("are shown once at creation, stored only as a hash, and listed without secret or hash", async () => {
    const created = await createKey({ name: "ci ingest", role: "write", namespaces: ["agenix"] });
    expect(created.key).toMatch(/^ndk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(created.key).toContain(created.id);
    expect(created).toMatchObject({ name: "ci ingest", role: "write", namespaces: ["agenix"], expiresAt: null, revokedAt: null, lastUsedAt: null });

    const listed200 = await api("/api/v1/admin/keys", { headers: ADMIN });
    expect(listed200.headers.get("cache-control")).toBe("no-store");
    expect(listed200.headers.get("etag")).toBeNull();
    const list = await json(listed200);
    const listed = list.items.find((k: any) => k.id === created.id);
    expect(Object.keys(listed).sort()).toEqual(["createdAt", "expiresAt", "id", "lastUsedAt", "name", "namespaces", "revokedAt", "role"]);
    const secret = created.key.split("_").pop()!;
    expect(JSON.stringify(list)).not.toContain(secret);

    // Inside the object: the SHA-256 of the key, never the key.
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(created.key)));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    await runInDurableObject(keyStore(env), async (_obj, state) => {
      const rows = state.storage.sql.exec<{ key_sha256: string }>("SELECT key_sha256 FROM api_keys WHERE id = ?", created.id).toArray();
      expect(rows).toEqual([{ key_sha256: hex }]);
      const dump = JSON.stringify(state.storage.sql.exec("SELECT * FROM api_keys").toArray());
      expect(dump).not.toContain(secret);
    });
  });

  it("let a write key ingest into its namespace and record when it was last used", async () => {
    const { key, id } = await createKey({ name: "agenix writer", role: "write", namespaces: ["agenix"] });
    const res = await postBatchAs(bearer(key), "agenix", pick(agenix, 3, 5));
    expect(res.status).toBe(200);
    expect((await json(res)).options.added).toBe(2);
    const first = (await json(await api("/api/v1/admin/keys", { headers: ADMIN }))).items.find((k: any) => k.id === id);
    expect(first.lastUsedAt).toBeGreaterThan(first.createdAt - 1);

    // A second use within the minute does not write again; a use a minute later does.
    expect((await postBatchAs(bearer(key), "agenix", pick(agenix, 3, 5))).status).toBe(200);
    const again = (await json(await api("/api/v1/admin/keys", { headers: ADMIN }))).items.find((k: any) => k.id === id);
    expect(again.lastUsedAt).toBe(first.lastUsedAt);
    await runInDurableObject(keyStore(env), (_obj, state) => {
      state.storage.sql.exec("UPDATE api_keys SET last_used_at = last_used_at - 61000 WHERE id = ?", id);
    });
    expect((await postBatchAs(bearer(key), "agenix", pick(agenix, 3, 5))).status).toBe(200);
    const later = (await json(await api("/api/v1/admin/keys", { headers: ADMIN }))).items.find((k: any) => k.id === id);
    expect(later.lastUsedAt).toBeGreaterThan(first.lastUsedAt - 61000);
    expect(later.lastUsedAt).toBeGreaterThanOrEqual(first.lastUsedAt);
  });

  it("refuse writes without credentials (401 with a challenge) and leave reads public", async () => {
    await expectRefusedWrite({}, 401);
    const res = await api("/api/v1/namespaces/agenix");
    expect(res.status).toBe(200);
  });

  it("refuse a read-only key (403), a key scoped to another namespace (403), and writes nothing", async () => {
    const reader = await createKey({ name: "reader", role: "read" });
    const body = await expectRefusedWrite(bearer(reader.key), 403);
    expect(body.error.details).toEqual({ need: "write", reason: "role" });
    const elsewhere = await createKey({ name: "impermanence only", role: "write", namespaces: ["impermanence"] });
    const scoped = await expectRefusedWrite(bearer(elsewhere.key), 403, "agenix");
    expect(scoped.error.details).toEqual({ need: "write", reason: "scope" });
    // …while it may write in its own namespace.
    expect((await postBatchAs(bearer(elsewhere.key), "impermanence", pick(impermanence, 3, 4))).status).toBe(200);
  });

  it("refuse unknown, malformed, expired and revoked keys with 401", async () => {
    const real = await createKey({ name: "to be revoked", role: "admin" });
    const forged = real.key.slice(0, -4) + (real.key.endsWith("AAAA") ? "BBBB" : "AAAA");
    await expectRefusedWrite(bearer(forged), 401);
    await expectRefusedWrite(bearer(`ndk_0123456789abcdef_${"A".repeat(43)}`), 401);
    await expectRefusedWrite(bearer("ndk_short"), 401);
    await expectRefusedWrite({ authorization: "Bearer" }, 401);
    await expectRefusedWrite({ authorization: `Token ${real.key}` }, 401);

    const expiring = await createKey({ name: "expires", role: "write", ttlSeconds: 60 });
    expect((await postBatchAs(bearer(expiring.key), "agenix", pick(agenix, 3, 4))).status).toBe(200);
    await runInDurableObject(keyStore(env), (_obj, state) => {
      state.storage.sql.exec("UPDATE api_keys SET expires_at = ? WHERE id = ?", Date.now() - 1, expiring.id);
    });
    expect((await expectRefusedWrite(bearer(expiring.key), 401)).error.details).toEqual({ reason: "expired" });

    const revoked = await api(`/api/v1/admin/keys/${real.id}/revoke`, { method: "POST", headers: ADMIN });
    expect(revoked.status).toBe(200);
    const info = await json(revoked);
    expect(info.revokedAt).toBeGreaterThan(0);
    expect((await expectRefusedWrite(bearer(real.key), 401)).error.details).toEqual({ reason: "revoked" });
    // A revoked admin key can no longer reach admin routes either.
    expect((await api("/api/v1/admin/keys", { headers: bearer(real.key) })).status).toBe(401);
    // Revoking again keeps the first time; DELETE does the same.
    const twice = await json(await api(`/api/v1/admin/keys/${real.id}`, { method: "DELETE", headers: ADMIN }));
    expect(twice.revokedAt).toBe(info.revokedAt);
  });

  it("validate key creation and keep admin routes for unscoped admins", async () => {
    const post = (body: unknown, headers: Record<string, string> = ADMIN) =>
      api("/api/v1/admin/keys", { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) });
    for (const bad of [
      {},
      { name: "x", role: "owner" },
      { name: "x", role: "write", namespaces: [] },
      { name: "x", role: "write", namespaces: ["Not A Namespace"] },
      { name: "x", role: "admin", namespaces: ["agenix"] },
      { name: "x", role: "write", ttlSeconds: 60, expiresAt: Date.now() + 3_600_000 },
      { name: "x", role: "write", expiresAt: "2001-01-01T00:00:00Z" },
      { name: "x", role: "write", secret: "mine" },
    ]) {
      const res = await post(bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expectError(await json(res), "validation_failed");
    }
    const writer = await createKey({ name: "w", role: "write" });
    const keyCount = async () => (await json(await api("/api/v1/admin/keys", { headers: ADMIN }))).items.length;
    const keysBefore = await keyCount();
    expect((await post({ name: "y", role: "read" }, bearer(writer.key))).status).toBe(403);
    expect((await post({ name: "y", role: "read" }, {})).status).toBe(401);
    expect(await keyCount()).toBe(keysBefore);
    expect((await api("/api/v1/admin/keys", { headers: bearer(writer.key) })).status).toBe(403);
    expect((await api("/api/v1/admin/audit", { headers: bearer(writer.key) })).status).toBe(403);
    expect((await api("/api/v1/admin/keys")).status).toBe(401);
    // An admin key may create keys itself.
    const admin = await createKey({ name: "second admin", role: "admin" });
    expect((await post({ name: "made by key", role: "read" }, bearer(admin.key))).status).toBe(201);
    expect((await api("/api/v1/admin/keys/0000000000000000/revoke", { method: "POST", headers: ADMIN })).status).toBe(404);
    expect((await api("/api/v1/admin/keys/not-an-id/revoke", { method: "POST", headers: ADMIN })).status).toBe(400);
    const put = await api(`/api/v1/admin/keys/${admin.id}`, { method: "PUT", headers: ADMIN });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("DELETE");
  });
});

// ---------------------------------------------------------------------------------------------

function b64url(value: unknown): string {
  return btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

describe("JWT bearer tokens (HS256)", () => {
  it("let a write token with a namespace scope ingest there, and nowhere else", async () => {
    const token = await hs256({ sub: "ci@example.org", role: "write", ns: ["impermanence"] });
    expect((await postBatchAs(bearer(token), "impermanence", pick(impermanence, 4, 5))).status).toBe(200);
    await expectRefusedWrite(bearer(token), 403, "agenix");
    const reader = await hs256({ sub: "reader", role: "read" });
    await expectRefusedWrite(bearer(reader), 403);
  });

  it("refuse alg none, a wrong algorithm, a bad signature, wrong aud or iss, expiry and missing claims with 401", async () => {
    const claims = { sub: "mallory", role: "admin", iss: ISSUER, aud: AUDIENCE, exp: now() + 600 };
    const { privateKey } = await generateKeyPair("RS256");
    const rs256 = await new SignJWT(claims).setProtectedHeader({ alg: "RS256" }).sign(privateKey);
    const valid = await hs256({ sub: "mallory", role: "admin" });
    const [h, p] = valid.split(".");
    const cases: [string, string][] = [
      ["alg none", `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims)}.`],
      ["alg none with a signature", `${b64url({ alg: "none" })}.${b64url(claims)}.${valid.split(".")[2]}`],
      ["RS256 where HS256 is expected", rs256],
      ["a bad signature", await hs256({ sub: "mallory", role: "admin" }, { secret: new TextEncoder().encode("another-secret-of-enough-length-000000") })],
      ["claims changed after signing", `${h}.${b64url({ ...claims, role: "admin", sub: "someone-else" })}.${valid.split(".")[2]}`],
      ["a wrong audience", await hs256({ sub: "mallory", role: "admin" }, { audience: "another-api" })],
      ["a wrong issuer", await hs256({ sub: "mallory", role: "admin" }, { issuer: "https://evil.example" })],
      ["an expired token", await hs256({ sub: "mallory", role: "admin" }, { exp: now() - 3600 })],
      ["no role claim", await hs256({ sub: "mallory" })],
      ["an unknown role", await hs256({ sub: "mallory", role: "root" })],
      ["an admin limited to namespaces", await hs256({ sub: "mallory", role: "admin", ns: ["agenix"] })],
      ["no exp claim", await new SignJWT({ sub: "mallory", role: "admin" }).setProtectedHeader({ alg: "HS256" }).setIssuer(ISSUER).setAudience(AUDIENCE).sign(JWT_SECRET)],
    ];
    expect(p).toBeTruthy();
    for (const [what, token] of cases) {
      const body = await expectRefusedWrite(bearer(token), 401);
      expect(body.error.message, what).toMatch(/token/);
    }
  });

  it("bound a token's lifetime like an API key's: exp at most five years ahead, iat not in the future", async () => {
    const year = 366 * 24 * 3600;
    const cases: [string, string, RegExp][] = [
      ["exp in the year 33658", await hs256({ sub: "forever", role: "write" }, { exp: 1e12 }), /exp claim is more than five years away/],
      ["exp six years ahead", await hs256({ sub: "forever", role: "write" }, { exp: now() + 6 * year }), /exp claim is more than five years away/],
      ["iat an hour ahead", await hs256({ sub: "early", role: "write" }, { iat: now() + 3600 }), /iat claim is in the future/],
    ];
    for (const [what, token, message] of cases) {
      const body = await expectRefusedWrite(bearer(token), 401);
      expect(body.error.message, what).toMatch(message);
    }
    // Within the cap and the clock tolerance, tokens work.
    const longLived = await hs256({ sub: "ci", role: "write", ns: ["agenix"] }, { exp: now() + 4 * year });
    expect((await postBatchAs(bearer(longLived), "agenix", pick(agenix, 3, 4))).status).toBe(200);
    const slightlyAhead = await hs256({ sub: "ci", role: "write", ns: ["agenix"] }, { iat: now() + 10 });
    expect((await postBatchAs(bearer(slightlyAhead), "agenix", pick(agenix, 4, 5))).status).toBe(200);
  });

  it("grant admin routes to an admin token", async () => {
    const token = await hs256({ sub: "ops", role: "admin" });
    expect((await api("/api/v1/admin/keys", { headers: bearer(token) })).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------

const ACCESS_ISSUER = "https://nixdocs-test.cloudflareaccess.com";
const ACCESS_AUD = "test-access-aud";

describe("Cloudflare Access tokens (RS256 from the team's JWKS)", () => {
  let signingKey: CryptoKey;
  let publicJwk: JWK;

  beforeAll(async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    signingKey = pair.privateKey;
    publicJwk = { ...(await exportJWK(pair.publicKey)), kid: "access-test-1", alg: "RS256", use: "sig" };
    // No network in tests: the JWKS the Worker would fetch from <team>/cdn-cgi/access/certs.
    useAccessKeySet(ACCESS_ISSUER, createLocalJWKSet({ keys: [publicJwk] }));
  });

  function access(claims: Record<string, unknown>, options: { issuer?: string; audience?: string; exp?: number; kid?: string } = {}): Promise<string> {
    return new SignJWT({ email: "dev@example.org", ...claims })
      .setProtectedHeader({ alg: "RS256", kid: options.kid ?? "access-test-1" })
      .setIssuer(options.issuer ?? ACCESS_ISSUER)
      .setAudience(options.audience ?? ACCESS_AUD)
      .setSubject("7335d417-61da-459d-899c-0a01c76a2f94")
      .setIssuedAt()
      .setExpirationTime(options.exp ?? now() + 600)
      .sign(signingKey);
  }

  const assertion = (token: string) => ({ "cf-access-jwt-assertion": token });

  it("let an Access user write with the configured role (write), but not administer", async () => {
    const token = await access({});
    expect((await postBatchAs(assertion(token), "agenix", pick(agenix, 5, 6))).status).toBe(200);
    expect((await api("/api/v1/admin/keys", { headers: assertion(token) })).status).toBe(403);
  });

  it("audit an Access user as access:<e-mail>, also when a token whose signature verified is refused", async () => {
    expect((await postBatchAs(assertion(await access({})), "impermanence", pick(impermanence, 3, 4))).status).toBe(200);
    expect((await postBatchAs(assertion(await access({}, { exp: now() - 3600 })), "impermanence", pick(impermanence, 3, 4))).status).toBe(401);
    const res = await api("/api/v1/admin/audit?actorKind=access&namespace=impermanence&limit=2", { headers: ADMIN });
    expect((await json(res)).items.map((e: any) => [e.actor.id, e.status])).toEqual([
      ["access:dev@example.org", 401],
      ["access:dev@example.org", 200],
    ]);
  });

  it("refuse wrong audience, wrong issuer, an unknown key, HS256, alg none, a bad signature, expiry and an unbounded lifetime with 401", async () => {
    const valid = await access({});
    const [h, , s] = valid.split(".");
    // The classic key confusion: HS256 with the RSA public key as the HMAC secret.
    const confused = await new SignJWT({ email: "dev@example.org" })
      .setProtectedHeader({ alg: "HS256", kid: "access-test-1" })
      .setIssuer(ACCESS_ISSUER)
      .setAudience(ACCESS_AUD)
      .setExpirationTime(now() + 600)
      .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
    const other = await generateKeyPair("RS256");
    const foreign = await new SignJWT({ email: "dev@example.org" })
      .setProtectedHeader({ alg: "RS256", kid: "access-test-1" })
      .setIssuer(ACCESS_ISSUER)
      .setAudience(ACCESS_AUD)
      .setExpirationTime(now() + 600)
      .sign(other.privateKey);
    const cases: [string, string][] = [
      ["a wrong audience", await access({}, { audience: "another-application" })],
      ["a wrong issuer", await access({}, { issuer: "https://other-team.cloudflareaccess.com" })],
      ["an unknown key id", await access({}, { kid: "not-published" })],
      ["HS256 where RS256 is expected", confused],
      ["alg none", `${b64url({ alg: "none", kid: "access-test-1" })}.${b64url({ email: "dev@example.org", iss: ACCESS_ISSUER, aud: ACCESS_AUD, exp: now() + 600 })}.`],
      ["a signature by another key", foreign],
      ["claims changed after signing", `${h}.${b64url({ email: "admin@example.org", iss: ACCESS_ISSUER, aud: ACCESS_AUD, exp: now() + 6000 })}.${s}`],
      ["an expired token", await access({}, { exp: now() - 3600 })],
      ["exp more than five years ahead", await access({}, { exp: now() + 6 * 366 * 24 * 3600 })],
    ];
    for (const [what, token] of cases) {
      const body = await expectRefusedWrite(assertion(token), 401);
      expect(body.error.message, what).toMatch(/^Cloudflare Access: /);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("the rules themselves", () => {
  it("rank roles, check scopes, and keep unscoped admin actions for unscoped callers", () => {
    const writer: Principal = { kind: "api-key", id: "k", role: "write", namespaces: ["agenix"] };
    expect(authorize({ ...writer, namespaces: undefined }, "read")).toEqual({ ok: true });
    expect(authorize(writer, "write", "agenix")).toEqual({ ok: true });
    expect(authorize(writer, "write", "disko")).toMatchObject({ ok: false, reason: "scope" });
    expect(authorize(writer, "write")).toMatchObject({ ok: false, reason: "scope" });
    expect(authorize(writer, "admin", "agenix")).toMatchObject({ ok: false, reason: "role" });
    expect(authorize({ kind: "jwt", id: "a", role: "admin" }, "write", "anything")).toEqual({ ok: true });
  });

  it("format keys with a lookup id and 256 random bits, and parse only well-formed ones", () => {
    const a = newApiKey();
    const b = newApiKey();
    expect(a.key).not.toBe(b.key);
    expect(apiKeyIdOf(a.key)).toBe(a.id);
    for (const bad of [a.key + "x", a.key.slice(0, -1), a.key.replace("ndk_", "ndx_"), a.key.toUpperCase(), ""]) expect(apiKeyIdOf(bad), bad).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
    expect(bearerToken("bearer abc")).toBe("abc");
    expect(bearerToken("Bearer a b")).toBeUndefined();
    expect(bearerToken("Basic abc")).toBeUndefined();
  });

  it("compute expiry from a ttl or a date, refusing the past and more than five years", () => {
    const t = 1_700_000_000_000;
    expect(keyExpiry({}, t)).toBeNull();
    expect(keyExpiry({ ttlSeconds: 60 }, t)).toBe(t + 60_000);
    expect(keyExpiry({ expiresAt: t + 1 }, t)).toBe(t + 1);
    expect(keyExpiry({ expiresAt: t }, t)).toEqual({ error: "expiresAt is in the past" });
    expect(keyExpiry({ expiresAt: t + 6 * 366 * 86_400_000 }, t)).toMatchObject({ error: expect.stringMatching(/five years/) });
  });

  it("derive the Access issuer from the team domain and default the Access role to write", () => {
    for (const domain of ["acme", "acme.cloudflareaccess.com", "https://acme.cloudflareaccess.com/"]) expect(accessIssuer(domain)).toBe("https://acme.cloudflareaccess.com");
    expect(accessRole(undefined)).toBe("write");
    expect(accessRole("read")).toBe("read");
    expect(accessRole("root")).toBe("write");
  });
});

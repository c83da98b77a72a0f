/**
 * Hostile input, end to end inside workerd: every case answers its exact status in the one error
 * envelope (no stack, no internal text, a request id) and leaves the store exactly as it was:
 * the namespace's counts and last update, and the totals of every namespace.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { NamespaceShard } from "../src/objects/NamespaceShard/index.ts";
import { ADMIN, api, enc, json, postBatch } from "./helpers.ts";

const NS = "hostile";
const OPTION = { declarations: ["m.nix"], description: "Whether to enable foo.", loc: ["foo", "enable"], readOnly: false, type: "boolean" };
const BATCH = `/api/v1/namespaces/${NS}/modules/batch`;

/** Everything a write could change: this namespace's counts and time, and every namespace's counts. */
async function storeState(): Promise<unknown> {
  const [shard, stats] = await Promise.all([api(`/api/v1/namespaces/${NS}`), api("/api/v1/stats")]);
  expect(shard.status).toBe(200);
  return { shard: await json(shard), stats: await json(stats) };
}

function expectEnvelope(res: Response, body: any, code: string): void {
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+|\bstack\b|SQLITE|sqlite|no such (table|column)|TypeError|ReferenceError/);
  expect(res.headers.get("x-request-id")).toMatch(/.+/);
}

/** Send `request`, expect `status` with `code`, and the store unchanged. */
async function expectRefused(request: () => Promise<Response>, status: number, code: string, what = ""): Promise<void> {
  const before = await storeState();
  const res = await request();
  expect(res.status, what).toBe(status);
  expectEnvelope(res, await json(res), code);
  expect(await storeState(), what).toEqual(before);
}

const post = (body: BodyInit, headers: Record<string, string> = { "content-type": "application/json" }, query = "") =>
  api(`${BATCH}${query}`, { method: "POST", headers: { ...ADMIN, ...headers }, body });

beforeAll(async () => {
  expect((await postBatch(NS, { "foo.enable": OPTION })).status).toBe(200);
});

describe("credentials", () => {
  const body = JSON.stringify({ "bar.enable": { ...OPTION, loc: ["bar", "enable"] } });
  const cases: [string, Record<string, string>][] = [
    ["no Authorization header", {}],
    ["a wrong token", { authorization: "Bearer not-the-token" }],
    ["a token that is a prefix of the real one", { authorization: "Bearer test-admin" }],
    ["the real token with a suffix", { authorization: "Bearer test-admin-token2" }],
    ["another scheme", { authorization: "Basic dGVzdDp0ZXN0" }],
    ["an empty bearer", { authorization: "Bearer " }],
    ["two tokens", { authorization: "Bearer test-admin-token test-admin-token" }],
  ];
  for (const [what, headers] of cases) {
    it(`refuses ${what} with 401`, async () => {
      await expectRefused(() => api(BATCH, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body }), 401, "unauthorized");
    });
  }

  it("refuses an Authorization header of 5,000 characters with 400 before anything else", async () => {
    await expectRefused(() => api(BATCH, { method: "POST", headers: { authorization: `Bearer ${"a".repeat(5000)}`, "content-type": "application/json" }, body }), 400, "validation_failed");
  });
});

describe("content types and sizes", () => {
  const body = JSON.stringify({ "foo.enable": OPTION });
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "application/json-patch+json"]) {
    it(`refuses Content-Type ${type} with 415`, async () => {
      await expectRefused(() => post(body, { "content-type": type }), 415, "unsupported_media_type");
    });
  }

  it("refuses a body without Content-Type with 415", async () => {
    await expectRefused(() => api(BATCH, { method: "POST", headers: ADMIN, body: new TextEncoder().encode(body) }), 415, "unsupported_media_type");
  });

  it("refuses a 10 MB string with 413 before reading the body, also chunked without Content-Length", async () => {
    const big = JSON.stringify({ "foo.enable": { ...OPTION, description: "x".repeat(10 * 1024 * 1024) } });
    await expectRefused(() => post(big), 413, "payload_too_large");
    const chunks = () =>
      new ReadableStream({
        start(controller) {
          for (let i = 0; i < 10; i++) controller.enqueue(new TextEncoder().encode("x".repeat(1024 * 1024)));
          controller.close();
        },
      });
    await expectRefused(() => post(chunks()), 413, "payload_too_large");
  });

  it("refuses a body under the size limit holding one string over 1 MiB (value or key) with 413 string_too_long", async () => {
    await expectRefused(() => post(JSON.stringify({ "foo.enable": { ...OPTION, description: "d".repeat(2 * 1024 * 1024) } })), 413, "string_too_long");
    await expectRefused(() => post(JSON.stringify({ ["k".repeat(1024 * 1024 + 1)]: OPTION })), 413, "string_too_long");
  });

  it("refuses oversize batches: 2,001 modules, 25,001 options", async () => {
    const modules = Array.from({ length: 2001 }, (_, i) => ({ path: `many/m${i}.nix`, options: {} }));
    await expectRefused(() => post(JSON.stringify({ modules })), 400, "validation_failed", "2,001 modules");
    const options = Object.fromEntries(Array.from({ length: 25_001 }, (_, i) => [`o${i}.enable`, { type: "boolean", loc: [`o${i}`, "enable"] }]));
    await expectRefused(() => post(JSON.stringify({ modules: [{ path: "many.nix", options }] })), 400, "validation_failed", "25,001 options");
    const optionsJson = Object.fromEntries(Array.from({ length: 25_001 }, (_, i) => [`p${i}.enable`, { type: "boolean", declarations: [`f${i % 7}.nix`] }]));
    await expectRefused(() => post(JSON.stringify(optionsJson)), 400, "validation_failed", "25,001 options.json entries");
  });
});

describe("malformed JSON and odd text", () => {
  const cases: [string, BodyInit][] = [
    ["an unclosed object", "{"],
    ["a truncated batch", '{"foo.enable": {"loc": ["foo", "enable"]'],
    ["a truncated string", '{"foo.enable": {"description": "abc'],
    ["not JSON at all", "not json"],
    ["an empty body", ""],
    ["a trailing comma", '{"foo.enable": {"type": "boolean",}}'],
    ["two documents", '{"a": 1}{"b": 2}'],
    ["JSON with comments", '{"foo.enable": /* hi */ {"type": "boolean"}}'],
    ["invalid UTF-8 bytes", new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ["an overlong UTF-8 encoding of '/'", new Uint8Array([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d])],
    ["a UTF-8-encoded surrogate (CESU)", new Uint8Array([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d])],
    ["a lone high surrogate escape in a value", '{"foo.enable": {"type": "boolean", "loc": ["foo", "enable"], "description": "x\\ud800y"}}'],
    ["a lone low surrogate escape in a key", '{"foo.\\udc00": {"type": "boolean"}}'],
    ["a high surrogate escape at the end of a string", '{"foo.enable": {"type": "boolean", "description": "x\\ud83d"}}'],
    ["10,000-deep nesting", "[".repeat(10_000) + "]".repeat(10_000)],
    ["10,000-deep nesting of objects", '{"a":'.repeat(10_000) + "1" + "}".repeat(10_000)],
    ["nesting over 64 inside a module's meta", JSON.stringify({ modules: [{ path: "m.nix", meta: JSON.parse("[".repeat(100) + "]".repeat(100)), options: {} }] })],
  ];
  for (const [what, body] of cases) {
    it(`refuses ${what} with 400 invalid_json`, async () => {
      await expectRefused(() => post(body), 400, "invalid_json", what);
    });
  }

  it("accepts brackets inside strings and a surrogate pair (they are not nesting or lone)", async () => {
    const res = await postBatch(NS, { "foo.enable": { ...OPTION, description: `${"[".repeat(200)} 😀 \ud83d\ude00` } });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await json(await api(`/api/v1/namespaces/${NS}/options/foo.enable`))).description).toContain("😀 😀");
  });
});

describe("wrong types, bad names and path traversal in batches", () => {
  const cases: [string, unknown, (string | number)[]][] = [
    ["readOnly as a string", { "foo.enable": { ...OPTION, readOnly: "no" } }, ["foo.enable", "readOnly"]],
    ["loc as a string", { "foo.enable": { ...OPTION, loc: "foo.enable" } }, ["foo.enable", "loc"]],
    ["a loc that does not match the name", { "foo.enable": { ...OPTION, loc: ["foo", "other"] } }, ["foo.enable"]],
    ["an option that is a string", { "foo.enable": "a string" }, ["foo.enable"]],
    ["type as a number", { "foo.enable": { ...OPTION, type: 5 } }, ["foo.enable", "type"]],
    ["no type", { "foo.enable": { loc: ["foo", "enable"], description: "no type" } }, ["foo.enable", "type"]],
    ["declarations as an object", { "foo.enable": { ...OPTION, declarations: { a: 1 } } }, ["foo.enable", "declarations"]],
    ["an unknown module field", { modules: [{ path: "m.nix", options: {}, surprise: 1 }] }, ["modules", 0]],
    ["modules as an object", { modules: {} }, ["modules"]],
    ["no modules", { modules: [] }, ["modules"]],
    ["modules: null", { modules: null }, ["modules"]],
    ["an empty object", {}, []],
    ["an array", [1, 2, 3], []],
    ["a number", 42, []],
    ["null", null, []],
    ["an absolute module path", { modules: [{ path: "/etc/passwd", options: {} }] }, ["modules", 0, "path"]],
    ["'..' in a module path", { modules: [{ path: "a/../../b.nix", options: {} }] }, ["modules", 0, "path"]],
    ["a leading '..'", { modules: [{ path: "../secret.nix", options: {} }] }, ["modules", 0, "path"]],
    ["a '.' segment", { modules: [{ path: "a/./b.nix", options: {} }] }, ["modules", 0, "path"]],
    ["a backslash path", { modules: [{ path: "..\\..\\windows.nix", options: {} }] }, ["modules", 0, "path"]],
    ["'..' in an import", { modules: [{ path: "m.nix", imports: ["../../x.nix"], options: {} }] }, ["modules", 0, "imports", 0]],
    ["NUL in a module path", { modules: [{ path: "a\u0000b.nix", options: {} }] }, ["modules", 0, "path"]],
    ["an RTL override in a module path", { modules: [{ path: "modules/\u202Exin.nix", options: {} }] }, ["modules", 0, "path"]],
    ["a bidi isolate in a module path", { modules: [{ path: "modules/a\u2066b.nix", options: {} }] }, ["modules", 0, "path"]],
    ["NUL in an option name", { "foo.a\u0000b": { ...OPTION, loc: ["foo", "a\u0000b"] } }, ["foo.a\u0000b"]],
    ["an RTL override in an option name", { "foo.a\u202Eb": { ...OPTION, loc: ["foo", "a\u202Eb"] } }, ["foo.a\u202Eb"]],
    ["a newline in a loc segment", { modules: [{ path: "m.nix", options: { "foo.x": { ...OPTION, loc: ["foo", "x\n"] } } }] }, ["modules", 0, "options"]],
    ["a reserved module path suffix", { modules: [{ path: "x/versions/1", options: {} }] }, ["modules", 0, "path"]],
    ["a module path of 2,000 characters", { modules: [{ path: `${"a".repeat(2000)}.nix`, options: {} }] }, ["modules", 0, "path"]],
    ["the same option in two modules", { modules: [{ path: "a.nix", options: { "foo.x": { ...OPTION, loc: ["foo", "x"] } } }, { path: "b.nix", options: { "foo.x": { ...OPTION, loc: ["foo", "x"] } } }] }, ["modules", 1, "options"]],
  ];
  for (const [what, body, path] of cases) {
    it(`refuses ${what} with 400 naming the field`, async () => {
      const before = await storeState();
      const res = await post(JSON.stringify(body));
      expect(res.status, what).toBe(400);
      const resBody = await json(res);
      expectEnvelope(res, resBody, "validation_failed");
      expect(resBody.error.details.issues[0].path.slice(0, path.length)).toEqual(path);
      expect(await storeState()).toEqual(before);
    });
  }

  it("refuses bad query parameters and namespace names of a write", async () => {
    const body = JSON.stringify({ "foo.enable": OPTION });
    await expectRefused(() => post(body, undefined, "?mode=delete"), 400, "validation_failed", "mode");
    await expectRefused(() => post(body, undefined, "?importId=../x"), 400, "validation_failed", "importId");
    await expectRefused(() => post(body, undefined, "?surprise=1"), 400, "validation_failed", "unknown parameter");
    await expectRefused(() => api("/api/v1/namespaces/Hostile_NS/modules/batch", { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body }), 400, "validation_failed");
    await expectRefused(() => api("/api/v1/namespaces/..%2Fhostile/modules/batch", { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body }), 400, "validation_failed");
  });

  it("does not echo huge keys back in errors", async () => {
    const res = await post(JSON.stringify({ ["k".repeat(100_000)]: { loc: ["k"], type: 5 } }));
    expect(res.status).toBe(400);
    expect((await res.text()).length).toBeLessThan(2_000);
  });

  it("keeps combining marks in module paths and option names exactly as sent (no normalization)", async () => {
    const nfd = "modules/cafe\u0301.nix";
    const res = await postBatch(NS, { modules: [{ path: nfd, options: { "programs.cafe\u0301.enable": { ...OPTION, loc: ["programs", "cafe\u0301", "enable"] } } }] });
    expect(res.status, await res.clone().text()).toBe(200);
    const mod = await json(await api(`/api/v1/namespaces/${NS}/modules/${enc(nfd)}`));
    expect(mod.path).toBe(nfd);
    expect((await api(`/api/v1/namespaces/${NS}/options/${enc("programs.cafe\u0301.enable")}`)).status).toBe(200);
    // The precomposed spelling is another name.
    expect((await api(`/api/v1/namespaces/${NS}/modules/${enc("modules/caf\u00e9.nix")}`)).status).toBe(404);
  });
});

describe("hostile reads", () => {
  const cases: [string, number, string][] = [
    [`/api/v1/namespaces/${NS}/modules/..%2F..%2Fetc%2Fpasswd`, 400, "validation_failed"],
    [`/api/v1/namespaces/${NS}/modules/modules%2F..%2F..%2Fsecret.nix`, 400, "validation_failed"],
    [`/api/v1/namespaces/${NS}/modules/%2Fetc%2Fpasswd`, 400, "validation_failed"],
    [`/api/v1/namespaces/${NS}/modules/..%2Fx.nix/versions`, 400, "validation_failed"],
    [`/api/v1/namespaces/${NS}/modules/a%00b.nix`, 400, "validation_failed"],
    [`/api/v1/namespaces/${NS}/modules/%E2%80%AEm.nix`, 400, "validation_failed"],
    [`/api/v1/namespaces/${NS}/modules/%FF.nix`, 400, "bad_request"],
    [`/api/v1/namespaces/${NS}/modules/%ED%A0%80.nix`, 400, "bad_request"],
    [`/api/v1/namespaces/${NS}/modules/m.nix?surprise=1`, 400, "validation_failed"],
    [`/api/v1/namespaces/${NS}/options/foo.a%00b`, 400, "validation_failed"],
    [`/api/v1/namespaces/${NS}/options/${"a".repeat(5000)}`, 400, "validation_failed"],
    [`/api/v1/namespaces/${NS}/options/..%2F..%2Fetc%2Fpasswd`, 404, "option_not_found"],
    [`/api/v1/namespaces/${NS}?x=1`, 400, "validation_failed"],
    ["/api/v1/namespaces/..%2F..", 400, "validation_failed"],
    ["/api/v1/stats?verbose=1", 400, "validation_failed"],
    ["/api/v1/health?x", 400, "validation_failed"],
  ];
  for (const [path, status, code] of cases) {
    it(`answers ${status} ${code} for GET ${path.slice(0, 80)}`, async () => {
      await expectRefused(() => api(path), status, code, path);
    });
  }
});

describe("hostile search strings", () => {
  const answered = [
    '"', '""', "a AND", "AND", "OR OR", "-x", "col:x", "name:foo", "*", "a*", "^git", "NEAR(a b, 3)", "NEAR(", "((((((((git))))))))",
    "services.nginx.enable", "foo?", "😀", "git 😀", "'; DROP TABLE options; --", "\u202Egit", "cafe\u0301", "%FF", "%ED%A0%80",
    "a\u0000b", "\\", "{a b}:c", "+git", "<script>alert(1)</script>", "..%2F..%2Fetc%2Fpasswd",
  ];
  for (const q of answered) {
    it(`answers ${JSON.stringify(q)} with 200 and a list, never an internal error`, async () => {
      const before = await storeState();
      const res = await api(`/api/v1/search?q=${q.startsWith("%") ? q : enc(q)}`);
      expect(res.status).toBe(200);
      const body = await json(res);
      expect(Array.isArray(body.hits)).toBe(true);
      expect(JSON.stringify(body)).not.toMatch(/fts5|syntax error|SQLITE/);
      for (const hit of body.hits) expect(hit.snippet).not.toMatch(/<(?!\/?mark>)/);
      expect(await storeState()).toEqual(before);
    });
  }

  const refused: [string, string, string][] = [
    ["whitespace only", "%20%20%09", "query_empty"],
    ["empty", "", "query_empty"],
    ["a 10 KB query", enc("x".repeat(10_000)), "query_too_long"],
    ["a 1 MB query", "y".repeat(1024 * 1024), "query_too_long"],
    ["200 OR'd words", enc(Array.from({ length: 200 }, (_, i) => `w${i}`).join(" OR ")), "query_too_long"],
    ["an unknown parameter", "git&x=1", "validation_failed"],
    ["a namespace filter with a bad name", "git&namespace=..%2Fetc", "validation_failed"],
    ["a limit of 10^9", "git&limit=1000000000", "validation_failed"],
  ];
  for (const [what, q, code] of refused) {
    it(`refuses ${what} with 400 ${code}`, async () => {
      await expectRefused(() => api(`/api/v1/search?q=${q}`), 400, code, what);
    });
  }
});

describe("internal errors", () => {
  it("answers 500 internal_error with a request id and nothing of the failure itself", async () => {
    expect((await postBatch("hostile-broken", { "foo.enable": OPTION })).status).toBe(200);
    // Break the shard's storage from inside: its next read fails with a SQLite error.
    await runInDurableObject(env.NAMESPACE_SHARD.get(env.NAMESPACE_SHARD.idFromName("hostile-broken")), (_i: NamespaceShard, state) => {
      state.storage.sql.exec("DROP TABLE options_fts");
      state.storage.sql.exec("ALTER TABLE options RENAME TO options_gone");
    });
    const res = await api("/api/v1/namespaces/hostile-broken/options/foo.enable");
    expect(res.status).toBe(500);
    const text = await res.text();
    const body = JSON.parse(text);
    expect(body.error.code).toBe("internal_error");
    expect(body.error.details.requestId).toBe(res.headers.get("x-request-id"));
    expect(text).not.toMatch(/options|SQLITE|sqlite|no such|\.ts|at /);
  });
});

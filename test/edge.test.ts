/**
 * The edge's contract for bad input and unauthenticated writes: every rejection is a 4xx in the
 * one error envelope, and nothing is written.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, api, enc, json, postBatch } from "./helpers.ts";

const OPTION = { declarations: ["m.nix"], description: "Whether to enable foo.", loc: ["foo", "enable"], readOnly: false, type: "boolean" };

async function optionCount(): Promise<number> {
  return (await json(await api("/api/v1/namespaces/edge-test"))).options;
}

beforeAll(async () => {
  expect((await postBatch("edge-test", { "foo.enable": OPTION })).status).toBe(200);
});

function expectEnvelope(body: any, code: string): void {
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+|stack/);
}

describe("writes need credentials (test/auth.test.ts covers keys and tokens)", () => {
  const body = JSON.stringify({ "bar.enable": { ...OPTION, loc: ["bar", "enable"] } });
  const cases: [string, Record<string, string>][] = [
    ["no Authorization header", {}],
    ["a wrong token", { authorization: "Bearer not-the-token" }],
    ["a token that is a prefix of the real one", { authorization: "Bearer test-admin" }],
    ["another scheme", { authorization: "Basic dGVzdDp0ZXN0" }],
    ["an empty bearer", { authorization: "Bearer " }],
  ];
  for (const [what, headers] of cases) {
    it(`rejects ${what} with 401 and writes nothing`, async () => {
      const res = await api("/api/v1/namespaces/edge-test/modules/batch", { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
      expect(res.status).toBe(401);
      expectEnvelope(await json(res), "unauthorized");
      expect((await api("/api/v1/namespaces/edge-test/options/bar.enable")).status).toBe(404);
    });
  }
});

describe("bad bodies", () => {
  const post = (body: BodyInit, headers: Record<string, string> = { "content-type": "application/json" }) =>
    api("/api/v1/namespaces/edge-test/modules/batch", { method: "POST", headers: { ...ADMIN, ...headers }, body });

  it("answers 413 for a body over the limit before reading it, and for a chunked one without Content-Length", async () => {
    const big = "x".repeat(8 * 1024 * 1024 + 10);
    const res = await post(JSON.stringify({ "foo.enable": { ...OPTION, description: big } }));
    expect(res.status).toBe(413);
    expectEnvelope(await json(res), "payload_too_large");
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 9; i++) controller.enqueue(new TextEncoder().encode("x".repeat(1024 * 1024)));
        controller.close();
      },
    });
    const streamed = await post(chunks);
    expect(streamed.status).toBe(413);
    expect(await optionCount()).toBe(1);
  });

  it("answers 415 for a body that is not JSON by content type", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"]) {
      const res = await post(JSON.stringify({ "foo.enable": OPTION }), { "content-type": type });
      expect(res.status, type).toBe(415);
      expectEnvelope(await json(res), "unsupported_media_type");
    }
  });

  it("answers 400 for malformed, truncated, non-UTF-8 and too deeply nested JSON", async () => {
    const bodies: BodyInit[] = [
      "{",
      '{"foo.enable": {"loc": ["foo", "enable"]',
      "not json",
      new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
      "[".repeat(10_000) + "]".repeat(10_000),
      JSON.stringify({ modules: [{ path: "m.nix", meta: JSON.parse("[".repeat(100) + "]".repeat(100)), options: {} }] }),
    ];
    for (const body of bodies) {
      const res = await post(body);
      expect(res.status).toBe(400);
      expectEnvelope(await json(res), "invalid_json");
    }
    expect(await optionCount()).toBe(1);
  });

  it("answers 400 naming the field for wrong types, unknown module fields and bad paths", async () => {
    const cases: [unknown, (string | number)[]][] = [
      [{ "foo.enable": { ...OPTION, readOnly: "no" } }, ["foo.enable", "readOnly"]],
      [{ "foo.enable": { ...OPTION, loc: "foo.enable" } }, ["foo.enable", "loc"]],
      [{ "foo.enable": { ...OPTION, loc: ["foo", "other"] } }, ["foo.enable"]],
      [{ "foo.enable": "a string" }, ["foo.enable"]],
      [{ modules: [{ path: "m.nix", options: {}, surprise: 1 }] }, ["modules", 0]],
      [{ modules: [{ path: "/etc/passwd", options: {} }] }, ["modules", 0, "path"]],
      [{ modules: [{ path: "a/../../b.nix", options: {} }] }, ["modules", 0, "path"]],
      [{ modules: [{ path: "a\u0000b.nix", options: {} }] }, ["modules", 0, "path"]],
      [{ modules: [] }, ["modules"]],
      [{ modules: {} }, ["modules"]],
      [{}, []],
      [[1, 2, 3], []],
      [{ "foo.enable": { loc: ["foo", "enable"], description: "no type" } }, ["foo.enable", "type"]],
      [{ modules: [{ path: "x/versions", options: {} }] }, ["modules", 0, "path"]],
      [{ modules: [{ path: "x/versions/1", options: {} }] }, ["modules", 0, "path"]],
      [{ modules: [{ path: "y/diff", options: {} }] }, ["modules", 0, "path"]],
      [{ modules: [{ path: "x/versions/", options: {} }] }, ["modules", 0, "path"]],
    ];
    for (const [body, path] of cases) {
      const res = await post(JSON.stringify(body));
      expect(res.status, JSON.stringify(body)).toBe(400);
      const err = (await json(res)).error;
      expect(err.code).toBe("validation_failed");
      expect(err.details.issues[0].path.slice(0, path.length)).toEqual(path);
    }
    expect(await optionCount()).toBe(1);
  });

  it("does not echo huge keys back in errors", async () => {
    const key = "k".repeat(100_000);
    const res = await post(JSON.stringify({ [key]: { loc: ["k"], type: 5 } }));
    expect(res.status).toBe(400);
    expect((await res.text()).length).toBeLessThan(2_000);
  });

  it("accepts older and richer option shapes without dropping options (BR-27)", async () => {
    const res = await postBatch("edge-shapes", {
      "a.old": { ...OPTION, loc: ["a", "old"], description: { _type: "mdDoc", text: "An mdDoc description." } },
      "a.extra": { ...OPTION, loc: ["a", "extra"], declarationPositions: [{ file: "m.nix", line: 3, column: 5 }], relatedPackages: ["hello"] },
      "a.raw": { ...OPTION, loc: ["a", "raw"], default: "foo", example: { _type: "literalExpression", text: "config.networking.hostName" } },
      "a.decl": { ...OPTION, loc: ["a", "decl"], declarations: [{ name: "<home-manager/modules/m.nix>", url: "https://example.org/m.nix" }] },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const old = await json(await api("/api/v1/namespaces/edge-shapes/options/a.old"));
    expect(old.description).toBe("An mdDoc description.");
    const extra = await json(await api("/api/v1/namespaces/edge-shapes/options/a.extra"));
    expect(extra.extra.declarationPositions).toEqual([{ file: "m.nix", line: 3, column: 5 }]);
    const raw = await json(await api("/api/v1/namespaces/edge-shapes/options/a.raw"));
    expect(raw.default).toEqual({ kind: "value", text: '"foo"' });
    expect(raw.example).toEqual({ kind: "expression", text: "config.networking.hostName" });
    const decl = await json(await api("/api/v1/namespaces/edge-shapes/options/a.decl"));
    expect(decl.declarations).toEqual([{ path: "<home-manager/modules/m.nix>", url: "https://example.org/m.nix" }]);
  });
});

describe("reads", () => {
  it("answers 404 in the envelope for unknown namespaces, modules, options, versions and routes", async () => {
    const cases: [string, string][] = [
      ["/api/v1/namespaces/nope", "namespace_not_found"],
      ["/api/v1/namespaces/edge-test/modules/nope.nix", "module_not_found"],
      ["/api/v1/namespaces/edge-test/modules/m.nix/versions/9", "version_not_found"],
      ["/api/v1/namespaces/edge-test/options/foo.disable", "option_not_found"],
      [`/api/v1/namespaces/edge-test/options/${enc("foo.<name>.x")}`, "option_not_found"],
      ["/api/v1/nothing-here", "not_found"],
    ];
    for (const [path, code] of cases) {
      const res = await api(path);
      expect(res.status, path).toBe(404);
      expectEnvelope(await json(res), code);
    }
  });

  it("answers 400 for invalid namespace names, cursors and page sizes", async () => {
    for (const path of [
      "/api/v1/namespaces/Bad_Name",
      "/api/v1/namespaces/edge-test/modules?limit=0",
      "/api/v1/namespaces/edge-test/modules?limit=abc",
      "/api/v1/namespaces/edge-test/modules?cursor=%%%",
      "/api/v1/namespaces/edge-test/modules?cursor=bm90LWpzb24",
      "/api/v1/namespaces/edge-test/modules?unknown=1",
      "/api/v1/search?q=foo&limit=1000",
      "/api/v1/search?q=foo&cursor=garbage",
      "/api/v1/namespaces/edge-test/modules/m.nix/diff?from=a&to=2",
    ]) {
      const res = await api(path);
      expect(res.status, path).toBe(400);
      expect(typeof (await json(res)).error.code).toBe("string");
    }
  });

  it("pages through modules with a cursor", async () => {
    const many = Object.fromEntries(
      Array.from({ length: 7 }, (_, i) => [`m${i}.enable`, { ...OPTION, loc: [`m${i}`, "enable"], declarations: [`mod${i}.nix`] }]),
    );
    expect((await postBatch("edge-pages", many)).status).toBe(200);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { path: string }[]; nextCursor: string | null } = await json(
        await api(`/api/v1/namespaces/edge-pages/modules?limit=3${cursor ? `&cursor=${enc(cursor)}` : ""}`),
      );
      seen.push(...page.items.map((m) => m.path));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: 7 }, (_, i) => `mod${i}.nix`));
  });

  it("answers 405 for methods the API does not have", async () => {
    for (const method of ["DELETE", "PUT", "PATCH"]) {
      const res = await api("/api/v1/namespaces/edge-test", { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, HEAD, POST");
      expectEnvelope(await json(res), "method_not_allowed");
    }
  });

  it("names the missing diff versions plainly", async () => {
    const res = await api("/api/v1/namespaces/edge-test/modules/m.nix/diff");
    expect(res.status).toBe(400);
    expect(JSON.stringify(await json(res))).toContain("a version number is required");
  });

  it("sends a request id and security headers on every response", async () => {
    for (const path of ["/api/v1/health", "/api/v1/nothing-here", "/api/v1/search?q="]) {
      const res = await api(path);
      expect(res.headers.get("x-request-id")).toMatch(/.+/);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });

  it("answers 304 to a revalidation of an unchanged read", async () => {
    const first = await api("/api/v1/namespaces/edge-test/options/foo.enable");
    const tag = first.headers.get("etag");
    expect(tag).toMatch(/^"/);
    expect(first.headers.get("cache-control")).toContain("must-revalidate");
    const again = await api("/api/v1/namespaces/edge-test/options/foo.enable", { headers: { "if-none-match": tag! } });
    expect(again.status).toBe(304);
    expect((await postBatch("edge-test", { "foo.enable": { ...OPTION, description: "Changed." } })).status).toBe(200);
    const changed = await api("/api/v1/namespaces/edge-test/options/foo.enable", { headers: { "if-none-match": tag! } });
    expect(changed.status).toBe(200);
    expect((await json(changed)).description).toBe("Changed.");
    // Search answers carry per-shard timings: never byte-identical, so no ETag is promised.
    expect((await api("/api/v1/search?q=foo")).headers.get("etag")).toBeNull();
  });

  it("reports totals in /api/v1/stats", async () => {
    const stats = await json(await api("/api/v1/stats"));
    expect(stats.namespaces).toBeGreaterThanOrEqual(1);
    expect(stats.options).toBe(stats.byNamespace.reduce((n: number, i: { options: number }) => n + i.options, 0));
  });
});

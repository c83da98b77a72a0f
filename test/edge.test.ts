/**
 * The edge's contract for reads and accepted input: 404s and 400s of reads in the one error
 * envelope, paging, revalidation, headers. Refused writes are in test/hostile-input.test.ts.
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

// Refused writes (credentials, content types, sizes, malformed JSON, wrong types, bad paths) are
// in test/hostile-input.test.ts, each checked against the whole store.
describe("bodies", () => {
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

describe("URLs and parameters as users write them (fresh-clone findings)", () => {
  it("reaches options and modules through a percent-encoded namespace", async () => {
    const option = await api(`/api/v1/namespaces/edge%2Dtest/options/foo.enable`);
    expect(option.status, await option.clone().text()).toBe(200);
    expect((await json(option)).name).toBe("foo.enable");
    expect((await api(`/api/v1/namespaces/edge%2Dtest/modules/m.nix`)).status).toBe(200);
  });

  it("takes the namespace filter repeated as well as comma-separated, and names the parameter in errors", async () => {
    expect((await postBatch("edge-other", { "foo.enable": OPTION })).status).toBe(200);
    const repeated = await json(await api("/api/v1/search?q=foo&namespace=edge-test&namespace=edge-other"));
    const comma = await json(await api("/api/v1/search?q=foo&namespace=edge-test,edge-other"));
    expect(Object.keys(repeated.facets.namespace).sort()).toEqual(["edge-other", "edge-test"]);
    expect(repeated.hits.map((h: { namespace: string }) => h.namespace)).toEqual(comma.hits.map((h: { namespace: string }) => h.namespace));
    const bad = await api("/api/v1/search?q=foo&namespace=Not_A_Namespace");
    expect(bad.status).toBe(400);
    expect((await json(bad)).error.details.issues[0].path.slice(0, 2)).toEqual(["query", "namespace"]);
  });

  it("refuses look-alike preview names, a module named `batch` and out-of-range version numbers", async () => {
    for (const ns of ["preview-pr-0", "preview-pr-01", "preview-pr-x", "preview-pr-", "preview-pr-99999999999", "preview-42"]) {
      const res = await postBatch(ns, { "foo.enable": OPTION });
      expect(res.status, ns).toBe(400);
    }
    const batch = await postBatch("edge-test", { modules: [{ path: "batch", options: {} }] });
    expect(batch.status).toBe(400);
    for (const n of ["0", "99999999999999999999"]) {
      const res = await api(`/api/v1/namespaces/edge-test/modules/m.nix/versions/${n}`);
      expect(res.status, n).toBe(400);
      expectEnvelope(await json(res), "bad_request");
    }
    expect((await api("/api/v1/namespaces")).status).toBe(200);
    const listed = (await json(await api("/api/v1/namespaces?kind=all"))).items.map((i: { namespace: string }) => i.namespace);
    expect(listed.some((n: string) => n.startsWith("preview-"))).toBe(false);
  });

  it("says whether a namespace is a preview, and when it expires", async () => {
    expect((await json(await api("/api/v1/namespaces/edge-test")))).toMatchObject({ preview: false, expiresAt: null });
    expect((await postBatch("preview-pr-7", { "foo.enable": OPTION })).status).toBe(200);
    const preview = await json(await api("/api/v1/namespaces/preview-pr-7"));
    expect(preview.preview).toBe(true);
    expect(preview.expiresAt).toBeGreaterThan(Date.now());
  });
});

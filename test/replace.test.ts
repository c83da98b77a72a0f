/** Full re-imports spread over several requests: only what no batch of the import carried is removed. */
import { describe, expect, it } from "vitest";
import { api, json, postBatch } from "./helpers.ts";

const option = (name: string, description = `About ${name}.`) => ({ [`${name}.enable`]: { loc: [name, "enable"], type: "boolean", description, declarations: [`${name}.nix`] } });
const module = (name: string, description?: string) => ({ path: `${name}.nix`, options: option(name, description) });

async function live(ns: string): Promise<string[]> {
  const page = await json(await api(`/api/v1/namespaces/${ns}/modules?limit=100`));
  return page.items.map((m: { path: string }) => m.path);
}

describe("multi-batch replace imports", () => {
  it("refuses an import session on a merge (it would hold the replace lock for nothing), writing nothing", async () => {
    const ns = "replace-merge-session";
    expect((await postBatch(ns, { modules: [module("a")] })).status).toBe(200);
    for (const query of ["?importId=z", "?mode=merge&importId=z", "?final=false", "?importId=z&final=false"]) {
      const res = await postBatch(ns, { modules: [module("b")] }, query);
      expect(res.status, query).toBe(400);
      expect((await json(res)).error.code).toBe("validation_failed");
    }
    expect(await live(ns)).toEqual(["a.nix"]);
    // …so a replace import right after is not blocked.
    expect((await postBatch(ns, { modules: [module("a"), module("c")] }, "?mode=replace&importId=r1&final=false")).status).toBe(200);
    expect((await postBatch(ns, { modules: [module("d")] }, "?mode=replace&importId=r1&final=true")).status).toBe(200);
    expect(await live(ns)).toEqual(["a.nix", "c.nix", "d.nix"]);
  });

  it("sweeps modules that no batch of the import carried, on the final batch only", async () => {
    const ns = "replace-multi";
    expect((await postBatch(ns, { modules: [module("a"), module("b"), module("c"), module("d")] })).status).toBe(200);

    const first = await json(await postBatch(ns, { modules: [module("a"), module("b", "Changed.")] }, "?mode=replace&importId=imp1&final=false"));
    expect(first.modules).toEqual({ added: 0, changed: 1, unchanged: 1, removed: 0 });
    expect(await live(ns)).toEqual(["a.nix", "b.nix", "c.nix", "d.nix"]);

    const last = await json(await postBatch(ns, { modules: [module("c"), module("e")] }, "?mode=replace&importId=imp1&final=true"));
    expect(last.modules).toEqual({ added: 1, changed: 0, unchanged: 1, removed: 1 });
    expect(await live(ns)).toEqual(["a.nix", "b.nix", "c.nix", "e.nix"]);
    expect((await api(`/api/v1/namespaces/${ns}/options/d.enable`)).status).toBe(404);

    // The import session is gone: reusing its id starts afresh, so only this batch counts.
    const again = await json(await postBatch(ns, { modules: [module("a")] }, "?mode=replace&importId=imp1&final=true"));
    expect(again.modules.removed).toBe(3);
    expect(await live(ns)).toEqual(["a.nix"]);
  });

  it("keeps versions strictly increasing under concurrent ingests of one namespace", async () => {
    const ns = "replace-concurrent";
    expect((await postBatch(ns, { modules: [module("x")] })).status).toBe(200);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => postBatch(ns, { modules: [module("x", `Revision ${i}.`)] })));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    const versions = await json(await api(`/api/v1/namespaces/${ns}/modules/x.nix/versions`));
    expect(versions.items.map((v: { version: number }) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const module_ = await json(await api(`/api/v1/namespaces/${ns}/modules/x.nix`));
    expect(module_.version).toBe(9);
    expect(module_.options[0].description).toMatch(/^Revision \d\.$/);
  });
});

describe("options that move between modules", () => {
  it("takes a moved option out of the module that held it, recording where it went", async () => {
    const ns = "moves";
    const both = { "a.enable": { loc: ["a", "enable"], type: "boolean", description: "A." }, "shared.x": { loc: ["shared", "x"], type: "int", description: "X." } };
    expect((await postBatch(ns, { modules: [{ path: "a.nix", options: both }] })).status).toBe(200);
    const moved = await json(await postBatch(ns, { modules: [{ path: "b.nix", options: { "shared.x": both["shared.x"] } }] }));
    expect(moved.options).toEqual({ added: 0, changed: 1, removed: 0 });

    const a = await json(await api(`/api/v1/namespaces/${ns}/modules/a.nix`));
    expect(a.optionCount).toBe(1);
    expect(a.options.map((o: { name: string }) => o.name)).toEqual(["a.enable"]);
    const versions = await json(await api(`/api/v1/namespaces/${ns}/modules/a.nix/versions`));
    expect(versions.items[1].changes).toMatchObject({ removed: ["shared.x"], moved: [{ name: "shared.x", to: "b.nix" }] });
    expect((await json(await api(`/api/v1/namespaces/${ns}/options/shared.x`))).module).toBe("b.nix");
    const diff = await json(await api(`/api/v1/namespaces/${ns}/modules/a.nix/diff?from=1&to=2`));
    expect(diff.changes).toMatchObject({ removed: ["shared.x"], moved: [{ name: "shared.x", to: "b.nix" }] });
    const counts = await json(await api(`/api/v1/namespaces/${ns}`));
    expect(counts.options).toBe(2);
    const listed = await json(await api(`/api/v1/namespaces/${ns}/modules`));
    expect(listed.items.reduce((n: number, m: { optionCount: number }) => n + m.optionCount, 0)).toBe(counts.options);
  });

  it("records a move out of a module that the same replace import removes", async () => {
    const ns = "moves-rename";
    const x = { "shared.x": { loc: ["shared", "x"], type: "int", description: "X." } };
    expect((await postBatch(ns, { modules: [{ path: "old.nix", options: x }, module("keep")] })).status).toBe(200);
    // The file was renamed upstream: a full import carries new.nix (with shared.x) and not old.nix.
    const res = await postBatch(ns, { modules: [{ path: "new.nix", options: x }, module("keep")] }, "?mode=replace");
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await json(res)).options).toEqual({ added: 0, changed: 1, removed: 0 });
    expect((await json(await api(`/api/v1/namespaces/${ns}/options/shared.x`))).module).toBe("new.nix");
    const versions = await json(await api(`/api/v1/namespaces/${ns}/modules/old.nix/versions`));
    expect(versions.items.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    expect(versions.items[1].changes).toMatchObject({ deleted: true, removed: ["shared.x"], moved: [{ name: "shared.x", to: "new.nix" }] });
    expect((await json(await api(`/api/v1/namespaces/${ns}`))).options).toBe(2);
  });

  it("rejects a batch that gives one option to two modules", async () => {
    const opt = { "x.y": { loc: ["x", "y"], type: "str", description: "" } };
    const res = await postBatch("moves-dup", { modules: [{ path: "m/a.nix", options: opt }, { path: "m/b.nix", options: opt }] });
    expect(res.status).toBe(400);
    const issue = (await json(res)).error.details.issues[0];
    expect(issue.path).toEqual(["modules", 1, "options", "x.y"]);
    expect(issue.message).toContain("m/a.nix");
    expect((await api("/api/v1/namespaces/moves-dup")).status).toBe(404);
  });
});

describe("concurrent replace imports", () => {
  it("refuses a second replace import while one is in progress, and allows it once the first is final", async () => {
    const ns = "replace-race";
    expect((await postBatch(ns, { modules: [module("old")] })).status).toBe(200);
    expect((await postBatch(ns, { modules: [module("a1")] }, "?mode=replace&importId=A&final=false")).status).toBe(200);
    const b1 = await postBatch(ns, { modules: [module("b1")] }, "?mode=replace&importId=B&final=false");
    expect(b1.status).toBe(409);
    expect((await json(b1)).error).toMatchObject({ code: "conflict", details: { importId: "A" } });
    const single = await postBatch(ns, { modules: [module("c")] }, "?mode=replace");
    expect(single.status).toBe(409);
    expect((await postBatch(ns, { modules: [module("a2")] }, "?mode=replace&importId=A&final=true")).status).toBe(200);
    expect(await live(ns)).toEqual(["a1.nix", "a2.nix"]);
    expect((await postBatch(ns, { modules: [module("b1")] }, "?mode=replace&importId=B&final=false")).status).toBe(200);
    expect((await postBatch(ns, { modules: [module("b2")] }, "?mode=replace&importId=B&final=true")).status).toBe(200);
    expect(await live(ns)).toEqual(["b1.nix", "b2.nix"]);
  });
});

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

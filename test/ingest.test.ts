/**
 * Ingest on the real data: every option of Home Manager and nixvim comes back by its exact name,
 * re-ingest is a no-op, a changed copy yields exactly its change list, and a bad batch writes
 * nothing.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, dataFile, enc, json, postBatch } from "./helpers.ts";

type OptionsJson = Record<string, Record<string, unknown>>;

async function expectAllRetrievable(namespace: string, file: OptionsJson): Promise<void> {
  const names = Object.keys(file);
  const failures: string[] = [];
  for (let i = 0; i < names.length; i += 64) {
    await Promise.all(
      names.slice(i, i + 64).map(async (name) => {
        const res = await api(`/api/v1/namespaces/${namespace}/options/${enc(name)}`);
        if (res.status !== 200) {
          failures.push(`${name}: HTTP ${res.status}`);
          return;
        }
        const body = await json(res);
        if (body.name !== name || JSON.stringify(body.loc) !== JSON.stringify(file[name]!.loc)) failures.push(`${name}: got ${body.name}`);
      }),
    );
  }
  expect(failures.slice(0, 10), `${failures.length} options not retrievable`).toEqual([]);
}

async function counts(namespace: string) {
  return json(await api(`/api/v1/namespaces/${namespace}`));
}

describe("ingest of the real Home Manager and nixvim option sets", () => {
  let hm: OptionsJson;
  let nixvim: OptionsJson;

  beforeAll(async () => {
    hm = (await dataFile("home-manager-options.json.gz")) as OptionsJson;
    nixvim = (await dataFile("nixvim-options.json.gz")) as OptionsJson;
    for (const [ns, file] of [["home-manager", hm], ["nixvim", nixvim]] as const) {
      const res = await postBatch(ns, file);
      expect(res.status, await res.clone().text()).toBe(200);
    }
  });

  it("stores as many options as the files hold", async () => {
    expect((await counts("home-manager")).options).toBe(Object.keys(hm).length);
    expect((await counts("nixvim")).options).toBe(Object.keys(nixvim).length);
    const list = await json(await api("/api/v1/namespaces"));
    const byName = Object.fromEntries(list.items.map((i: { namespace: string }) => [i.namespace, i]));
    expect(byName["home-manager"].options).toBe(5547);
    expect(byName["nixvim"].options).toBe(17762);
  });

  it("returns every Home Manager option by its exact name", async () => {
    await expectAllRetrievable("home-manager", hm);
  });

  it("returns every nixvim option by its exact name", async () => {
    await expectAllRetrievable("nixvim", nixvim);
  });

  it("keeps quoted segments that contain dots as one segment of loc", async () => {
    const name = 'targets.darwin.defaults."com.apple.Safari"."WebKitPreferences.developerExtrasEnabled"';
    const body = await json(await api(`/api/v1/namespaces/home-manager/options/${enc(name)}`));
    expect(body.loc).toEqual(["targets", "darwin", "defaults", "com.apple.Safari", "WebKitPreferences.developerExtrasEnabled"]);
  });

  it("keeps literalExpression and literalMD kinds apart from plain values", async () => {
    const opt = await json(await api(`/api/v1/namespaces/home-manager/options/programs.git.enable`));
    expect(opt.default).toEqual({ kind: "expression", text: "false" });
    const md = Object.entries(nixvim).find(([, v]) => (v.default as { _type?: string } | undefined)?._type === "literalMD")!;
    const mdOpt = await json(await api(`/api/v1/namespaces/nixvim/options/${enc(md[0])}`));
    expect(mdOpt.default.kind).toBe("markdown");
    expect(mdOpt.default.text).toBe((md[1].default as { text: string }).text);
  });

  it("re-ingesting the same file creates no version", async () => {
    const before = await counts("home-manager");
    const res = await postBatch("home-manager", hm);
    const summary = await json(res);
    expect(summary.versionsCreated).toBe(0);
    expect(summary.modules.unchanged).toBe(before.modules);
    expect((await counts("home-manager")).versions).toBe(before.versions);
  });

  it("a copy with 3 options changed and 1 removed yields version 2 with exactly that change list", async () => {
    const copy: OptionsJson = structuredClone(hm);
    copy["programs.git.enable"]!.description = "Whether to enable Git, the stupid content tracker.";
    copy["programs.git.lfs.enable"]!.type = "null or boolean";
    copy["programs.git.ignores"]!.default = { _type: "literalExpression", text: '[ "*.swp" ]' };
    delete copy["programs.git.hooks"];
    const summary = await json(await postBatch("home-manager", copy));
    expect(summary.versionsCreated).toBe(1);
    expect(summary.options).toEqual({ added: 0, changed: 3, removed: 1 });

    const versions = await json(await api(`/api/v1/namespaces/home-manager/modules/${enc("modules/programs/git.nix")}/versions`));
    expect(versions.items.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    expect(versions.items[1].changes).toEqual({
      added: [],
      removed: ["programs.git.hooks"],
      changed: [
        { name: "programs.git.enable", fields: ["description"] },
        { name: "programs.git.ignores", fields: ["default"] },
        { name: "programs.git.lfs.enable", fields: ["type"] },
      ],
      module: [],
    });

    const diff = await json(await api(`/api/v1/namespaces/home-manager/modules/modules/programs/git.nix/diff?from=1&to=2`));
    expect(diff.details["programs.git.lfs.enable"].type).toEqual({ before: "boolean", after: "null or boolean" });

    const removed = await api(`/api/v1/namespaces/home-manager/options/programs.git.hooks`);
    expect(removed.status).toBe(404);
    expect((await json(removed)).error.code).toBe("option_not_found");
    const module = await json(await api(`/api/v1/namespaces/home-manager/modules/modules%2Fprograms%2Fgit.nix`));
    expect(module.version).toBe(2);
    expect(module.options.map((o: { name: string }) => o.name)).not.toContain("programs.git.hooks");
    const old = await json(await api(`/api/v1/namespaces/home-manager/modules/modules/programs/git.nix/versions/1`));
    expect(old.module.options.map((o: { name: string }) => o.name)).toContain("programs.git.hooks");
  });

  it("a replace import soft-deletes the modules it no longer carries and records it in history", async () => {
    const copy: OptionsJson = structuredClone(hm);
    const file = "modules/programs/abook.nix";
    const abook = Object.keys(copy).filter((n) => (copy[n]!.declarations as string[])[0] === file);
    expect(abook.length).toBeGreaterThan(2);
    for (const n of abook) delete copy[n];
    const before = await counts("home-manager");
    const summary = await json(await postBatch("home-manager", copy, "?mode=replace"));
    expect((await counts("home-manager")).updatedAt).toBeGreaterThan(before.updatedAt);
    expect(summary.modules.removed).toBe(1);
    expect(summary.options.removed).toBe(abook.length);
    expect((await counts("home-manager")).options).toBe(Object.keys(copy).length);
    const path = enc(file);
    const versions = await json(await api(`/api/v1/namespaces/home-manager/modules/${path}/versions`));
    const last = versions.items[versions.items.length - 1];
    expect(last.changes.deleted).toBe(true);
    expect(last.changes.removed.sort()).toEqual(abook.sort());
    const module = await json(await api(`/api/v1/namespaces/home-manager/modules/${path}`));
    expect(module.deletedAt).not.toBeNull();
    const listed = await json(await api(`/api/v1/namespaces/home-manager/modules?limit=100&includeDeleted=false`));
    expect(listed.items.map((m: { path: string }) => m.path)).not.toContain(file);

    // Bringing it back restores it as a new version.
    const back = await json(await postBatch("home-manager", hm));
    expect(back.modules.added).toBe(1);
    const restored = await json(await api(`/api/v1/namespaces/home-manager/modules/${path}/versions`));
    expect(restored.items[restored.items.length - 1].changes.restored).toBe(true);
    expect((await api(`/api/v1/namespaces/home-manager/options/programs.abook.enable`)).status).toBe(200);
  });

  it("a batch with one bad record writes nothing and names the record and field", async () => {
    const before = await counts("home-manager");
    const copy: OptionsJson = structuredClone(hm);
    copy["programs.git.enable"]!.description = "changed in the rejected batch";
    copy["programs.zsh.enable"]!.type = 5;
    const res = await postBatch("home-manager", copy);
    expect(res.status).toBe(400);
    const body = await json(res);
    expect(body.error.code).toBe("validation_failed");
    expect(body.error.details.issues[0].path).toEqual(["programs.zsh.enable", "type"]);
    expect(await counts("home-manager")).toEqual(before);
    const git = await json(await api(`/api/v1/namespaces/home-manager/options/programs.git.enable`));
    expect(git.description).not.toBe("changed in the rejected batch");

    const modules = await postBatch("home-manager", {
      modules: [
        { path: "modules/a.nix", options: { "a.enable": { loc: ["a", "enable"], type: "boolean", description: "A" } } },
        { path: "modules/../etc/passwd", options: {} },
      ],
    });
    expect(modules.status).toBe(400);
    expect((await json(modules)).error.details.issues[0].path).toEqual(["modules", 1, "path"]);
    expect((await api(`/api/v1/namespaces/home-manager/options/a.enable`)).status).toBe(404);
    expect(await counts("home-manager")).toEqual(before);
  });
});

/**
 * Docs edits: `PATCH …/options/:name` (description, default, example) and `PUT …/modules/:path`
 * (the whole module) each make one new module version through the ingest machinery, one live
 * event, and a searchable change; without the token they answer 401 and change nothing.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, api, bearer, createKey, dataFile, enc, json, postBatch } from "./helpers.ts";
import { isEvent, isReady, subscribe, type Subscriber } from "./live-helpers.ts";

const NS = "edit-disko";
const OPTION = "disko.devices.bcachefs_filesystems.<name>.mountpoint";
const MODULE = "lib/types/bcachefs_filesystem.nix";

const patch = (name: string, body: unknown, headers: Record<string, string> = ADMIN) =>
  api(`/api/v1/namespaces/${NS}/options/${enc(name)}`, { method: "PATCH", headers: { ...headers, "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
const put = (path: string, body: unknown, headers: Record<string, string> = ADMIN) =>
  api(`/api/v1/namespaces/${NS}/modules/${enc(path)}`, { method: "PUT", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) });
const versions = async (path = MODULE) => (await json(await api(`/api/v1/namespaces/${NS}/modules/${enc(path)}/versions`))).items as any[];
const option = async (name = OPTION) => json(await api(`/api/v1/namespaces/${NS}/options/${enc(name)}`));

async function settle(s: Subscriber): Promise<void> {
  const id = crypto.randomUUID();
  s.send(JSON.stringify({ type: "ping", id }));
  await s.waitFor((f) => f.type === "pong" && f.id === id);
}

beforeAll(async () => {
  expect((await postBatch(NS, await dataFile("disko-options.json.gz"))).status).toBe(200);
});

describe("PATCH an option", () => {
  it("changes description, default and example in one new version, with one live event, and search sees it", async () => {
    const s = await subscribe(`ns:${NS}`);
    await s.waitFor(isReady);
    const before = await versions();
    const res = await patch(OPTION, { description: "Where the zanzibarquux filesystem is mounted.", default: null, example: { kind: "expression", text: '"/srv"' } });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ namespace: NS, module: MODULE, version: before.length + 1, changed: true });

    const after = await option();
    expect(after.description).toBe("Where the zanzibarquux filesystem is mounted.");
    expect(after.default).toBeNull();
    expect(after.example).toEqual({ kind: "expression", text: '"/srv"' });
    const history = await versions();
    expect(history).toHaveLength(before.length + 1);
    expect(history.at(-1).changes.changed).toEqual([{ name: OPTION, fields: ["description", "default", "example"] }]);

    await settle(s);
    const events = s.frames.filter(isEvent);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "module.changed", module: MODULE, version: before.length + 1 });
    const search = await json(await api(`/api/v1/search?q=zanzibarquux&namespace=${NS}`));
    expect(search.hits[0].name).toBe(OPTION);
    s.close();
  });

  it("makes no version and no event when the edit changes nothing", async () => {
    const s = await subscribe(`ns:${NS}`);
    await s.waitFor(isReady);
    const current = await option();
    const before = await versions();
    const res = await patch(OPTION, { description: current.description });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ changed: false, version: before.length });
    await settle(s);
    expect(s.frames.filter(isEvent)).toHaveLength(0);
    s.close();
  });

  it("refuses bad bodies with 400 naming the field, unknown options with 404, and writes nothing", async () => {
    const before = await versions();
    const cases: [unknown, (string | number)[]][] = [
      [{}, ["body"]],
      [{ description: 5 }, ["body", "description"]],
      [{ type: "string" }, ["body"]],
      [{ example: { kind: "python", text: "1" } }, ["body", "example", "kind"]],
      [{ default: "false" }, ["body", "default"]],
    ];
    for (const [body, path] of cases) {
      const res = await patch(OPTION, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const err = (await json(res)).error;
      expect(err.code).toBe("validation_failed");
      expect(err.details.issues[0].path.slice(0, path.length)).toEqual(path);
    }
    expect((await patch(OPTION, "{nope")).status).toBe(400);
    const missing = await patch("disko.no.such.option", { description: "x" });
    expect(missing.status).toBe(404);
    expect((await json(missing)).error.code).toBe("option_not_found");
    const elsewhere = await api(`/api/v1/namespaces/never-ingested/options/a.b`, { method: "PATCH", headers: { ...ADMIN, "content-type": "application/json" }, body: '{"description":"x"}' });
    expect(elsewhere.status).toBe(404);
    expect(await versions()).toEqual(before);
  });
});

describe("PUT a module", () => {
  it("replaces the module's options: one version listing what was added and removed, one event", async () => {
    const s = await subscribe(`ns:${NS}`);
    await s.waitFor(isReady);
    const module = await json(await api(`/api/v1/namespaces/${NS}/modules/${enc(MODULE)}`));
    const kept = module.options.filter((o: { name: string }) => o.name !== OPTION);
    const options = Object.fromEntries(
      kept.map((o: any) => [o.name, { loc: o.loc, type: o.type, description: o.description, declarations: [MODULE], readOnly: o.readOnly }]),
    );
    options["disko.devices.bcachefs_filesystems.<name>.label"] = { loc: ["disko", "devices", "bcachefs_filesystems", "<name>", "label"], type: "string", description: "A label.", declarations: [MODULE] };
    const res = await put(MODULE, { description: "bcachefs filesystems", options });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ module: MODULE, version: module.version + 1, changed: true });
    const last = (await versions()).at(-1);
    expect(last.changes.added).toEqual(["disko.devices.bcachefs_filesystems.<name>.label"]);
    expect(last.changes.removed).toEqual([OPTION]);
    expect(last.changes.module).toContain("description");
    expect((await api(`/api/v1/namespaces/${NS}/options/${enc(OPTION)}`)).status).toBe(404);
    await settle(s);
    expect(s.frames.filter(isEvent).map((e) => [e.module, e.version])).toEqual([[MODULE, module.version + 1]]);
    s.close();
  });

  it("refuses a body naming another module or holding an invalid option, with the field in the error", async () => {
    const before = await versions();
    const other = await put(MODULE, { path: "other.nix", options: {} });
    expect(other.status).toBe(400);
    expect((await json(other)).error.details.issues[0].path).toEqual(["body", "path"]);
    const invalid = await put(MODULE, { options: { "x.y": { loc: ["x", "y"], description: "no type" } } });
    expect(invalid.status).toBe(400);
    expect((await json(invalid)).error.details.issues[0].path.slice(0, 3)).toEqual(["body", "options", "x.y"]);
    expect((await put("a/versions", { options: {} })).status).toBe(400);
    expect(await versions()).toEqual(before);
  });
});

describe("a module replaced as a whole", () => {
  it("needs `options` in the body (an empty body would empty the module), and writes nothing without it", async () => {
    const before = await versions();
    const res = await put(MODULE, {});
    expect(res.status).toBe(400);
    expect((await json(res)).error.details.issues[0].path).toEqual(["body", "options"]);
    expect(await versions()).toEqual(before);
  });
});

describe("authorization and methods", () => {
  it("answers 401 without a valid token and writes nothing, publishes nothing", async () => {
    const s = await subscribe(`ns:${NS}`);
    await s.waitFor(isReady);
    const before = await versions();
    const description = (await json(await api(`/api/v1/namespaces/${NS}/options/disko.checkScripts`))).description;
    for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "Basic dGVzdDp0ZXN0" }] as Record<string, string>[]) {
      const a = await patch("disko.checkScripts", { description: "hijacked" }, headers);
      expect(a.status).toBe(401);
      expect((await json(a)).error.code).toBe("unauthorized");
      const b = await put(MODULE, { options: {} }, headers);
      expect(b.status).toBe(401);
    }
    expect((await json(await api(`/api/v1/namespaces/${NS}/options/disko.checkScripts`))).description).toBe(description);
    expect(await versions()).toEqual(before);
    await settle(s);
    expect(s.frames.filter(isEvent)).toHaveLength(0);
    s.close();
  });

  it("needs the write role in the namespace: a read key or a key of another namespace gets 403; a scoped write key edits, audited", async () => {
    const before = await versions();
    const reader = await createKey({ name: "reader", role: "read" });
    const elsewhere = await createKey({ name: "other-ns", role: "write", namespaces: ["home-manager"] });
    for (const key of [reader, elsewhere]) {
      const a = await patch("disko.checkScripts", { description: "hijacked" }, bearer(key.key));
      expect(a.status).toBe(403);
      expect((await json(a)).error.code).toBe("forbidden");
      expect((await put(MODULE, { options: {} }, bearer(key.key))).status).toBe(403);
    }
    expect(await versions()).toEqual(before);
    const writer = await createKey({ name: "disko-editor", role: "write", namespaces: [NS] });
    const ok = await patch("disko.checkScripts", { description: "Checked by a scoped editor." }, bearer(writer.key));
    expect(ok.status, await ok.clone().text()).toBe(200);
    const audit = await json(await api(`/api/v1/admin/audit?action=option.edit&namespace=${NS}`, { headers: ADMIN }));
    const results = audit.items.map((e: { actor: { id: string | null }; status: number }) => [e.actor.id, e.status]);
    expect(results).toContainEqual([writer.id, 200]);
    expect(results).toContainEqual([reader.id, 403]);
  });

  it("still answers 405 for methods elsewhere", async () => {
    for (const [method, path] of [
      ["DELETE", `/api/v1/namespaces/${NS}/modules/${enc(MODULE)}`],
      ["PUT", `/api/v1/namespaces/${NS}`],
      ["PATCH", `/api/v1/namespaces/${NS}/modules/${enc(MODULE)}`],
      ["PUT", `/api/v1/namespaces/${NS}/options/disko.checkScripts`],
      ["PUT", "/api/v1/search"],
    ] as const) {
      const res = await api(path, { method, headers: ADMIN });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect((await json(res)).error.code).toBe("method_not_allowed");
    }
  });
});

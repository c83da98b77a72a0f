/**
 * What survives and what must not happen inside workerd: data across eviction and abort of the
 * objects, the schema version, search after restart, and no code generation at request time.
 */
import { abortAllDurableObjects, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { pack, packCompressed, unpack, unpackCompressed } from "../src/shared/codec.ts";
import { groupIntoModules } from "../src/shared/group.ts";
import { normalizeOptionsJson } from "../src/shared/schemas.ts";
import { ingestRequestSchema } from "../src/shared/shardSchemas.ts";
import { NamespaceShard } from "../src/objects/NamespaceShard/index.ts";
import { SHARD_MIGRATIONS } from "../src/objects/NamespaceShard/schema.ts";
import { api, dataFile, enc, json, postBatch } from "./helpers.ts";

const shardStub = (ns: string) => env.NAMESPACE_SHARD.get(env.NAMESPACE_SHARD.idFromName(ns));

describe("durability", () => {
  it("keeps modules, options, history and the search index when the shard is evicted", async () => {
    const file = await dataFile("sops-nix-options.json.gz");
    expect((await postBatch("sops-nix", file)).status).toBe(200);
    const changed = structuredClone(file) as Record<string, { description: string }>;
    changed["sops.age.keyFile"]!.description = "A changed description.";
    expect((await json(await postBatch("sops-nix", changed))).versionsCreated).toBe(1);
    const before = await json(await api("/api/v1/namespaces/sops-nix"));

    const stub = shardStub("sops-nix");
    await evictDurableObject(stub);
    expect(await json(await api("/api/v1/namespaces/sops-nix"))).toEqual(before);
    const opt = await json(await api(`/api/v1/namespaces/sops-nix/options/${enc("sops.age.keyFile")}`));
    expect(opt.description).toBe("A changed description.");
    const search = await json(await api(`/api/v1/search?q=${enc("age key file")}&namespace=sops-nix`));
    expect(search.hits[0].name).toBe("sops.age.keyFile");

    await abortAllDurableObjects();
    const versions = await json(await api(`/api/v1/namespaces/sops-nix/modules/${enc(opt.module)}/versions`));
    expect(versions.items.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    expect((await json(await postBatch("sops-nix", changed))).versionsCreated).toBe(0);
  });

  it("records its schema version and applies migrations once", async () => {
    const rows = await runInDurableObject(shardStub("sops-nix"), (_instance: NamespaceShard, state) =>
      state.storage.sql.exec<{ version: number }>("SELECT version FROM _schema_migrations").toArray(),
    );
    expect(rows.map((r) => r.version)).toEqual(SHARD_MIGRATIONS.map((m) => m.version));
    const integrity = await runInDurableObject(shardStub("sops-nix"), (_i: NamespaceShard, state) => {
      state.storage.sql.exec("INSERT INTO options_fts(options_fts) VALUES ('integrity-check')");
      const fts = state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM options_fts").one().n;
      const live = state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM options WHERE deleted_at IS NULL").one().n;
      return { fts, live };
    });
    expect(integrity.fts).toBe(integrity.live);
  });

  it("does not create an object for a namespace that does not exist", async () => {
    const res = await api("/api/v1/namespaces/never-ingested/modules");
    expect(res.status).toBe(404);
    expect((await json(res)).error.code).toBe("namespace_not_found");
    expect((await api("/api/v1/namespaces/never-ingested/options/a.b")).status).toBe(404);
  });
});

/** What a shard holds, read from its SQLite (the registry may lag a batch cut short after commit). */
async function shardRows(ns: string): Promise<{ modules: number; options: number; versions: number; fts: number }> {
  return runInDurableObject(shardStub(ns), (_i: NamespaceShard, state) => {
    const n = (q: string) => state.storage.sql.exec<{ n: number }>(q).one().n;
    return {
      modules: n("SELECT count(*) AS n FROM modules"),
      options: n("SELECT count(*) AS n FROM options"),
      versions: n("SELECT count(*) AS n FROM module_versions"),
      fts: n("SELECT count(*) AS n FROM options_fts"),
    };
  });
}

describe("faults in the middle of a batch", () => {
  it("a failure inside the batch's transaction writes nothing of it; the same batch then applies whole", async () => {
    const file = await dataFile("disko-options.json.gz");
    const names = Object.keys(file).sort();
    // Seed half the options, so the faulty batch both changes stored rows and adds new ones.
    const firstHalf = Object.fromEntries(names.slice(0, names.length / 2).map((n) => [n, file[n]]));
    expect((await postBatch("fault-tx", firstHalf)).status).toBe(200);
    const before = await shardRows("fault-tx");
    const changed = structuredClone(file) as Record<string, { description: string }>;
    for (const n of names) changed[n]!.description = `Changed: ${n}`;
    // The last option the batch inserts fails inside SQLite, after every other row of the batch was written.
    const last = names[names.length - 1]!;
    await runInDurableObject(shardStub("fault-tx"), (_i: NamespaceShard, state) => {
      state.storage.sql.exec(`CREATE TRIGGER inject_fault BEFORE INSERT ON options WHEN NEW.name = '${last}' BEGIN SELECT RAISE(ABORT, 'injected fault'); END`);
    });
    const failed = await postBatch("fault-tx", changed);
    expect(failed.status).toBe(500);
    expect(await failed.text()).not.toContain("injected fault");
    expect(await shardRows("fault-tx")).toEqual(before);
    const kept = await json(await api(`/api/v1/namespaces/fault-tx/options/${enc(names[0]!)}`));
    expect(kept.description).not.toMatch(/^Changed/);

    await runInDurableObject(shardStub("fault-tx"), (_i: NamespaceShard, state) => state.storage.sql.exec("DROP TRIGGER inject_fault"));
    const ok = await postBatch("fault-tx", changed);
    expect(ok.status, await ok.clone().text()).toBe(200);
    const after = await shardRows("fault-tx");
    expect(after.options).toBe(names.length);
    expect(after.fts).toBe(names.length);
    expect((await json(await api(`/api/v1/namespaces/fault-tx/options/${enc(last)}`))).description).toBe(`Changed: ${last}`);
  });

  it("an object aborted while a batch is in flight keeps all of that batch or none of it", async () => {
    const file = await dataFile("nix-darwin-options.json.gz");
    const normalized = normalizeOptionsJson(file);
    if (!("options" in normalized)) throw new Error(JSON.stringify(normalized.issues));
    const modules = groupIntoModules(normalized.options);
    const total = normalized.options.length;
    const outcomes: string[] = [];
    // Abort points spread over the batch: turns of the microtask queue land in the planning (its
    // hashing and compression resolve there), a timer lands after the commit.
    const points: [string, () => Promise<void>][] = [1, 100, 10_000, 100_000].map((n) => [`${n} ticks`, async () => { for (let t = 0; t < n; t++) await Promise.resolve(); }]);
    points.push(["a 0 ms timer", () => new Promise((r) => setTimeout(r, 0))]);
    for (const [i, [point, wait]] of points.entries()) {
      const ns = `fault-abort-${i}`;
      const settled = await runInDurableObject(shardStub(ns), async (instance: NamespaceShard, state) => {
        const run = instance.ingest(ns, { modules, mode: "merge", final: true }).then(
          (r) => (r.ok ? "committed" : r.error.code),
          () => "rejected",
        );
        await wait();
        try {
          state.abort("fault injected by the test");
        } catch {
          // abort() throws in the caller by design
        }
        return run;
      }).catch(() => "aborted");
      const rows = await shardRows(ns);
      // All or nothing: either no row of the batch, or every option with its FTS row and one version per module.
      expect([0, total], `${ns}: ${JSON.stringify(rows)}`).toContain(rows.options);
      expect(rows.fts).toBe(rows.options);
      if (rows.options === 0) expect(rows).toEqual({ modules: 0, options: 0, versions: 0, fts: 0 });
      else expect(rows).toMatchObject({ modules: modules.length, versions: modules.length });
      outcomes.push(`${point}: ${settled}, ${rows.options ? "all" : "none"}`);
      // Whatever happened, the batch sent again completes the namespace.
      expect((await postBatch(ns, file)).status).toBe(200);
      expect((await shardRows(ns)).options).toBe(total);
      expect((await json(await api(`/api/v1/namespaces/${ns}`))).options).toBe(total);
    }
    console.log(`abort outcomes: ${outcomes.join("; ")}`);
    // The aborts landed on both sides of the commit (else this test would show little).
    expect(outcomes.some((o) => o.endsWith("none"))).toBe(true);
    expect(outcomes.some((o) => o.endsWith("all"))).toBe(true);
  });
});

// The vitest pool grants its workers an unsafe-eval binding, so code generation cannot be shown
// to be absent here; test/e2e/codegen.test.ts proves it against a real `wrangler dev`.
describe("snapshot codec and RPC schemas", () => {
  it("round-trips many same-shape records through msgpack and gzip, inside a Durable Object too", async () => {
    const records = Array.from({ length: 50 }, (_, i) => ({ name: `o${i}`, loc: ["o", String(i)], readOnly: false }));
    expect(unpack(pack(records))).toEqual(records);
    expect(await unpackCompressed(await packCompressed(records))).toEqual(records);
    expect(ingestRequestSchema.safeParse({ modules: [], mode: "merge", final: true }).success).toBe(true);
    await runInDurableObject(shardStub("codec-check"), async () => {
      expect(unpack(pack(records))).toEqual(records);
      expect(ingestRequestSchema.safeParse({ modules: [], mode: "replace", final: "yes" }).success).toBe(false);
    });
  });
});

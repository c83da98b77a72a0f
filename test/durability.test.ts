/**
 * What survives and what must not happen inside workerd: data across eviction and abort of the
 * objects, the schema version, search after restart, and no code generation at request time.
 */
import { abortAllDurableObjects, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { pack, packCompressed, unpack, unpackCompressed } from "../src/shared/codec.ts";
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

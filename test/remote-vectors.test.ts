/**
 * The Workers AI + Vectorize path, with fake bindings in the shapes Cloudflare documents (the real
 * services exist only remotely): the shard pushes only changed options, the coordinator's
 * nearest-options query degrades to an error or timeout status, and a shard ranks the options the
 * coordinator hands it.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { NamespaceShard } from "../src/objects/NamespaceShard/index.ts";
import type { SearchCoordinator, SearchResponse } from "../src/objects/SearchCoordinator.ts";
import { groupMatches, remoteNearest, remoteVectors } from "../src/shared/vectors/remote.ts";
import { postBatch } from "./helpers.ts";

const DIMS = 768;

/** Workers AI stand-in: `{ shape: [n, 768], data }` with a vector derived from each text's letters. */
function fakeAi() {
  return {
    run: vi.fn(async (_model: string, inputs: { text: string[] }): Promise<unknown> => ({
      shape: [inputs.text.length, DIMS],
      data: inputs.text.map((t) => Array.from({ length: DIMS }, (_, i) => ((t.charCodeAt(i % t.length) * (i + 1)) % 17) / 17 - 0.5)),
      pooling: "mean",
    })),
  };
}

/** Vectorize stand-in: keeps upserts, answers queries with every stored vector at a fixed score. */
function fakeVectorize() {
  const stored = new Map<string, Record<string, string>>();
  return {
    stored,
    binding: {
      upsert: vi.fn(async (vectors: { id: string; values: number[]; metadata: Record<string, string> }[]): Promise<unknown> => {
        for (const v of vectors) stored.set(v.id, v.metadata);
        return { mutationId: crypto.randomUUID() };
      }),
      deleteByIds: vi.fn(async (ids: string[]): Promise<unknown> => {
        for (const id of ids) stored.delete(id);
        return { mutationId: crypto.randomUUID() };
      }),
      query: vi.fn(async (_vector: number[], options: { topK: number; filter?: { namespace: string } }): Promise<unknown> => {
        const matches = [...stored]
          .filter(([, m]) => !options.filter || m.namespace === options.filter.namespace)
          .slice(0, options.topK)
          .map(([id, metadata]) => ({ id, score: 0.8, metadata }));
        return { count: matches.length, matches };
      }),
    },
  };
}

const option = (name: string, description: string) => ({ [name]: { loc: name.split("."), type: "boolean", description, declarations: ["m.nix"] } });

describe("Vectorize sync from a shard", () => {
  it("pushes every option once, then only the changed ones, and deletes removed ones", async () => {
    const ns = "remote-sync";
    const file = { ...option("a.enable", "Alpha."), ...option("b.enable", "Beta."), ...option("c.enable", "Gamma.") };
    expect((await postBatch(ns, file)).status).toBe(200);
    const ai = fakeAi();
    const vectorize = fakeVectorize();
    const remote = remoteVectors({ AI: ai, VECTORIZE: vectorize.binding })!;
    const stub = env.NAMESPACE_SHARD.get(env.NAMESPACE_SHARD.idFromName(ns));

    const first = await runInDurableObject(stub, (instance: NamespaceShard) => instance.syncRemoteVectors(remote));
    expect(first).toEqual({ embedded: 3, removed: 0 });
    expect([...vectorize.stored.values()].map((m) => m.option).sort()).toEqual(["a.enable", "b.enable", "c.enable"]);
    expect(ai.run).toHaveBeenCalledWith("@cf/baai/bge-base-en-v1.5", { text: expect.any(Array) });

    const changed = { ...option("a.enable", "Alpha, changed."), ...option("b.enable", "Beta.") };
    expect((await postBatch(ns, changed, "?mode=replace")).status).toBe(200);
    const second = await runInDurableObject(stub, (instance: NamespaceShard) => instance.syncRemoteVectors(remote));
    expect(second).toEqual({ embedded: 1, removed: 1 });
    expect([...vectorize.stored.values()].map((m) => m.option).sort()).toEqual(["a.enable", "b.enable"]);
    expect(await runInDurableObject(stub, (instance: NamespaceShard) => instance.syncRemoteVectors(remote))).toEqual({ embedded: 0, removed: 0 });
  });
});

describe("nearest options from Workers AI and Vectorize", () => {
  it("groups matches by namespace and filters to a single chosen namespace", async () => {
    const vectorize = fakeVectorize();
    const remote = remoteVectors({ AI: fakeAi(), VECTORIZE: vectorize.binding })!;
    const [values] = await remote.embedder.embed(["alpha"]);
    await remote.index.upsert([
      { id: "one:a.enable", values: values!, metadata: { namespace: "one", module: "m.nix", option: "a.enable" } },
      { id: "two:b.enable", values: values!, metadata: { namespace: "two", module: "m.nix", option: "b.enable" } },
    ]);
    expect(groupMatches([{ id: "1", score: 0.9, metadata: { namespace: "one", module: "m", option: "a" } }, { id: "2", score: 0.5, metadata: { namespace: "two", module: "m", option: "b" } }])).toEqual(
      new Map([["one", { a: 0.9 }], ["two", { b: 0.5 }]]),
    );
    const one = await remoteNearest(remote, "alpha", ["one"], 10, 1000);
    expect(vectorize.binding.query).toHaveBeenLastCalledWith(expect.any(Array), expect.objectContaining({ topK: 10, filter: { namespace: "one" } }));
    expect(one).toEqual({ status: "ok", byNamespace: new Map([["one", { "a.enable": 0.8 }]]) });
    const all = await remoteNearest(remote, "alpha", ["one", "two"], 10, 1000);
    expect(all.byNamespace).toEqual(new Map([["one", { "a.enable": 0.8 }], ["two", { "b.enable": 0.8 }]]));
  });

  it("reports a failing or slow vector side instead of failing the search", async () => {
    const failing = remoteVectors({ AI: { run: async () => ({ nonsense: true }) }, VECTORIZE: fakeVectorize().binding })!;
    expect((await remoteNearest(failing, "q", [], 10, 1000)).status).toBe("error");
    const hanging = remoteVectors({ AI: { run: () => new Promise(() => {}) }, VECTORIZE: fakeVectorize().binding })!;
    const started = Date.now();
    expect((await remoteNearest(hanging, "q", [], 10, 50)).status).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe("a shard ranking the nearest options it is handed", () => {
  it("adds named options to a several-word query that no name holds", async () => {
    const ns = "remote-hits";
    const file = { ...option("services.dunst.enable", "Whether to enable the Dunst notification daemon."), ...option("programs.git.enable", "Git.") };
    expect((await postBatch(ns, file)).status).toBe(200);
    const stub = env.NAMESPACE_SHARD.get(env.NAMESPACE_SHARD.idFromName(ns));
    const without = await stub.search(ns, "popup message server", 20, {});
    expect(without.ok && without.value.hits.length).toBe(0);
    const withHits = await stub.search(ns, "popup message server", 20, { "services.dunst.enable": 0.72, "no.such.option": 0.9 });
    expect(withHits.ok && withHits.value.hits.map((h) => h.name)).toEqual(["services.dunst.enable"]);
  });
});

describe("the coordinator with Workers AI and Vectorize bound", () => {
  /** Run a search in the coordinator with `AI` and `VECTORIZE` bindings in its environment. */
  async function searchWith(bindings: { AI: unknown; VECTORIZE: unknown }, q: string, namespace: string): Promise<SearchResponse> {
    const stub = env.SEARCH_COORDINATOR.get(env.SEARCH_COORDINATOR.idFromName("global"));
    return runInDurableObject(stub, async (instance: SearchCoordinator) => {
      const self = instance as unknown as { env: Record<string, unknown> };
      const saved = self.env;
      self.env = { ...saved, ...bindings, SEARCH_SHARD_TIMEOUT_MS: "200" };
      try {
        const r = await instance.search({ q, namespaces: [namespace], limit: 10 });
        if (!r.ok) throw new Error(JSON.stringify(r.error));
        return r.value;
      } finally {
        self.env = saved;
      }
    });
  }

  const ns = "remote-coordinated";
  const file = {
    ...option("services.dunst.enable", "Whether to enable the Dunst notification daemon."),
    ...option("programs.git.signing.key", "The key to sign commits with."),
  };

  it("asks Vectorize beside the lexical fan-out and re-asks only a shard that needs vectors", async () => {
    expect((await postBatch(ns, file)).status).toBe(200);
    const ai = fakeAi();
    const vectorize = fakeVectorize();
    const stub = env.NAMESPACE_SHARD.get(env.NAMESPACE_SHARD.idFromName(ns));
    await runInDurableObject(stub, (instance: NamespaceShard) => instance.syncRemoteVectors(remoteVectors({ AI: ai, VECTORIZE: vectorize.binding })!));

    // No name holds these words: the shard asks for vectors and ranks Vectorize's answer.
    const intent = await searchWith({ AI: ai, VECTORIZE: vectorize.binding }, "popup message server", ns);
    expect(intent.vectors).toBe("ok");
    expect(intent.partial).toBe(false);
    expect(intent.hits.map((h) => h.name)).toContain("services.dunst.enable");

    // A name holds every word: the answer does not wait for (or use) the vectors.
    const named = await searchWith({ AI: ai, VECTORIZE: vectorize.binding }, "git signing key", ns);
    expect(named.vectors).toBe("unused");
    expect(named.hits[0]!.name).toBe("programs.git.signing.key");
  });

  it("answers lexically, flagged partial, when the vector side hangs, and never waits for it when unneeded", async () => {
    const hanging = { AI: { run: () => new Promise(() => {}) }, VECTORIZE: fakeVectorize().binding };
    const intent = await searchWith(hanging, "dunst popup server", ns);
    expect(intent.vectors).toBe("timeout");
    expect(intent.partial).toBe(true);
    expect(intent.hits.map((h) => h.name)).toEqual(["services.dunst.enable"]);
    const started = Date.now();
    const named = await searchWith(hanging, "git signing key", ns);
    expect(named.vectors).toBe("unused");
    expect(named.partial).toBe(false);
    expect(Date.now() - started).toBeLessThan(200);
  });
});

/**
 * The vector side of hybrid search: option texts, the local hashed embedder, int8 vectors and
 * exact top-k, re-embedding plans, the SQLite store inside a real shard (with real Home Manager
 * options) and the Workers AI / Vectorize adapters against fake bindings.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { SqliteVectorStore } from "../src/objects/NamespaceShard/vectorStore.ts";
import { embeddingSources, liveOptionHashes } from "../src/objects/NamespaceShard/vectors.ts";
import type { NamespaceShard } from "../src/objects/NamespaceShard/index.ts";
import {
  type AiRunner,
  Int8Matrix,
  InvalidResponseError,
  LocalEmbedder,
  type VectorItem,
  type VectorizeBinding,
  VectorizeStore,
  WorkersAiEmbedder,
  dequantizeInt8,
  descriptionText,
  fitIdf,
  idfStatsSchema,
  optionEmbeddingText,
  optionVectorKey,
  planEmbeddings,
  quantizeInt8,
  topKCosine,
  vectorizeId,
} from "../src/shared/vectors/index.ts";
import { dataFile, json, postBatch } from "./helpers.ts";

type RawOption = { loc: string[]; type: string; description: string; declarations: string[] };
type OptionsJson = Record<string, RawOption>;

// Compile-time: the real bindings satisfy the structural types the adapters take.
export const bindingsFit = {
  ai: (ai: Ai): AiRunner => ai,
  vectorize: (v: Vectorize): VectorizeBinding => v,
  vectorizeBeta: (v: VectorizeIndex): VectorizeBinding => v,
};

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
const norm = (a: ArrayLike<number>) => Math.sqrt(dot(a, a));
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => dot(a, b) / (norm(a) * norm(b) || 1);

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function randomVector(next: () => number, d: number): Float32Array {
  return Float32Array.from({ length: d }, () => next() * 2 - 1);
}

/** A name query with one typo: two middle letters of the longest name segment swapped. */
function typoQuery(loc: string[]): string | null {
  const segments = loc.filter((s) => /^[a-z]/i.test(s));
  const longest = segments.reduce((a, b) => (b.length > a.length ? b : a), "");
  if (longest.length < 5) return null;
  const p = Math.floor(longest.length / 2);
  return segments.join(" ").replace(longest, longest.slice(0, p - 1) + longest[p] + longest[p - 1] + longest.slice(p + 1));
}

/** The real Home Manager options, loaded once by the tests that need them (missing data fails them). */
let hmLoad: Promise<OptionsJson> | undefined;
const loadHm = () => (hmLoad ??= dataFile("home-manager-options.json.gz") as Promise<OptionsJson>);

describe("option embedding text", () => {
  it("is the name words, the type and the description without Markdown", () => {
    const text = optionEmbeddingText({
      loc: ["networking", "firewall", "allowedTCPPorts"],
      type: "list of 16 bit unsigned integer",
      description:
        "Ports opened in the firewall; see {option}`networking.firewall.enable` and {manpage}`iptables(8)`.\n\n::: {.note}\nUse **`[](#opt-networking.firewall.allowedUDPPorts)`** for *UDP*, or [the manual](https://nixos.org/manual).\n:::",
    });
    expect(text).toBe(
      "networking firewall allowed tcp ports allowedtcpports (list of 16 bit unsigned integer): Ports opened in the firewall; see networking.firewall.enable and iptables(8). Use networking.firewall.allowedUDPPorts for UDP, or the manual.",
    );
    expect(optionEmbeddingText({ loc: ["a", "<name>", "b"], type: "string", description: "This option has no description." })).toBe("a b (string)");
  });

  it("truncates long descriptions at a sentence end", () => {
    const long = Array.from({ length: 60 }, (_, i) => `Sentence number ${i} explains a detail.`).join(" ");
    const text = optionEmbeddingText({ loc: ["x"], type: "string", description: long });
    const description = text.slice("x (string): ".length);
    expect(description.length).toBeLessThanOrEqual(600);
    expect(description.length).toBeGreaterThan(300);
    expect(description.endsWith("detail.")).toBe(true);
    expect(descriptionText("```nix\n{ a = 1; }\n```")).toBe("{ a = 1; }");
  });
});

describe("LocalEmbedder", () => {
  const e = new LocalEmbedder();

  it("is deterministic and L2-normalized", async () => {
    const texts = ["programs git signing key (null or string): The default signing key fingerprint.", "services syncthing enable", "ÄÖÜ ß 日本語", ""];
    const a = await e.embed(texts);
    const b = await new LocalEmbedder().embed(texts);
    expect(e.dimensions).toBe(256);
    expect(e.id).toBe("local-hash3-d256-v1");
    for (let i = 0; i < texts.length; i++) {
      expect([...a[i]!]).toEqual([...b[i]!]);
      expect(a[i]!.length).toBe(256);
    }
    for (const v of a.slice(0, 3)) expect(norm(v)).toBeCloseTo(1, 6);
    expect(norm(a[3]!)).toBe(0);
    expect(norm(e.embedOne("-- ; ()"))).toBe(0);
    // Function words weigh little but still tell otherwise equal texts apart.
    expect(cosine(e.embedOne("nix registry to"), e.embedOne("nix registry from"))).toBeLessThan(0.999);
  });

  it("puts a misspelling closer to the word than to unrelated words", () => {
    const typo = e.embedOne("synctihng");
    const right = cosine(typo, e.embedOne("syncthing"));
    expect(right).toBeGreaterThan(0.3);
    for (const w of ["git", "firefox", "keyboard", "nothing", "thinking", "string", "enable", "postgresql", "zsh"]) {
      expect(right, w).toBeGreaterThan(cosine(typo, e.embedOne(w)) + 0.2);
    }
  });

  it("finds every real Home Manager option nearest to its own text, and most from a misspelled name", async () => {
    const hm = await loadHm();
    const names = Object.keys(hm);
    expect(names.length).toBe(5547);
    const texts = names.map((n) => optionEmbeddingText(hm[n]!));
    const vectors = texts.map((t) => e.embedOne(t));
    const data = new Int8Array(vectors.length * 256);
    vectors.forEach((v, i) => data.set(quantizeInt8(v).values, i * 256));
    const matrix = new Int8Matrix(Int32Array.from(vectors.keys()), 256, data);
    for (let i = 0; i < names.length; i++) {
      const [top] = topKCosine(matrix, e.embedOne(texts[i]!), 1);
      // Identical texts tie; then the option itself scores as high as the winner.
      if (top!.id !== i) expect(texts[top!.id], names[i]).toBe(texts[i]);
    }
    let asked = 0;
    let found = 0;
    for (let i = 0; i < names.length; i += 20) {
      const query = typoQuery(hm[names[i]!]!.loc);
      if (!query) continue;
      asked++;
      if (topKCosine(matrix, e.embedOne(query), 10).some((r) => r.id === i)) found++;
    }
    expect(asked).toBeGreaterThan(200);
    // Measured 0.90 at the time of writing.
    expect(found / asked).toBeGreaterThan(0.8);
  });

  it("fits deterministic, serializable IDF statistics that are part of its id", async () => {
    const hm = await loadHm();
    const texts = Object.values(hm).slice(0, 800).map((o) => optionEmbeddingText(o));
    const stats = fitIdf(texts);
    expect(fitIdf([...texts].reverse())).toEqual(stats);
    const restored = idfStatsSchema.parse(JSON.parse(JSON.stringify(stats)));
    const a = new LocalEmbedder({ idf: stats });
    const b = new LocalEmbedder({ idf: restored as typeof stats });
    expect(a.id).toMatch(/^local-hash3-d256-v1-idf[0-9a-f]{8}$/);
    expect(b.id).toBe(a.id);
    expect(new LocalEmbedder({ idf: fitIdf(texts.slice(1)) }).id).not.toBe(a.id);
    expect([...b.embedOne(texts[5]!)]).toEqual([...a.embedOne(texts[5]!)]);
    expect(norm(a.embedOne(texts[5]!))).toBeCloseTo(1, 6);
    // A common word weighs less than a rare one under IDF.
    const common = a.embedOne("enable");
    const rare = a.embedOne("enable vdirsyncer");
    expect(cosine(rare, a.embedOne("vdirsyncer"))).toBeGreaterThan(cosine(rare, common));
    expect(() => new LocalEmbedder({ idf: { ...stats, hashes: [...stats.hashes].reverse() } })).toThrow(/strictly increasing/);
    expect(() => new LocalEmbedder({ dimensions: 300 })).toThrow(/power of two/);
  });
});

describe("int8 vectors", () => {
  it("stay within half a quantization step of the float vector", async () => {
    const hm = await loadHm();
    const next = random(7);
    const e = new LocalEmbedder();
    const samples = [
      ...Array.from({ length: 200 }, () => randomVector(next, 256)),
      ...Object.values(hm).slice(0, 200).map((o) => e.embedOne(optionEmbeddingText(o))),
    ];
    for (const v of samples) {
      const q = quantizeInt8(v);
      const back = dequantizeInt8(q);
      const max = Math.max(...v.map(Math.abs));
      expect(q.scale).toBeCloseTo(max / 127, 12);
      expect(Math.max(...q.values.map(Math.abs))).toBe(127);
      let err2 = 0;
      for (let i = 0; i < v.length; i++) {
        const err = Math.abs(v[i]! - back[i]!);
        expect(err).toBeLessThanOrEqual(q.scale / 2 + 1e-7);
        err2 += err * err;
      }
      // For any unit query u, |u·v − u·v'| ≤ ‖v − v'‖ ≤ √D · scale / 2.
      expect(Math.sqrt(err2)).toBeLessThanOrEqual((Math.sqrt(v.length) * q.scale) / 2 + 1e-6);
      expect(cosine(v, back)).toBeGreaterThan(0.999);
    }
    const zero = quantizeInt8(new Float32Array(16));
    expect(zero.scale).toBe(0);
    expect([...dequantizeInt8(zero)]).toEqual(Array(16).fill(0));
  });

  it("top-k is exact cosine over every row, ties by ascending id", () => {
    const next = random(11);
    const d = 32;
    const rows = Array.from({ length: 500 }, () => quantizeInt8(randomVector(next, d)).values);
    rows[300] = rows[100]!; // a duplicate: equal scores
    const ids = Int32Array.from(rows.keys(), (i) => i * 3 + 1);
    const data = new Int8Array(rows.length * d);
    rows.forEach((r, i) => data.set(r, i * d));
    const matrix = new Int8Matrix(ids, d, data);
    for (let q = 0; q < 20; q++) {
      const query = q === 0 ? Float32Array.from(rows[100]!) : randomVector(next, d);
      const brute = rows
        .map((r, i) => ({ id: ids[i]!, score: cosine(query, r) }))
        .sort((a, b) => b.score - a.score || a.id - b.id)
        .slice(0, 25);
      const got = topKCosine(matrix, query, 25);
      expect(got.map((r) => r.id)).toEqual(brute.map((r) => r.id));
      got.forEach((r, i) => expect(r.score).toBeCloseTo(brute[i]!.score, 9));
    }
    expect(topKCosine(matrix, Float32Array.from(rows[100]!), 2).map((r) => r.id)).toEqual([ids[100], ids[300]]);
    expect(() => topKCosine(matrix, new Float32Array(8), 3)).toThrow(/dimensions/);
  });
});

describe("planEmbeddings", () => {
  it("embeds new and changed options only, and removes vectors of options that are gone", () => {
    const current = new Map([[5, "a"], [1, "b"], [9, "c"], [3, "d"]]);
    const stored = new Map([[1, "b"], [9, "old"], [7, "x"], [2, "y"]]);
    expect(planEmbeddings(current, stored)).toEqual({ embed: [3, 5, 9], remove: [2, 7], unchanged: 1 });
    expect(planEmbeddings(current, current)).toEqual({ embed: [], remove: [], unchanged: 4 });
    expect(planEmbeddings(new Map(), stored)).toEqual({ embed: [], remove: [2, 7, 9, 1].sort((a, b) => a - b), unchanged: 0 });
    expect(planEmbeddings(new Map([["b", "1"], ["a", "2"]]), new Map<string, string>())).toEqual({ embed: ["a", "b"], remove: [], unchanged: 0 });
  });
});

describe("SqliteVectorStore in a NamespaceShard", () => {
  const shard = (name: string) => env.NAMESPACE_SHARD.get(env.NAMESPACE_SHARD.idFromName(name));

  it("round-trips vectors in a fresh shard, after its migrations", async () => {
    const stub = shard(`vectors-unit-${crypto.randomUUID()}`);
    await runInDurableObject(stub, async (_i: NamespaceShard, state) => {
      const sql = state.storage.sql;
      const versions = sql.exec<{ version: number }>("SELECT version FROM _schema_migrations ORDER BY version").toArray().map((r) => r.version);
      expect(versions).toContain(3);
      const store = new SqliteVectorStore(state.storage, { embedderId: "test", dimensions: 4 });
      expect(store.reset).toBe(false);
      const item = (id: number, values: number[], contentHash = `h${id}`): VectorItem => ({
        id: String(id),
        values: Float32Array.from(values),
        metadata: { namespace: "n", module: "m", option: `o${id}` },
        contentHash,
      });
      await store.upsert([item(1, [1, 0, 0, 0]), item(2, [0, 1, 0, 0]), item(3, [0.6, 0.8, 0, 0])]);
      expect(store.count()).toBe(3);
      const row = sql.exec<{ scale: number; vec: ArrayBuffer }>("SELECT scale, vec FROM option_vectors WHERE option_id = 3").one();
      expect(row.vec.byteLength).toBe(4);
      expect([...new Int8Array(row.vec)]).toEqual([95, 127, 0, 0]);
      expect(row.scale).toBeCloseTo(Math.fround(0.8) / 127, 12);

      const matches = await store.query(Float32Array.from([1, 0.1, 0, 0]), { topK: 2 });
      expect(matches.map((m) => m.id)).toEqual(["1", "3"]);
      expect(matches[0]!.score).toBeCloseTo(1 / Math.hypot(1, 0.1), 6);
      // No option rows in this shard: no metadata to report.
      expect(matches[0]!.metadata).toBeUndefined();

      await store.upsert([item(1, [0, 0, 1, 0], "h1b")]);
      expect((await store.query(Float32Array.from([0, 0, 1, 0]), { topK: 1 }))[0]).toMatchObject({ id: "1", score: 1 });
      expect(store.hashes()).toEqual(new Map([[1, "h1b"], [2, "h2"], [3, "h3"]]));
      await store.deleteByIds(["2", "3"]);
      expect(store.count()).toBe(1);

      await expect(store.upsert([item(4, [1, 2, 3])])).rejects.toThrow(/3 dimensions; expected 4/);
      await expect(store.upsert([item(4, [1, NaN, 0, 0])])).rejects.toThrow(/non-finite/);
      await expect(store.upsert([{ ...item(4, [1, 0, 0, 0]), contentHash: undefined }])).rejects.toThrow(/contentHash/);
      await expect(store.upsert([item(0, [1, 0, 0, 0]), item(5, [1, 0, 0, 0])].map((x, i) => (i === 0 ? { ...x, id: "opt-1" } : x)))).rejects.toThrow(/not an option row id/);
      expect(store.count()).toBe(1);

      const other = new SqliteVectorStore(state.storage, { embedderId: "another", dimensions: 4 });
      expect(other.reset).toBe(true);
      expect(other.count()).toBe(0);
    });
  });

  it("embeds the real Home Manager options, answers exact top-k, survives eviction and re-embeds only changed options", async () => {
    const hm = await loadHm();
    const ns = "vectors-hm";
    expect((await postBatch(ns, hm)).status).toBe(200);
    const stub = shard(ns);
    const embedder = new LocalEmbedder();
    const queries = ["git signing key", "synctihng", "firefox extensions", "zsh history size", "gpg agent ssh support", "dark theme"];
    const options = { embedderId: embedder.id, dimensions: embedder.dimensions };

    const first = await runInDurableObject(stub, async (_i: NamespaceShard, state) => {
      const sql = state.storage.sql;
      const store = new SqliteVectorStore(state.storage, options);
      // The shard embedded every option when the batch was ingested.
      expect(planEmbeddings(liveOptionHashes(sql), store.hashes())).toMatchObject({ embed: [], remove: [], unchanged: 5547 });
      const sources = embeddingSources(sql, [...liveOptionHashes(sql).keys()]);
      const vectors = await embedder.embed(sources.map((s) => optionEmbeddingText(s)));
      await store.upsert(sources.map((s, i) => ({ id: String(s.id), values: vectors[i]!, metadata: { namespace: ns, module: s.module, option: s.name }, contentHash: s.contentHash })));
      expect(store.count()).toBe(5547);
      expect(planEmbeddings(liveOptionHashes(sql), store.hashes())).toMatchObject({ embed: [], remove: [], unchanged: 5547 });

      // Each option is found from its own text, with its namespace, module and name.
      for (let i = 0; i < sources.length; i += 97) {
        const s = sources[i]!;
        const [top] = await store.query(vectors[i]!, { topK: 1 });
        if (top!.id !== String(s.id)) expect(top!.score).toBeCloseTo(1, 6);
        else expect(top!.metadata).toEqual({ namespace: ns, module: s.module, option: s.name });
      }
      expect(await store.query(vectors[0]!, { topK: 5, namespace: "home-manager" })).toEqual([]);

      // Exact: the store's top-k is a brute-force cosine over the stored int8 rows...
      const rows = sql.exec<{ option_id: number; vec: ArrayBuffer }>("SELECT option_id, vec FROM option_vectors").toArray();
      const floats = new Map(sources.map((s, i) => [s.id, vectors[i]!]));
      const results: Record<string, { id: string; score: number }[]> = {};
      for (const q of queries) {
        const qv = embedder.embedOne(q);
        const got = await store.query(qv, { topK: 20, namespace: ns });
        const brute = rows
          .map((r) => ({ id: r.option_id, score: cosine(qv, new Int8Array(r.vec)) }))
          .sort((a, b) => b.score - a.score || a.id - b.id)
          .slice(0, 20);
        expect(got.map((m) => Number(m.id)), q).toEqual(brute.map((r) => r.id));
        got.forEach((m, i) => expect(m.score).toBeCloseTo(brute[i]!.score, 9));
        // ...and close to the float vectors' ranking: scores within the quantization error.
        for (const m of got) expect(Math.abs(m.score - cosine(qv, floats.get(Number(m.id))!))).toBeLessThan(0.02);
        const floatTop = [...floats].map(([id, v]) => ({ id, score: cosine(qv, v) })).sort((a, b) => b.score - a.score).slice(0, 10);
        const overlap = floatTop.filter((f) => got.slice(0, 10).some((m) => Number(m.id) === f.id)).length;
        expect(overlap, q).toBeGreaterThanOrEqual(8);
        results[q] = got.map(({ id, score }) => ({ id, score }));
      }
      const typo = await store.query(embedder.embedOne("synctihng"), { topK: 5 });
      for (const m of typo) expect(m.metadata?.option).toMatch(/^services\.syncthing\./);
      return { results, hashes: store.hashes() };
    });

    await evictDurableObject(stub);

    const changed = structuredClone(hm);
    const edits = ["programs.git.signing.key", "services.syncthing.enable", "programs.zsh.history.size"];
    for (const name of edits) changed[name]!.description = `${changed[name]!.description} Changed for the vector test.`;
    const removed = "programs.git.signing.signByDefault";
    expect(changed[removed]).toBeDefined();
    delete changed[removed];
    const summary = await json(await postBatch(ns, changed));
    expect(summary.options).toEqual({ added: 0, changed: 3, removed: 1 });

    await runInDurableObject(stub, async (_i: NamespaceShard, state) => {
      const sql = state.storage.sql;
      const store = new SqliteVectorStore(state.storage, options);
      expect(store.reset).toBe(false);
      // The ingest embedded only the three changed options again and dropped the removed one's vector.
      const after = store.hashes();
      const name = (id: number) => sql.exec<{ name: string }>("SELECT name FROM options WHERE id = ?", id).one().name;
      const reembedded = [...after].filter(([id, hash]) => first.hashes.get(id) !== hash).map(([id]) => name(id));
      expect(reembedded.sort()).toEqual([...edits].sort());
      const dropped = [...first.hashes.keys()].filter((id) => !after.has(id)).map(name);
      expect(dropped).toEqual([removed]);
      expect(store.count()).toBe(5546);
      expect(planEmbeddings(liveOptionHashes(sql), store.hashes())).toMatchObject({ embed: [], remove: [], unchanged: 5546 });
      // Unchanged options answer as before the eviction.
      const unchangedQuery = await store.query(embedder.embedOne("firefox extensions"), { topK: 20 });
      expect(unchangedQuery.map(({ id, score }) => ({ id, score }))).toEqual(first.results["firefox extensions"]);
      const top = await store.query(embedder.embedOne("zsh history size changed for the vector test"), { topK: 1 });
      expect(top[0]!.metadata?.option).toBe("programs.zsh.history.size");
    });
  });
});

describe("WorkersAiEmbedder against a fake binding", () => {
  /** A response in the documented shape: `{ shape: [n, 768], data: number[][], pooling }`. */
  function documented(texts: string[], dims = 768) {
    return { shape: [texts.length, dims], data: texts.map((t) => Array.from({ length: dims }, (_, i) => ((t.length + i) % 7) / 7 - 0.5)), pooling: "mean" };
  }

  it("sends at most 100 texts per call and returns their vectors in order", async () => {
    const run = vi.fn(async (_model: string, inputs: { text: string[] }) => documented(inputs.text));
    const embedder = new WorkersAiEmbedder({ run });
    expect(embedder.dimensions).toBe(768);
    expect(embedder.id).toBe("workers-ai:@cf/baai/bge-base-en-v1.5");
    const texts = Array.from({ length: 250 }, (_, i) => "x".repeat(i + 1));
    const vectors = await embedder.embed(texts);
    expect(run).toHaveBeenCalledTimes(3);
    expect(run.mock.calls.map((c) => c[0])).toEqual(Array(3).fill("@cf/baai/bge-base-en-v1.5"));
    expect(run.mock.calls.map((c) => c[1])).toEqual([{ text: texts.slice(0, 100) }, { text: texts.slice(100, 200) }, { text: texts.slice(200) }]);
    expect(vectors).toHaveLength(250);
    expect(vectors[137]).toBeInstanceOf(Float32Array);
    expect([...vectors[137]!]).toEqual([...Float32Array.from(documented([texts[137]!]).data[0]!)]);
    expect(await embedder.embed([])).toEqual([]);
    expect(run).toHaveBeenCalledTimes(3);

    const cls = new WorkersAiEmbedder({ run }, "@cf/baai/bge-small-en-v1.5", { pooling: "cls" });
    run.mockResolvedValueOnce({ ...documented(["a"], 384), pooling: "cls" });
    await cls.embed(["a"]);
    expect(run).toHaveBeenLastCalledWith("@cf/baai/bge-small-en-v1.5", { text: ["a"], pooling: "cls" });
    expect(cls.id).toBe("workers-ai:@cf/baai/bge-small-en-v1.5:cls");
    expect(() => new WorkersAiEmbedder({ run }, "@cf/unknown/model")).toThrow(/dimensions/);
  });

  it("rejects answers that are not the documented shape", async () => {
    const row = (n = 768, v = 0.1) => Array<number>(n).fill(v);
    const cases: [unknown, RegExp][] = [
      [{ shape: [1, 768], data: [[NaN, ...row(767)]] }, /data\.0\.0/],
      [{ shape: [1, 768], data: [[Infinity, ...row(767)]] }, /data\.0\.0/],
      [{ shape: [1, 768], data: [[1e39, ...row(767)]] }, /float32/],
      [{ shape: [1, 767], data: [row(767)] }, /767-dimensional.*expected 768/],
      [{ shape: [1, 768], data: [row(767)] }, /767 dimensions; expected 768/],
      [{ shape: [2, 768], data: [row()] }, /shape \[2, 768\]\) for 1 texts/],
      [{ shape: [1, 768], data: [row(), row()] }, /2 vectors/],
      [{ data: [row()] }, /shape/],
      [{ shape: [1, 768] }, /data/],
      [{ shape: [1, 768], data: [["0.1", ...row(767)]] }, /data\.0\.0/],
      [{ request_id: "abc" }, /asynchronous/],
      ["embeddings", /response/],
      [null, /response/],
    ];
    for (const [response, message] of cases) {
      const run = vi.fn(async () => response);
      const promise = new WorkersAiEmbedder({ run }).embed(["one text"]);
      await expect(promise, JSON.stringify(response)?.slice(0, 60)).rejects.toThrow(InvalidResponseError);
      await expect(new WorkersAiEmbedder({ run }).embed(["one text"])).rejects.toThrow(message);
      await expect(new WorkersAiEmbedder({ run }).embed(["one text"])).rejects.toThrow(/^Workers AI \(@cf\/baai\/bge-base-en-v1\.5\) returned an invalid response/);
    }
  });
});

describe("VectorizeStore against a fake binding", () => {
  const D = 16;

  /** A Vectorize stand-in: keeps what `upsert` gets, answers `query` by cosine, in the recorded shapes. */
  function fakeVectorize() {
    const stored = new Map<string, { values: number[]; metadata: Record<string, string> }>();
    const binding = {
      upsert: vi.fn(async (vectors: { id: string; values: number[]; metadata: Record<string, string> }[]): Promise<unknown> => {
        for (const v of vectors) stored.set(v.id, { values: v.values, metadata: v.metadata });
        return { mutationId: crypto.randomUUID() };
      }),
      deleteByIds: vi.fn(async (ids: string[]): Promise<unknown> => {
        for (const id of ids) stored.delete(id);
        return { mutationId: crypto.randomUUID() };
      }),
      query: vi.fn(async (vector: number[], options: { topK: number; returnValues: boolean; returnMetadata: "all"; filter?: { namespace: string } }): Promise<unknown> => {
        const matches = [...stored]
          .filter(([, v]) => !options.filter || v.metadata.namespace === options.filter.namespace)
          .map(([id, v]) => ({ id, score: cosine(vector, v.values), metadata: v.metadata }))
          .sort((a, b) => b.score - a.score)
          .slice(0, options.topK);
        return { count: matches.length, matches };
      }),
    };
    return { binding, stored };
  }

  function items(n: number, namespace: string): VectorItem[] {
    const next = random(n);
    return Array.from({ length: n }, (_, i) => {
      const option = `programs.thing${i}.${"settings.".repeat(i % 9)}enable`;
      return { id: optionVectorKey(namespace, option), values: randomVector(next, D), metadata: { namespace, module: `modules/thing${i % 13}.nix`, option } };
    });
  }

  it("upserts in batches of 1,000 under short stable ids, with the real name in metadata", async () => {
    const { binding, stored } = fakeVectorize();
    const store = new VectorizeStore(binding, { dimensions: D });
    const many = items(2345, "home-manager");
    await store.upsert(many);
    expect(binding.upsert.mock.calls.map((c) => c[0].length)).toEqual([1000, 1000, 345]);
    const first = binding.upsert.mock.calls[0]![0][7]!;
    expect(first.id).toMatch(/^[0-9a-f]{32}$/);
    expect(first.id).toBe(await vectorizeId(many[7]!.id));
    expect(first.values).toEqual([...many[7]!.values]);
    expect(first.metadata).toEqual({ ...many[7]!.metadata, key: many[7]!.id });
    for (const call of binding.upsert.mock.calls) for (const v of call[0]) expect(new TextEncoder().encode(v.id).length).toBeLessThanOrEqual(64);
    expect(stored.size).toBe(2345);
    const long = optionVectorKey("nixvim", `plugins.${"x".repeat(500)}.enable`);
    expect(await vectorizeId(long)).toHaveLength(32);
    expect(await vectorizeId(optionVectorKey("a", "b.c"))).not.toBe(await vectorizeId(optionVectorKey("b", "b.c")));

    // Upserting again replaces: same ids.
    await store.upsert(many.slice(0, 10));
    expect(stored.size).toBe(2345);

    await store.deleteByIds(many.slice(0, 1500).map((i) => i.id));
    expect(binding.deleteByIds.mock.calls.map((c) => c[0].length)).toEqual([1000, 500]);
    expect(binding.deleteByIds.mock.calls[0]![0][3]).toBe(await vectorizeId(many[3]!.id));
    expect(stored.size).toBe(845);
  });

  it("queries with the namespace filter and metadata, at most 50 matches, best first", async () => {
    const { binding } = fakeVectorize();
    const store = new VectorizeStore(binding, { dimensions: D });
    const a = items(300, "home-manager");
    const b = items(200, "nixvim");
    await store.upsert([...a, ...b]);
    const matches = await store.query(a[42]!.values, { topK: 5, namespace: "home-manager" });
    expect(binding.query).toHaveBeenLastCalledWith([...a[42]!.values], { topK: 5, returnValues: false, returnMetadata: "all", filter: { namespace: "home-manager" } });
    expect(matches[0]).toEqual({ id: a[42]!.id, score: expect.closeTo(1, 6), metadata: a[42]!.metadata });
    expect(matches.every((m) => m.metadata?.namespace === "home-manager")).toBe(true);
    expect(matches.map((m) => m.score)).toEqual([...matches.map((m) => m.score)].sort((x, y) => y - x));

    const all = await store.query(b[0]!.values, { topK: 500 });
    expect(binding.query.mock.lastCall![1]).toEqual({ topK: 50, returnValues: false, returnMetadata: "all" });
    expect(all).toHaveLength(50);
    expect(all[0]!.id).toBe(b[0]!.id);
    expect(new VectorizeStore(binding, { dimensions: D, maxTopK: 20 }).maxTopK).toBe(20);
  });

  it("rejects malformed answers and bad input", async () => {
    const { binding } = fakeVectorize();
    const store = new VectorizeStore(binding, { dimensions: D });
    const good = items(3, "home-manager");
    await store.upsert(good);
    const id0 = await vectorizeId(good[0]!.id);
    const meta0 = { ...good[0]!.metadata, key: good[0]!.id };
    const cases: [unknown, RegExp][] = [
      [{ count: 1, matches: [{ id: id0, score: NaN, metadata: meta0 }] }, /score/],
      [{ count: 1, matches: [{ id: id0, score: 2.5, metadata: meta0 }] }, /not a cosine/],
      [{ count: 1, matches: [{ id: id0, score: 0.5 }] }, /metadata/],
      [{ count: 1, matches: [{ id: id0, score: 0.5, metadata: { ...meta0, option: 7 } }] }, /metadata\.option/],
      [{ count: 1, matches: [{ id: await vectorizeId("something else"), score: 0.5, metadata: meta0 }] }, /metadata of another vector/],
      [{ count: 1, matches: [{ id: id0, score: 0.5, metadata: { ...meta0, namespace: "nixvim" } }] }, /outside the filter/],
      [{ count: 1, matches: [{ id: "x".repeat(65), score: 0.5, metadata: meta0 }] }, /matches\.0\.id/],
      [{ count: 6, matches: Array(6).fill({ id: id0, score: 0.5, metadata: meta0 }) }, /6 matches for topK 5/],
      [{ matches: "none" }, /matches/],
      [undefined, /response/],
    ];
    for (const [response, message] of cases) {
      binding.query.mockResolvedValueOnce(response);
      await expect(store.query(good[0]!.values, { topK: 5, namespace: "home-manager" }), JSON.stringify(response)?.slice(0, 80)).rejects.toThrow(message);
    }
    binding.query.mockResolvedValueOnce({ matches: [] });
    await expect(store.query(good[0]!.values, { topK: 5 })).resolves.toEqual([]);

    binding.upsert.mockResolvedValueOnce({ error: "quota" });
    await expect(store.upsert(good)).rejects.toThrow(InvalidResponseError);
    binding.deleteByIds.mockResolvedValueOnce(null);
    await expect(store.deleteByIds([good[0]!.id])).rejects.toThrow(/deleteByIds/);

    const calls = binding.query.mock.calls.length + binding.upsert.mock.calls.length;
    await expect(store.query(new Float32Array(D + 1), { topK: 5 })).rejects.toThrow(/17 dimensions; expected 16/);
    await expect(store.query(good[0]!.values, { topK: 0 })).rejects.toThrow(/topK/);
    await expect(store.upsert([{ ...good[0]!, values: new Float32Array(D).fill(NaN) }])).rejects.toThrow(/non-finite/);
    expect(binding.query.mock.calls.length + binding.upsert.mock.calls.length).toBe(calls);
  });
});

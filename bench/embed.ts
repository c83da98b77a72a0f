/**
 * `node bench/embed.ts`: cost of the local vector side, on the real collections.
 *
 * 1. Node: option texts and `LocalEmbedder` vectors for every option of every collection
 *    (options/s, best of `BENCH_ROUNDS`), IDF fitting, and the SQLite bytes of `option_vectors`
 *    with int8 vectors against the same rows with float32 vectors (`node:sqlite`, in memory).
 * 2. Node: exact top-k (k = 20) over the largest namespace (nixvim), per query, for the queries
 *    of bench/queries.json: int8 (`topKCosine`) and a float32 scan for comparison.
 * 3. workerd (`wrangler dev` on bench/vectors-worker.js): the same embedding and top-k inside a
 *    Durable Object with a `SqliteVectorStore`, timed from Node around each HTTP request minus an
 *    echo request of the same size; the first query of a new store reads and decodes every row.
 *
 * Env: BENCH_ROUNDS (default 3), NIXDOCS_DATA_DIR.
 * @module
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { DatabaseSync } from "node:sqlite";
import { startWranglerDev } from "../src/cli/processes.ts";
import { Int8Matrix, LocalEmbedder, fitIdf, optionEmbeddingText, quantizeInt8, topKCosine } from "../src/shared/vectors/index.ts";
import type { EmbeddableOption } from "../src/shared/vectors/embedder.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dataDir = process.env.NIXDOCS_DATA_DIR ?? path.resolve(root, "../shared/data");
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const K = 20;

const fmt = (n: number, digits = 1) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mib = (bytes: number) => `${fmt(bytes / 2 ** 20, 2)} MiB`;
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
function time<T>(f: () => T): [T, number] {
  const t = performance.now();
  const out = f();
  return [out, performance.now() - t];
}

// ---- data ----------------------------------------------------------------------------------------

const collections = readdirSync(dataDir)
  .filter((f) => f.endsWith("-options.json.gz"))
  .sort()
  .map((f) => {
    const options = JSON.parse(gunzipSync(readFileSync(path.join(dataDir, f))).toString()) as Record<string, EmbeddableOption>;
    return { namespace: f.replace(/-options\.json\.gz$/, ""), options: Object.values(options) };
  });
const all = collections.flatMap((c) => c.options);
const nixvim = collections.find((c) => c.namespace === "nixvim")!;
const queries = (JSON.parse(readFileSync(path.join(root, "bench/queries.json"), "utf8")) as { q: string }[]).map((q) => q.q);
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "?"}, ${collections.length} collections, ${all.length} options, ${queries.length} queries`);

// ---- 1. embedding in Node ----------------------------------------------------------------------------

const embedder = new LocalEmbedder();
let texts: string[] = [];
const textMs: number[] = [];
const embedMs: number[] = [];
let vectors: Float32Array[] = [];
for (let r = 0; r < rounds; r++) {
  let ms: number;
  [texts, ms] = time(() => all.map((o) => optionEmbeddingText(o)));
  textMs.push(ms);
  [vectors, ms] = time(() => texts.map((t) => embedder.embedOne(t)));
  embedMs.push(ms);
}
const [idf, fitMs] = time(() => fitIdf(texts));
const idfEmbedder = new LocalEmbedder({ idf });
const [, idfEmbedMs] = time(() => texts.map((t) => idfEmbedder.embedOne(t)));
const bestText = Math.min(...textMs);
const bestEmbed = Math.min(...embedMs);
console.log(`\n## LocalEmbedder in Node (${embedder.id}, best of ${rounds})`);
console.log(`texts:  ${fmt(bestText, 0)} ms (${fmt(all.length / (bestText / 1000), 0)} options/s), mean ${fmt(texts.reduce((s, t) => s + t.length, 0) / texts.length, 0)} chars`);
console.log(`embed:  ${fmt(bestEmbed, 0)} ms for ${all.length} options = ${fmt(all.length / (bestEmbed / 1000), 0)} options/s (rounds: ${embedMs.map((m) => fmt(m, 0)).join(", ")} ms)`);
console.log(`idf:    fit ${fmt(fitMs, 0)} ms, ${idf.hashes.length} features kept, ${mib(JSON.stringify(idf).length)} as JSON; embed with idf ${fmt(idfEmbedMs, 0)} ms`);

// ---- SQLite bytes: int8 vs float32 ---------------------------------------------------------------------

function sqliteBytes(kind: "int8" | "float32"): { file: number; payload: number } {
  const db = new DatabaseSync(":memory:");
  db.exec("CREATE TABLE option_vectors (option_id INTEGER PRIMARY KEY, content_hash TEXT NOT NULL, scale REAL NOT NULL, vec BLOB NOT NULL)");
  const insert = db.prepare("INSERT INTO option_vectors VALUES (?, ?, ?, ?)");
  let payload = 0;
  db.exec("BEGIN");
  vectors.forEach((v, i) => {
    const q = quantizeInt8(v);
    const blob = kind === "int8" ? new Uint8Array(q.values.buffer) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    payload += blob.byteLength;
    insert.run(i + 1, "0".repeat(64), kind === "int8" ? q.scale : 1, blob);
  });
  db.exec("COMMIT");
  const pages = (db.prepare("PRAGMA page_count").get() as { page_count: number }).page_count;
  const size = (db.prepare("PRAGMA page_size").get() as { page_size: number }).page_size;
  db.close();
  return { file: pages * size, payload };
}
const i8 = sqliteBytes("int8");
const f32 = sqliteBytes("float32");
console.log(`\n## option_vectors for ${all.length} options (D = ${embedder.dimensions}, 64-char content hash per row)`);
console.log(`int8:    vectors ${mib(i8.payload)}, table ${mib(i8.file)} (${fmt(i8.file / all.length, 0)} B/option)`);
console.log(`float32: vectors ${mib(f32.payload)}, table ${mib(f32.file)} (${fmt(f32.file / all.length, 0)} B/option)`);
console.log(`bge-base (768 dims) would be ${mib(all.length * 768)} int8 / ${mib(all.length * 768 * 4)} float32 of vectors`);

// ---- 2. top-k over nixvim in Node ------------------------------------------------------------------------

const nvVectors = nixvim.options.map((o) => embedder.embedOne(optionEmbeddingText(o)));
const d = embedder.dimensions;
const data = new Int8Array(nvVectors.length * d);
nvVectors.forEach((v, i) => data.set(quantizeInt8(v).values, i * d));
const matrix = new Int8Matrix(Int32Array.from(nvVectors.keys()), d, data);
const queryVectors = queries.map((q) => embedder.embedOne(q));
const [, embedQueriesMs] = time(() => queries.map((q) => embedder.embedOne(q)));
function floatTopK(q: Float32Array): number[] {
  const scores = nvVectors.map((v, i) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += q[j]! * v[j]!;
    return [s, i] as const;
  });
  return scores.sort((a, b) => b[0] - a[0]).slice(0, K).map(([, i]) => i);
}
const int8Ms: number[] = [];
const floatMs: number[] = [];
let agree = 0;
for (let r = 0; r < rounds; r++) {
  for (const qv of queryVectors) {
    const [a, ms] = time(() => topKCosine(matrix, qv, K));
    int8Ms.push(ms);
    const [b, fms] = time(() => floatTopK(qv));
    floatMs.push(fms);
    if (r === 0) agree += a.filter((x) => b.includes(x.id)).length / K;
  }
}
console.log(`\n## exact top-${K} over nixvim (${nvVectors.length} vectors) in Node`);
console.log(`int8 scan:    median ${fmt(median(int8Ms), 2)} ms/query, max ${fmt(Math.max(...int8Ms), 2)} ms (matrix ${mib(matrix.byteLength)})`);
console.log(`float32 sort: median ${fmt(median(floatMs), 2)} ms/query (naive map+sort, for reference)`);
console.log(`query embedding: ${fmt(embedQueriesMs / queries.length, 3)} ms/query; int8 top-${K} agrees with float32 on ${fmt((100 * agree) / queryVectors.length, 1)}% of ids`);

// ---- 3. workerd ----------------------------------------------------------------------------------------------

// wrangler dev on a config of its own in a temp dir: no secrets, no persisted state, no rebuilds
// when others edit the repository's sources (the bundle is made once at start).
const tmp = mkdtempSync(path.join(os.tmpdir(), "nixdocs-embed-"));
writeFileSync(
  path.join(tmp, "wrangler.jsonc"),
  JSON.stringify({
    name: "nixdocs-embed-bench",
    main: path.join(root, "bench/vectors-worker.js"),
    compatibility_date: "2026-11-01",
    durable_objects: { bindings: [{ name: "SHARD", class_name: "BenchShard" }] },
    migrations: [{ tag: "v1", new_sqlite_classes: ["BenchShard"] }],
  }),
);
const dev = await startWranglerDev({ cwd: tmp, config: path.join(tmp, "wrangler.jsonc"), persistDir: path.join(tmp, "state"), healthPath: "/health", logLevel: "error" });
try {
  const url = dev.url;
  async function timed(pathname: string, body: unknown): Promise<[unknown, number]> {
    const t = performance.now();
    const res = await fetch(`${url}${pathname}`, { method: "POST", body: JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(`${pathname}: ${res.status}`);
    return [json, performance.now() - t];
  }
  await timed("/echo", { texts: [] });
  const nvTexts = nixvim.options.map((o) => optionEmbeddingText(o));
  const embedRuns: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const [, echo] = await timed("/echo", { texts });
    const [, ms] = await timed("/embed", { texts });
    embedRuns.push(ms - echo);
  }
  const [, echoNv] = await timed("/echo", { texts: nvTexts });
  const [loaded, loadMs] = await timed("/load", { texts: nvTexts });
  const [, noop] = await timed("/query", { queries: [], k: K, repeat: 0 });
  const coldRuns: number[] = [];
  for (let r = 0; r < rounds; r++) coldRuns.push((await timed("/cold", { q: queries[r]!, k: K }))[1] - noop);
  const [, warmMs] = await timed("/query", { queries, k: K, repeat: rounds });
  const best = Math.min(...embedRuns);
  console.log(`\n## workerd (wrangler dev, Durable Object with SQLite; times from Node around each request over HTTP)`);
  console.log(`embed all ${texts.length} options: ${fmt(best, 0)} ms = ${fmt(texts.length / (best / 1000), 0)} options/s (request time minus an echo of the same body)`);
  console.log(`load nixvim (embed + int8 + insert ${nvTexts.length} rows): ${fmt(loadMs - echoNv, 0)} ms; ${JSON.stringify(loaded)}`);
  console.log(`first query of a new store (read + decode ${nvTexts.length} rows + top-${K}): median ${fmt(median(coldRuns), 1)} ms`);
  console.log(`warm query (embed + exact top-${K} over ${nvTexts.length}): ${fmt((warmMs - noop) / (queries.length * rounds), 2)} ms/query over ${queries.length * rounds} queries`);
} finally {
  await dev.stop();
  rmSync(tmp, { recursive: true, force: true });
}

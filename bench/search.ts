/**
 * `npm run bench:search`: search latency over HTTP against a local `wrangler dev`.
 *
 * Starts wrangler dev on a free port with a temp persist dir (or `BENCH_PERSIST_DIR`, seeded
 * only when it does not already hold all collections), seeds the real collections through
 * src/cli/ingest-lib.ts, warms up with one pass over bench/queries.json, then runs the 100
 * queries sequentially `BENCH_ROUNDS` times (default 5) and prints p50/p95/p99/max latency,
 * unexpected statuses, partial answers, the slowest queries with the shards' own timings, and
 * the peak memory of the dev server's process tree.
 *
 * Env: BENCH_ROUNDS, BENCH_LIMIT (page size, default 20), BENCH_PERSIST_DIR, NIXDOCS_DATA_DIR.
 * @module
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { startDevServer, type DevServer } from "./lib/devserver.ts";
import { formatMemory, type MemoryReport } from "./lib/memory.ts";
import { dataFiles, repoRoot } from "./lib/paths.ts";
import { seedAll, seededCounts } from "./lib/seed.ts";
import { machine, ms, saveResult, summary, table } from "./lib/stats.ts";
import { runMain } from "./lib/run.ts";

interface BenchQuery {
  q: string;
  kind: string;
  namespace?: string;
  expect?: number;
}

interface Sample {
  index: number;
  round: number;
  ms: number;
  status: number;
  hits: number;
  total: number;
  partial: boolean;
  shards: { namespace: string; status: string; ms: number }[];
  /** First hit, `namespace:name`. */
  top?: string;
  error?: string;
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const LIMIT = Number(process.env.BENCH_LIMIT ?? 20);

function loadQueries(): BenchQuery[] {
  const list = JSON.parse(readFileSync(path.join(repoRoot, "bench/queries.json"), "utf8")) as BenchQuery[];
  if (list.length !== 100) throw new Error(`bench/queries.json has ${list.length} queries, expected 100`);
  return list;
}

function searchUrl(base: string, q: BenchQuery): string {
  const params = new URLSearchParams({ q: q.q, limit: String(LIMIT) });
  if (q.namespace) params.set("namespace", q.namespace);
  return `${base}/api/v1/search?${params}`;
}

async function runOne(server: DevServer, q: BenchQuery, index: number, round: number): Promise<Sample> {
  const url = searchUrl(server.url, q);
  const t0 = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    const elapsed = performance.now() - t0;
    const sample: Sample = { index, round, ms: elapsed, status: res.status, hits: 0, total: 0, partial: false, shards: [] };
    if (res.ok) {
      const body = JSON.parse(text) as { hits: { namespace: string; name: string }[]; total: number; partial: boolean; shards: { namespace: string; status: string; ms: number }[] };
      sample.hits = body.hits.length;
      if (body.hits[0]) sample.top = `${body.hits[0].namespace}:${body.hits[0].name}`;
      sample.total = body.total;
      sample.partial = body.partial;
      sample.shards = body.shards.map(({ namespace, status, ms }) => ({ namespace, status, ms }));
    } else {
      sample.error = text.slice(0, 300);
    }
    return sample;
  } catch (err) {
    return { index, round, ms: performance.now() - t0, status: 0, hits: 0, total: 0, partial: false, shards: [], error: String(err) };
  }
}

function show(q: string): string {
  const s = JSON.stringify(q);
  return s.length > 48 ? `${s.slice(0, 44)}…" (${[...q].length} chars)` : s;
}

async function main(): Promise<void> {
  const queries = loadQueries();
  const files = dataFiles();
  const persistDir = process.env.BENCH_PERSIST_DIR ? path.resolve(process.env.BENCH_PERSIST_DIR) : undefined;
  console.log(`bench:search — ${queries.length} queries × ${ROUNDS} rounds, limit=${LIMIT}, ${files.length} collections`);
  console.log(`machine: ${JSON.stringify(machine())}`);

  const server = await startDevServer({ persistDir });
  console.log(`wrangler dev pid ${server.pid} on ${server.url}, persist dir ${server.persistDir}${server.tempPersistDir ? " (temp)" : " (BENCH_PERSIST_DIR)"}, log ${server.logFile}`);
  console.log(`code: ${server.source}`);
  try {
    // ---- seed (skipped when the persist dir already holds every collection) ----
    const have = await seededCounts(server.url);
    const missing = files.filter((f) => !(have.get(f.namespace) ?? 0));
    let seedMs = 0;
    if (missing.length) {
      const t0 = performance.now();
      const seeded = await seedAll(server, missing);
      seedMs = performance.now() - t0;
      console.log(`seeded ${seeded.options} options in ${missing.length} collections in ${(seedMs / 1000).toFixed(1)} s`);
    } else {
      console.log(`persist dir already holds all ${files.length} collections; not re-seeding`);
    }
    const counts = await seededCounts(server.url);
    console.log(`options per namespace: ${[...counts].map(([n, c]) => `${n}=${c}`).join(" ")}`);
    const memSeed: MemoryReport = await server.memory.report();

    // ---- warm-up: one untimed pass ----
    await server.memory.reset();
    const t0 = performance.now();
    const warm: Sample[] = [];
    for (const [i, q] of queries.entries()) warm.push(await runOne(server, q, i, -1));
    const warmMs = performance.now() - t0;
    const coldFirst = warm[0]!;
    console.log(`warm-up pass: ${(warmMs / 1000).toFixed(2)} s (first query ${ms(coldFirst.ms)} ms)`);

    // ---- measured rounds ----
    const samples: Sample[] = [];
    const tRun = performance.now();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, q] of queries.entries()) samples.push(await runOne(server, q, i, round));
    }
    const runMs = performance.now() - tRun;
    const memQueries = await server.memory.report();

    // ---- report ----
    const all = summary(samples.map((s) => s.ms));
    const expected = (s: Sample) => (queries[s.index]!.expect ?? 200) === s.status;
    const unexpected = samples.filter((s) => !expected(s));
    const partial = samples.filter((s) => s.partial);
    const ok200 = summary(samples.filter((s) => s.status === 200).map((s) => s.ms));
    console.log("");
    console.log(`requests: ${samples.length} in ${(runMs / 1000).toFixed(2)} s (${(samples.length / (runMs / 1000)).toFixed(1)} req/s sequential)`);
    console.log(table(["latency (ms)", "n", "p50", "p95", "p99", "max", "mean"], [
      ["all requests", all.n, ms(all.p50), ms(all.p95), ms(all.p99), ms(all.max), ms(all.mean)],
      ["200 answers only", ok200.n, ms(ok200.p50), ms(ok200.p95), ms(ok200.p99), ms(ok200.max), ms(ok200.mean)],
    ]));
    console.log(`errors (status other than expected, or network): ${unexpected.length}; partial answers: ${partial.length}; expected 400s: ${samples.filter((s) => s.status === 400 && expected(s)).length}`);

    const kinds = [...new Set(queries.map((q) => q.kind))];
    console.log("");
    console.log(table(["by kind", "queries", "p50", "p95", "max"], kinds.map((k) => {
      const v = summary(samples.filter((s) => queries[s.index]!.kind === k).map((s) => s.ms));
      return [k, queries.filter((q) => q.kind === k).length, ms(v.p50), ms(v.p95), ms(v.max)];
    })));

    const perQuery = queries.map((q, i) => {
      const mine = samples.filter((s) => s.index === i);
      const v = summary(mine.map((s) => s.ms));
      const last = mine[mine.length - 1]!;
      return { index: i, q: q.q, kind: q.kind, namespace: q.namespace, status: last.status, hits: last.hits, total: last.total, top: last.top ?? null, median: v.p50, max: v.max, shards: last.shards };
    });
    const slowest = [...perQuery].sort((a, b) => b.median - a.median).slice(0, 10);
    console.log("");
    console.log(table(["slowest queries (median of rounds)", "status", "hits", "total", "median", "max", "top hit"], slowest.map((p) => [
      show(p.q) + (p.namespace ? ` [${p.namespace}]` : ""), p.status, p.hits, p.total, ms(p.median), ms(p.max), p.top ?? "-",
    ])));

    // Where the time of the slowest queries goes: each asked of one namespace at a time. (The
    // shards' own `ms` in a fan-out answer overlap: local workerd runs all objects in one isolate,
    // so a small shard's timer also counts its wait behind the big ones.)
    const breakdown: { q: string; all: number; byNamespace: Record<string, number> }[] = [];
    const namespaces = [...counts.keys()];
    for (const p of slowest.slice(0, 5)) {
      const byNamespace: Record<string, number> = {};
      for (const ns of p.namespace ? p.namespace.split(",") : namespaces) {
        const times: number[] = [];
        for (let k = 0; k < 3; k++) times.push((await runOne(server, { ...queries[p.index]!, namespace: ns }, p.index, -2)).ms);
        byNamespace[ns] = summary(times).p50;
      }
      breakdown.push({ q: p.q, all: p.median, byNamespace });
    }
    console.log("");
    console.log("slowest 5, asked of one namespace at a time (median of 3, ms):");
    for (const b of breakdown) {
      const parts = Object.entries(b.byNamespace).sort((x, y) => y[1] - x[1]).map(([ns, t]) => `${ns} ${ms(t)}`);
      console.log(`  ${show(b.q)}: all ${ms(b.all)} | ${parts.join(", ")}`);
    }
    const zero = perQuery.filter((p) => p.status === 200 && p.hits === 0);
    console.log("");
    console.log(`queries with 0 hits (${zero.length}): ${zero.map((p) => show(p.q)).join(", ") || "none"}`);
    if (unexpected.length) {
      console.log("unexpected answers:");
      const byQuery = new Map<number, Sample[]>();
      for (const s of unexpected) byQuery.set(s.index, [...(byQuery.get(s.index) ?? []), s]);
      for (const [i, list] of byQuery) console.log(`  ${show(queries[i]!.q)}: ${list.length}× status ${list[0]!.status} ${list[0]!.error ?? ""}`);
    }
    if (partial.length) console.log(`partial answers for: ${[...new Set(partial.map((s) => show(queries[s.index]!.q)))].join(", ")}`);
    console.log("");
    console.log(`memory from start ${missing.length ? "through seeding" : "(already seeded: start-up only)"}:`);
    console.log(formatMemory(memSeed));
    console.log("memory during warm-up + measured rounds:");
    console.log(formatMemory(memQueries));

    const file = saveResult("search", {
      date: new Date().toISOString(), machine: machine(), source: server.source, rounds: ROUNDS, limit: LIMIT, seedMs, warmMs, runMs,
      latency: all, latency200: ok200, errors: unexpected.length, partial: partial.length,
      perQuery, breakdown, unexpected: unexpected.map((s) => ({ q: queries[s.index]!.q, status: s.status, error: s.error })),
      memory: { seeding: memSeed, queries: memQueries },
    });
    console.log(`\nresults saved to ${path.relative(repoRoot, file)}`);
    if (unexpected.length) process.exitCode = 1;
  } finally {
    await server.dispose();
  }
}

runMain(main);

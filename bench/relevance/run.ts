/**
 * `npm run bench:relevance`: does search find the right option first? nixdocs (over its HTTP API)
 * side by side with peer engines (MiniSearch, Orama, raw SQLite FTS5, a name substring filter),
 * all on the same documents (the 8 real collections, loaded once) and the same gold queries
 * (bench/relevance/queries.json, validated first). Prints MRR@10, Success@10 and tier-graded
 * nDCG@10 per category and overall for every engine, each engine's median query time and index
 * build time, and the queries where nixdocs' first relevant hit is not at rank 1. Full results go
 * to bench/out/relevance-<time>.json.
 *
 * Env: BENCH_ENGINES (comma list, default all), BENCH_ROUNDS (timed passes after one warm-up, default 3),
 * NIXDOCS_DATA_DIR, BENCH_SOURCE=live (see bench/lib/devserver.ts).
 * @module
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { dataFiles, repoRoot } from "../lib/paths.ts";
import { machine, ms, saveResult, summary, table } from "../lib/stats.ts";
import { loadDocs } from "./docs.ts";
import { fts5Engine } from "./engines/fts5.ts";
import { minisearchEngine } from "./engines/minisearch.ts";
import { nixdocsEngine, type NixdocsEngine } from "./engines/nixdocs.ts";
import { oramaEngine } from "./engines/orama.ts";
import { substringEngine } from "./engines/substring.ts";
import type { Engine } from "./engines/types.ts";
import { assertGold, CATEGORIES, loadGold, type GoldQuery } from "./gold.ts";
import { aggregate, CUTOFF, scoreQuery, type Aggregate, type QueryScore } from "./metrics.ts";
import { runMain } from "../lib/run.ts";

const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));

interface EngineRun {
  name: string;
  description: string;
  buildMs: number;
  buildDetail?: string;
  /** Per query: ranked ids of the last pass, its score, its median time over the timed passes. */
  results: { id: string; ranked: string[]; score: QueryScore; ms: number }[];
  /** Every timed query (all passes). */
  times: number[];
  /** Queries whose ranking differed between passes. */
  unstable: string[];
  overall: Aggregate;
  byCategory: Record<string, Aggregate>;
}

function git(args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: repoRoot, encoding: "utf8" }).trim();
  } catch {
    return "?";
  }
}

async function measure(engine: Engine, gold: readonly GoldQuery[], build: () => Promise<void>): Promise<EngineRun> {
  const t0 = performance.now();
  await build();
  const buildMs = performance.now() - t0;
  for (const g of gold) await engine.search(g.q, g.namespace, CUTOFF); // warm-up, untimed
  const passes: { ranked: string[]; ms: number }[][] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const pass: { ranked: string[]; ms: number }[] = [];
    for (const g of gold) {
      const t = performance.now();
      const ranked = await engine.search(g.q, g.namespace, CUTOFF);
      pass.push({ ranked, ms: performance.now() - t });
    }
    passes.push(pass);
  }
  const last = passes[passes.length - 1]!;
  const results = gold.map((g, i) => ({
    id: g.id,
    ranked: last[i]!.ranked,
    score: scoreQuery(last[i]!.ranked, g.relevant),
    ms: summary(passes.map((p) => p[i]!.ms)).p50,
  }));
  const unstable = gold.filter((_, i) => passes.some((p) => p[i]!.ranked.join("\n") !== last[i]!.ranked.join("\n"))).map((g) => g.id);
  const byCategory: Record<string, Aggregate> = {};
  for (const c of CATEGORIES) byCategory[c] = aggregate(results.filter((_, i) => gold[i]!.category === c).map((r) => r.score));
  return {
    name: engine.name,
    description: engine.description,
    buildMs,
    results,
    times: passes.flat().map((s) => s.ms),
    unstable,
    overall: aggregate(results.map((r) => r.score)),
    byCategory,
  };
}

const METRICS = [["MRR@10", (a: Aggregate) => a.mrr], ["Success@10", (a: Aggregate) => a.success], ["nDCG@10", (a: Aggregate) => a.ndcg]] as const;
const f3 = (n: number) => (Number.isFinite(n) ? n.toFixed(3) : "-");
const CATEGORY_HEADER: Record<string, string> = { multiterm: "multi" };

function metricTable(runs: readonly EngineRun[], title: string, pick: (a: Aggregate) => number): string {
  const header = [title, ...CATEGORIES.map((c) => CATEGORY_HEADER[c] ?? c), "all"];
  return table(header, runs.map((r) => [r.name, ...CATEGORIES.map((c) => f3(pick(r.byCategory[c]!))), f3(pick(r.overall))]));
}

function show(q: GoldQuery): string {
  const s = JSON.stringify(q.q);
  const text = s.length > 34 ? `${s.slice(0, 32)}…"` : s;
  return q.namespace ? `${text} [${q.namespace}]` : text;
}

const rankText = (r: number | null) => (r === null ? "-" : String(r));

async function main(): Promise<void> {
  const started = new Date();
  const files = dataFiles();
  const tDocs = performance.now();
  const docs = await loadDocs(files);
  const docsMs = performance.now() - tDocs;
  const gold = loadGold();
  assertGold(gold, new Set(docs.map((d) => d.id)), new Set(files.map((f) => f.namespace)));

  const nixdocs = nixdocsEngine(files);
  const all: Engine[] = [nixdocs, minisearchEngine(), oramaEngine(), fts5Engine(), substringEngine()];
  const wanted = process.env.BENCH_ENGINES?.split(",").map((s) => s.trim()).filter(Boolean);
  const engines = wanted ? all.filter((e) => wanted.includes(e.name)) : all;
  if (wanted && engines.length !== wanted.length) throw new Error(`BENCH_ENGINES: unknown engine in ${wanted.join(",")}; have ${all.map((e) => e.name).join(",")}`);

  const commit = git(["rev-parse", "--short", "HEAD"]);
  console.log(`bench:relevance — ${gold.length} queries (${CATEGORIES.map((c) => `${c} ${gold.filter((g) => g.category === c).length}`).join(", ")})`);
  console.log(`${docs.length} documents from ${files.length} collections, built in ${ms(docsMs, 0)} ms; cutoff ${CUTOFF}; 1 warm-up + ${ROUNDS} timed passes`);
  console.log(`date ${started.toISOString()}, commit ${commit}, machine ${JSON.stringify(machine())}`);

  const runs: EngineRun[] = [];
  for (const engine of engines) {
    console.error(`running ${engine.name} …`);
    try {
      const run = await measure(engine, gold, () => engine.build(docs));
      if (engine === nixdocs) {
        run.buildDetail = `wrangler dev start ${ms(nixdocs.timings.startMs / 1000, 1)} s + HTTP ingest ${ms(nixdocs.timings.seedMs / 1000, 1)} s; ${nixdocs.source()}`;
      }
      runs.push(run);
    } finally {
      await engine.close();
    }
  }

  // ---- report ----
  console.log("");
  for (const r of runs) console.log(`${r.name}: ${r.description}${r.buildDetail ? ` (build: ${r.buildDetail})` : ""}`);
  console.log("");
  console.log(table(["engine", "MRR@10", "S@10", "nDCG@10", "median ms", "p95 ms", "p99 ms", "build s"], runs.map((r) => {
    const t = summary(r.times);
    return [r.name, f3(r.overall.mrr), f3(r.overall.success), f3(r.overall.ndcg), ms(t.p50, 2), ms(t.p95, 2), ms(t.p99, 2), ms(r.buildMs / 1000, 2)];
  })));
  console.log("(query times: nixdocs over HTTP to local wrangler dev, the peers in-process)");
  for (const [title, pick] of METRICS) {
    console.log("");
    console.log(metricTable(runs, title, pick));
  }

  const mine = runs.find((r) => r.name === "nixdocs");
  const behind: { category: string; metric: string; nixdocs: number; peer: string; value: number }[] = [];
  if (mine && runs.length > 1) {
    for (const c of [...CATEGORIES, "all"]) {
      const of = (r: EngineRun) => (c === "all" ? r.overall : r.byCategory[c]!);
      for (const [metric, pick] of METRICS) {
        const best = runs.filter((r) => r !== mine).sort((a, b) => pick(of(b)) - pick(of(a)))[0]!;
        if (pick(of(best)) > pick(of(mine)) + 1e-9) behind.push({ category: c, metric, nixdocs: pick(of(mine)), peer: best.name, value: pick(of(best)) });
      }
    }
    console.log("");
    if (behind.length) {
      console.log("where a peer beats nixdocs:");
      console.log(table(["category", "metric", "nixdocs", "best peer", "peer"], behind.map((b) => [b.category, b.metric, f3(b.nixdocs), b.peer, f3(b.value)])));
    } else {
      console.log("no peer beats nixdocs in any category on any metric");
    }

    const peers = runs.filter((r) => r !== mine);
    const misses = gold.map((g, i) => ({ g, i })).filter(({ i }) => mine.results[i]!.score.rank !== 1);
    console.log("");
    console.log(`nixdocs misses: ${misses.length} of ${gold.length} queries whose first relevant hit is not rank 1 (rank of the first relevant hit per engine, "-" = not in the top ${CUTOFF})`);
    if (misses.length) {
      console.log(table(["query", "category", ...runs.map((r) => r.name)], misses.map(({ g, i }) => [show(g), g.category, ...runs.map((r) => rankText(r.results[i]!.score.rank))])));
      console.log("nixdocs' first hit for each:");
      for (const { g, i } of misses) console.log(`  ${show(g)}: ${mine.results[i]!.ranked[0] ?? "(no hits)"}  — wanted ${g.relevant[0]![0]}`);
    }
    const lowTier = gold.map((g, i) => ({ g, i })).filter(({ i }) => mine.results[i]!.score.rank === 1 && mine.results[i]!.score.bestRank !== 1);
    if (lowTier.length) {
      console.log("");
      console.log(`relevant at rank 1 but not from the best tier (${lowTier.length}):`);
      for (const { g, i } of lowTier) console.log(`  ${show(g)}: #1 ${mine.results[i]!.ranked[0]}, best tier at ${rankText(mine.results[i]!.score.bestRank)} (${peers.map((r) => `${r.name} ${rankText(r.results[i]!.score.bestRank)}`).join(", ")})`);
    }
  }
  for (const r of runs) if (r.unstable.length) console.log(`${r.name}: ranking differed between passes for ${r.unstable.join(", ")}`);
  const errors = runs.some((r) => r.name === "nixdocs") ? nixdocs.errors : [];
  if (errors.length) {
    console.log(`nixdocs answered ${errors.length} request(s) with an error status:`);
    for (const e of errors.slice(0, 10)) console.log(`  ${JSON.stringify(e.q)}: ${e.status} ${e.body}`);
    process.exitCode = 1;
  }

  const file = saveResult("relevance", {
    date: started.toISOString(), commit, machine: machine(), rounds: ROUNDS, cutoff: CUTOFF, documents: docs.length, docsMs,
    queries: gold,
    engines: runs.map((r) => ({
      name: r.name, description: r.description, buildMs: r.buildMs, buildDetail: r.buildDetail, queryMs: summary(r.times),
      overall: r.overall, byCategory: r.byCategory, unstable: r.unstable, results: r.results,
    })),
    behind, errors,
  });
  console.log(`\nresults saved to ${path.relative(repoRoot, file)}`);
}

runMain(main);

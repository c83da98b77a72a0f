/**
 * `npm run bench:ingest`: ingest throughput over HTTP against a local `wrangler dev`, compared
 * with inserting the same rows straight into SQLite.
 *
 * 1. Starts wrangler dev on a free port with a fresh temp persist dir (or `BENCH_PERSIST_DIR`,
 *    which must be empty or missing), samples the RSS of its whole process tree every 200 ms.
 * 2. Ingests every collection through src/cli/ingest-lib.ts (`replace` mode, batches of 2 MiB),
 *    one after the other: seconds per file, total, options/s. Then, unless BENCH_REINGEST=0,
 *    ingests everything once more (unchanged data: the no-op path).
 * 3. Stops the server, then inserts the same rows (options + options_fts, plus modules and
 *    meta, with the shard's own migration SQL and tokenizer words) with better-sqlite3 under
 *    Node 20, one transaction per file, and prints the ratio HTTP / direct.
 *
 * Env: BENCH_PERSIST_DIR, BENCH_REINGEST, NIXDOCS_DATA_DIR, NODE20.
 * @module
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { runBaseline, type BaselineResult } from "./lib/baseline.ts";
import { startDevServer, type DevServer } from "./lib/devserver.ts";
import { formatMemory, type MemoryReport } from "./lib/memory.ts";
import { dataFiles, repoRoot } from "./lib/paths.ts";
import { ingestOne, seededCounts } from "./lib/seed.ts";
import { machine, ms, saveResult, table } from "./lib/stats.ts";
import type { IngestReport } from "../src/cli/ingest-lib.ts";
import { runMain } from "./lib/run.ts";

const REINGEST = process.env.BENCH_REINGEST !== "0";

function duBytes(dir: string): number {
  try {
    return Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
  } catch {
    return NaN;
  }
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

async function main(): Promise<void> {
  const files = dataFiles();
  const persistDir = process.env.BENCH_PERSIST_DIR ? path.resolve(process.env.BENCH_PERSIST_DIR) : undefined;
  if (persistDir && existsSync(persistDir) && readdirSync(persistDir).length > 0) {
    throw new Error(`BENCH_PERSIST_DIR ${persistDir} is not empty; bench:ingest measures a first ingest into an empty store (bench:search can reuse a seeded one)`);
  }
  console.log(`bench:ingest — ${files.length} collections from ${path.dirname(files[0]!.file)}`);
  console.log(`machine: ${JSON.stringify(machine())}`);

  // ---- HTTP ----
  const reports: IngestReport[] = [];
  const again: IngestReport[] = [];
  let httpWallMs = 0;
  let againWallMs = 0;
  let memory: MemoryReport;
  let storeBytes = NaN;
  let counts = new Map<string, number>();
  const server: DevServer = await startDevServer({ persistDir });
  console.log(`wrangler dev pid ${server.pid} on ${server.url}, persist dir ${server.persistDir}, log ${server.logFile}`);
  console.log(`code: ${server.source}`);
  try {
    const t0 = performance.now();
    for (const f of files) {
      const r = await ingestOne(server, f);
      reports.push(r);
      const slowest = Math.max(...r.batchTimings.map((b) => b.ms));
      console.log(`  ${f.namespace.padEnd(13)} ${fmtInt(r.options).padStart(6)} options, ${String(r.batches).padStart(2)} batches: ${r.seconds.toFixed(2)} s (prepare ${ms(r.prepareMs, 0)} ms, send ${ms(r.sendMs, 0)} ms, slowest batch ${ms(slowest, 0)} ms)`);
    }
    httpWallMs = performance.now() - t0;
    counts = await seededCounts(server.url);
    for (const r of reports) {
      if (counts.get(r.namespace) !== r.options) throw new Error(`${r.namespace}: the server reports ${counts.get(r.namespace)} live options, the file has ${r.options}`);
    }
    if (REINGEST) {
      const t1 = performance.now();
      for (const f of files) again.push(await ingestOne(server, f));
      againWallMs = performance.now() - t1;
      const changed = again.reduce((n, r) => n + r.summary.versionsCreated, 0);
      console.log(`  re-ingest of unchanged data: ${(againWallMs / 1000).toFixed(2)} s, ${changed} versions created (expected 0)`);
    }
  } finally {
    await server.stop();
    memory = await server.memory.report();
    storeBytes = duBytes(server.persistDir);
    if (server.tempPersistDir) rmSync(server.persistDir, { recursive: true, force: true });
  }

  // ---- direct SQLite ----
  console.log("direct SQLite baseline (better-sqlite3 under Node 20)…");
  const baseline: BaselineResult = await runBaseline(files);
  const direct = new Map(baseline.results.map((r) => [r.namespace, r]));
  for (const r of reports) {
    const d = direct.get(r.namespace)!;
    if (d.options !== r.options || d.ftsRows !== r.options) throw new Error(`${r.namespace}: the baseline inserted ${d.options} options / ${d.ftsRows} FTS rows, HTTP ${r.options}`);
  }

  // ---- report ----
  const totalOptions = reports.reduce((n, r) => n + r.options, 0);
  const totalHttpS = reports.reduce((n, r) => n + r.seconds, 0);
  const totalSendS = reports.reduce((n, r) => n + r.sendMs, 0) / 1000;
  const totalInsertS = baseline.results.reduce((n, r) => n + r.ms, 0) / 1000;
  const totalDirectS = baseline.results.reduce((n, r) => n + r.ms + r.prepareMs, 0) / 1000;
  console.log("");
  console.log(table(
    ["namespace", "options", "modules", "batches", "HTTP s", "send s", "options/s", "direct insert ms", "direct prep+insert ms", "send/insert", "HTTP/direct"],
    [
      ...reports.map((r) => {
        const d = direct.get(r.namespace)!;
        return [
          r.namespace, fmtInt(r.options), r.modules, r.batches, r.seconds.toFixed(2), (r.sendMs / 1000).toFixed(2), fmtInt(r.optionsPerSecond),
          ms(d.ms), ms(d.ms + d.prepareMs), `${(r.sendMs / d.ms).toFixed(1)}×`, `${((r.seconds * 1000) / (d.ms + d.prepareMs)).toFixed(1)}×`,
        ];
      }),
      ["total", fmtInt(totalOptions), reports.reduce((n, r) => n + r.modules, 0), reports.reduce((n, r) => n + r.batches, 0),
        totalHttpS.toFixed(2), totalSendS.toFixed(2), fmtInt(totalOptions / totalHttpS), ms(totalInsertS * 1000), ms(totalDirectS * 1000),
        `${(totalSendS / totalInsertS).toFixed(1)}×`, `${(totalHttpS / totalDirectS).toFixed(1)}×`],
    ],
  ));
  console.log("");
  console.log(`HTTP ingest: ${fmtInt(totalOptions)} options in ${totalHttpS.toFixed(2)} s (${fmtInt(totalOptions / totalHttpS)} options/s; wall incl. client ${(httpWallMs / 1000).toFixed(2)} s)`);
  console.log(`direct SQLite: insert ${ms(totalInsertS * 1000)} ms (${fmtInt(totalOptions / totalInsertS)} options/s); with row preparation ${ms(totalDirectS * 1000)} ms`);
  console.log(`ratio HTTP / direct: ${(totalSendS / totalInsertS).toFixed(1)}× (send time vs insert transaction), ${(totalHttpS / totalDirectS).toFixed(1)}× (end to end incl. client-side preparation)`);
  if (REINGEST) console.log(`re-ingest of unchanged data: ${(againWallMs / 1000).toFixed(2)} s`);
  console.log(`store size: wrangler persist dir ${(storeBytes / 1048576).toFixed(1)} MiB (incl. module_versions snapshots); direct SQLite files ${(baseline.results.reduce((n, r) => n + r.dbBytes, 0) / 1048576).toFixed(1)} MiB`);
  console.log(`baseline: Node ${baseline.node}, SQLite ${baseline.sqlite}`);
  console.log("");
  console.log(formatMemory(memory));

  const file = saveResult("ingest", {
    date: new Date().toISOString(), machine: machine(), source: server.source,
    http: reports.map(({ batchTimings, ...r }) => ({ ...r, slowestBatchMs: Math.max(...batchTimings.map((b) => b.ms)), batchTimings })),
    httpWallMs, reingest: again.map((r) => ({ namespace: r.namespace, seconds: r.seconds, summary: r.summary })), againWallMs,
    baseline, totals: { options: totalOptions, httpS: totalHttpS, sendS: totalSendS, insertS: totalInsertS, directS: totalDirectS },
    storeBytes, memory,
  });
  console.log(`\nresults saved to ${path.relative(repoRoot, file)}`);
}

runMain(main);

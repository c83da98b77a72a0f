/**
 * The direct-SQLite baseline: rows computed here (Node 22, src/shared), inserted by
 * bench/baseline-sqlite.mjs under Node 20, where the installed better-sqlite3 binary works.
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildRows, readOptionsJson, shardMigrations, type NamespaceRows } from "./rows.ts";
import { repoRoot, type DataFile } from "./paths.ts";

export interface BaselineFileResult {
  namespace: string;
  modules: number;
  options: number;
  ftsRows: number;
  /** The one insert transaction (modules + options + FTS rows), ms. */
  ms: number;
  dbBytes: number;
  /** Node 22 side: gunzip + JSON.parse + normalize + group + hash + tokenize, ms. */
  prepareMs: number;
}

export interface BaselineResult {
  node: string;
  sqlite: string;
  results: BaselineFileResult[];
}

export const NODE20 = process.env.NODE20 ?? "/usr/bin/node";

export async function runBaseline(files: readonly DataFile[]): Promise<BaselineResult> {
  const work = mkdtempSync(path.join(tmpdir(), "nixdocs-bench-baseline-"));
  try {
    const namespaces: NamespaceRows[] = [];
    const prepareMs = new Map<string, number>();
    for (const f of files) {
      const t0 = performance.now();
      const { value } = readOptionsJson(f.file);
      namespaces.push(await buildRows(f.namespace, value));
      prepareMs.set(f.namespace, performance.now() - t0);
    }
    const input = path.join(work, "rows.json");
    writeFileSync(input, JSON.stringify({ migrations: await shardMigrations(), namespaces }));
    const run = spawnSync(NODE20, [path.join(repoRoot, "bench/baseline-sqlite.mjs"), input, work], {
      cwd: repoRoot,
      encoding: "utf8",
      maxBuffer: 16 * 1024 * 1024,
    });
    if (run.error) throw new Error(`could not run ${NODE20}: ${run.error.message} (set NODE20 to a Node 20 binary)`);
    if (run.status !== 0) throw new Error(`baseline-sqlite.mjs failed (exit ${run.status}):\n${run.stderr}`);
    const out = JSON.parse(run.stdout) as { node: string; sqlite: string; results: Omit<BaselineFileResult, "prepareMs">[] };
    return { node: out.node, sqlite: out.sqlite, results: out.results.map((r) => ({ ...r, prepareMs: prepareMs.get(r.namespace) ?? 0 })) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

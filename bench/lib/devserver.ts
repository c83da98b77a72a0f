/**
 * Starting and stopping a `wrangler dev` server for benchmarks: a free port, a temp (or given)
 * persist dir, a random ADMIN_TOKEN (temp env file and `--var`), a log file, and a memory sampler
 * over the server's process tree. The process group handling (the whole tree, wrangler, esbuild
 * and workerd, ended together, also when the benchmark fails) is src/cli/processes.ts's.
 *
 * By default the server runs on a snapshot of the working tree (src/, public/, wrangler.jsonc,
 * package.json, tsconfig.json, env.d.ts copied to a temp dir, node_modules linked): others edit
 * src/ while benchmarks run, and wrangler dev would rebuild and restart workerd mid-measurement.
 * `BENCH_SOURCE=live` runs in the repository itself instead.
 * @module
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startWranglerDev } from "../../src/cli/processes.ts";
import { MemorySampler } from "./memory.ts";
import { repoRoot } from "./paths.ts";

export interface DevServer {
  url: string;
  port: number;
  pid: number;
  token: string;
  persistDir: string;
  /** True when the persist dir is a temp dir made here (`dispose` removes it). */
  tempPersistDir: boolean;
  logFile: string;
  memory: MemorySampler;
  /** What code runs: commit, dirty files, snapshot or live. */
  source: string;
  /** Stops the sampler (its final peaks stay readable), then ends the process group (SIGTERM, SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** `stop`, then removes the persist dir if it is a temp dir made here. */
  dispose(): Promise<void>;
}

const SNAPSHOT_ENTRIES = ["src", "public", "wrangler.jsonc", "package.json", "tsconfig.json", "env.d.ts"];

function git(args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: repoRoot, encoding: "utf8" }).trim();
  } catch {
    return "?";
  }
}

/** Copy what wrangler dev needs to build the worker into a temp dir, frozen for the run. */
function snapshotSource(): { dir: string; description: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "nixdocs-bench-src-"));
  for (const entry of SNAPSHOT_ENTRIES) {
    const from = path.join(repoRoot, entry);
    if (existsSync(from)) cpSync(from, path.join(dir, entry), { recursive: true });
  }
  symlinkSync(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"), "dir");
  return { dir, description: describeSource("snapshot of the working tree") };
}

function describeSource(how: string): string {
  const dirty = git(["status", "--porcelain", "--", ...SNAPSHOT_ENTRIES]).split("\n").filter(Boolean).length;
  return `${how} at ${git(["rev-parse", "--short", "HEAD"])}${dirty ? ` + ${dirty} uncommitted file(s) in src/ or config` : ""}`;
}

/** What to delete when the benchmark ends before stop() (the servers themselves are killed by processes.ts). */
const cleanups = new Set<() => void>();

// Runs after processes.ts's exit handler (imported first) has SIGKILLed the servers.
process.on("exit", () => {
  for (const cleanup of cleanups) cleanup();
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => process.exit(130)); // the exit handlers end the servers and delete the temp dirs
}

export interface StartOptions {
  /** Reuse this persist dir (created when missing); default: a fresh temp dir. */
  persistDir?: string;
  /** Where wrangler's output goes; default: bench/out/wrangler-dev-<time>.log (ignored by git). */
  logFile?: string;
  sampleIntervalMs?: number;
  /** Extra `--var NAME:VALUE`s (e.g. rate limits); ADMIN_TOKEN is always the generated one. */
  vars?: Record<string, string>;
}

export async function startDevServer(opts: StartOptions = {}): Promise<DevServer> {
  const persistDir = opts.persistDir ?? mkdtempSync(path.join(tmpdir(), "nixdocs-bench-persist-"));
  mkdirSync(path.join(repoRoot, "bench/out"), { recursive: true });
  const logFile = opts.logFile ?? path.join(repoRoot, "bench/out", `wrangler-dev-${new Date().toISOString().replace(/[:.]/g, "-")}.log`);
  const token = randomBytes(24).toString("hex");
  // The token goes in a temp env file (what wrangler's required-secrets check reads, so it does not
  // warn) and in --var (which wins over any .dev.vars in the working directory).
  const secretsDir = mkdtempSync(path.join(tmpdir(), "nixdocs-bench-secrets-"));
  const envFile = path.join(secretsDir, "bench.env");
  const telemetryKey = randomBytes(24).toString("hex");
  writeFileSync(envFile, `ADMIN_TOKEN=${token}\nTELEMETRY_HASH_KEY=${telemetryKey}\n`, { mode: 0o600 });
  const snapshot = process.env.BENCH_SOURCE === "live" ? null : snapshotSource();
  const source = snapshot?.description ?? describeSource("live working tree");
  const log = createWriteStream(logFile);
  const cleanup = () => {
    if (snapshot) rmSync(snapshot.dir, { recursive: true, force: true });
    rmSync(secretsDir, { recursive: true, force: true });
  };
  // On a crash or a signal the temp persist dir goes too; after stop() callers decide.
  const cleanupOnExit = () => {
    cleanup();
    if (opts.persistDir === undefined) rmSync(persistDir, { recursive: true, force: true });
  };
  cleanups.add(cleanupOnExit);
  let memory: MemorySampler | undefined;
  const finish = async () => {
    cleanups.delete(cleanupOnExit);
    cleanup();
    await new Promise<void>((r) => log.end(r));
  };
  try {
    const dev = await startWranglerDev({
      cwd: snapshot?.dir ?? repoRoot,
      persistDir,
      envFile,
      vars: { ...opts.vars, ADMIN_TOKEN: token, TELEMETRY_HASH_KEY: telemetryKey },
      logLevel: "warn",
      log,
      capture: false,
      hint: `see ${logFile}`,
      onSpawn: (group) => (memory = new MemorySampler(group.pgid, opts.sampleIntervalMs ?? 200)),
    });
    const sampler = memory!;
    const server: DevServer = {
      url: dev.url,
      port: dev.port,
      pid: dev.pgid,
      token,
      persistDir,
      tempPersistDir: opts.persistDir === undefined,
      logFile,
      memory: sampler,
      source,
      async stop() {
        await sampler.stop(); // last sample while the tree is still alive
        await dev.stop();
        await finish();
      },
      async dispose() {
        await server.stop();
        if (server.tempPersistDir) rmSync(server.persistDir, { recursive: true, force: true });
      },
    };
    return server;
  } catch (err) {
    // startWranglerDev has stopped the server already; the caller never saw the temp persist dir.
    await memory?.stop();
    await finish();
    if (opts.persistDir === undefined) rmSync(persistDir, { recursive: true, force: true });
    throw err;
  }
}

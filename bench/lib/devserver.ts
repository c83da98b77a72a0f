/**
 * Starting and stopping a `wrangler dev` server for benchmarks: a free port, a temp (or given)
 * persist dir, a random ADMIN_TOKEN passed with `--var`, its own process group so the whole
 * tree (wrangler, esbuild, workerd) is ended together, also when the benchmark fails.
 *
 * By default the server runs on a snapshot of the working tree (src/, wrangler.jsonc,
 * package.json, tsconfig.json, env.d.ts copied to a temp dir, node_modules linked): others edit
 * src/ while benchmarks run, and wrangler dev would rebuild and restart workerd mid-measurement.
 * `BENCH_SOURCE=live` runs in the repository itself instead.
 * @module
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { MemorySampler } from "./memory.ts";
import { repoRoot } from "./paths.ts";

export interface DevServer {
  url: string;
  port: number;
  pid: number;
  token: string;
  persistDir: string;
  /** True when the persist dir is a temp dir made here (callers remove it when done). */
  tempPersistDir: boolean;
  logFile: string;
  memory: MemorySampler;
  /** What code runs: commit, dirty files, snapshot or live. */
  source: string;
  /** Stops the sampler (its final peaks stay readable), then ends the process group (SIGTERM, SIGKILL after 5 s). */
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const SNAPSHOT_ENTRIES = ["src", "wrangler.jsonc", "package.json", "tsconfig.json", "env.d.ts"];

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

/** Running servers and what to delete when they end. */
const live = new Map<ChildProcess, () => void>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

// Last line of defence: whatever happens to the benchmark, its dev servers go with it.
process.on("exit", () => {
  for (const [c, cleanup] of live) {
    killGroup(c, "SIGKILL");
    cleanup();
  }
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => process.exit(130)); // the exit handler above ends the servers
}

async function waitReady(url: string, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`wrangler dev exited early (code ${child.exitCode}, signal ${child.signalCode}); see ${logFile}`);
    }
    try {
      const res = await fetch(`${url}/api/v1/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`wrangler dev did not answer /api/v1/health within ${timeoutMs} ms; see ${logFile}`);
}

export interface StartOptions {
  /** Reuse this persist dir (created when missing); default: a fresh temp dir. */
  persistDir?: string;
  /** Where wrangler's output goes; default: bench/out/wrangler-dev-<time>.log (ignored by git). */
  logFile?: string;
  sampleIntervalMs?: number;
}

export async function startDevServer(opts: StartOptions = {}): Promise<DevServer> {
  const persistDir = opts.persistDir ?? mkdtempSync(path.join(tmpdir(), "nixdocs-bench-persist-"));
  mkdirSync(path.join(repoRoot, "bench/out"), { recursive: true });
  const logFile = opts.logFile ?? path.join(repoRoot, "bench/out", `wrangler-dev-${new Date().toISOString().replace(/[:.]/g, "-")}.log`);
  const port = await freePort();
  const inspectorPort = await freePort();
  const token = randomBytes(24).toString("hex");
  // The token goes in a temp env file (what wrangler's required-secrets check reads, so it does not
  // warn) and in --var (which wins over any .dev.vars in the working directory).
  const secretsDir = mkdtempSync(path.join(tmpdir(), "nixdocs-bench-secrets-"));
  const envFile = path.join(secretsDir, "bench.env");
  writeFileSync(envFile, `ADMIN_TOKEN=${token}\n`, { mode: 0o600 });
  const wranglerJs = path.join(repoRoot, "node_modules/wrangler/bin/wrangler.js");
  const snapshot = process.env.BENCH_SOURCE === "live" ? null : snapshotSource();
  const cwd = snapshot?.dir ?? repoRoot;
  const source = snapshot?.description ?? describeSource("live working tree");
  const args = [
    wranglerJs, "dev",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(inspectorPort),
    "--persist-to", persistDir,
    "--env-file", envFile,
    "--var", `ADMIN_TOKEN:${token}`,
    "--show-interactive-dev-session=false",
    "--log-level", "warn",
  ];
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, args, {
    cwd,
    detached: true, // own process group: kill(-pid) reaches esbuild and workerd too
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", CI: "1" },
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const memory = new MemorySampler(child.pid!, opts.sampleIntervalMs ?? 200);
  const url = `http://127.0.0.1:${port}`;
  const cleanup = () => {
    if (snapshot) rmSync(snapshot.dir, { recursive: true, force: true });
    rmSync(secretsDir, { recursive: true, force: true });
  };
  // On a crash or a signal the temp persist dir goes too; after stop() callers decide.
  live.set(child, () => {
    cleanup();
    if (opts.persistDir === undefined) rmSync(persistDir, { recursive: true, force: true });
  });
  const server: DevServer = {
    url,
    port,
    pid: child.pid!,
    token,
    persistDir,
    tempPersistDir: opts.persistDir === undefined,
    logFile,
    memory,
    source,
    async stop() {
      await memory.stop(); // last sample while the tree is still alive
      if (child.exitCode !== null || child.signalCode !== null) {
        killGroup(child, "SIGKILL"); // stray grandchildren, if any
        live.delete(child);
        cleanup();
        return;
      }
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      killGroup(child, "SIGTERM");
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
      killGroup(child, "SIGKILL"); // workerd may outlive wrangler for a moment
      live.delete(child);
      cleanup();
    },
  };
  try {
    await waitReady(url, child, logFile, 120_000);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/**
 * Process plumbing for running `wrangler dev` from Node: shared by `npm start` (src/cli/start.ts),
 * the benchmarks (bench/lib/devserver.ts) and the end-to-end tests (test/e2e/).
 *
 * `wrangler dev` is a tree, not a process: wrangler's launcher (bin/wrangler.js) starts its CLI
 * in a second Node process, which starts esbuild and one or more workerd processes. Ending the
 * launcher alone can leave workerd serving (and writing to the persist dir) after the caller has
 * moved on. So whatever is started here as a server runs in its own process group
 * (`detached: true`, the group id is the child's pid), and is stopped by signalling the group:
 * `process.kill(-pgid, signal)` reaches every process of the tree at once.
 *
 * Groups started with {@link spawnGroup} are also SIGKILLed when this process exits, whatever the
 * reason (a failed assertion, an uncaught error, `process.exit` from a signal handler), so a
 * benchmark or a test run never leaves a server behind.
 * @module
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (where wrangler.jsonc and node_modules are). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A port that is free on `host` now, chosen by the kernel (listen on port 0, read it, close).
 * Another process could take it before the caller binds it; for local servers started right
 * after, that race is remote, and it lets several servers (benchmarks, test files) run at once.
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Whether `port` on `host` can be bound now (`exclusive`: a cluster primary's handle is not
 * shared either). Used to refuse a busy fixed port with a clear message before wrangler fails
 * on it less clearly.
 */
export function portFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** True once the child has exited (its `exit` event has fired, or it was killed by a signal). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves when the child exits, at once when it already has. */
export function exitOf(child: ChildProcess): Promise<ExitStatus> {
  if (hasExited(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

/** Process groups started by {@link spawnGroup} that may still have members. */
const groups = new Set<number>();

/**
 * Sends `signal` to every process of group `pgid` (0: only checks that one exists). A group that no longer exists (ESRCH) is not
 * an error: stopping something that has already stopped is the normal end of a race. Returns
 * whether the group still existed. `pgid` undefined (a spawn that failed) does nothing.
 */
export function killGroup(pgid: number | undefined, signal: NodeJS.Signals | 0): boolean {
  if (pgid === undefined) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") {
      groups.delete(pgid);
      return false;
    }
    throw err;
  }
}

/**
 * True while any process of group `pgid` exists. Zombies count until their parent (or init,
 * for orphans) reaps them, so "gone" means really gone.
 */
export function groupAlive(pgid: number): boolean {
  return killGroup(pgid, 0);
}

/** Polls until group `pgid` has no process left; false when `timeoutMs` passes first. */
export async function waitGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (groupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/** SIGKILL every group still registered and wait (up to `timeoutMs` each) until it is gone: for test teardown. */
export async function killAllGroups(timeoutMs = 10_000): Promise<void> {
  for (const pgid of [...groups]) {
    killGroup(pgid, "SIGKILL");
    await waitGroupGone(pgid, timeoutMs);
  }
}

// Last line of defence, installed when this module loads so that it runs before the exit handlers
// of the modules that import it (they may delete directories the servers still write to).
process.on("exit", () => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // gone already, or nothing more can be done while exiting
    }
  }
});

export interface SpawnGroupOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Also write stdout and stderr here (a log file); it is not ended when the child exits. */
  log?: NodeJS.WritableStream;
  /** Keep stdout and stderr in memory for {@link GroupProcess.output} (default true). */
  capture?: boolean;
}

export interface GroupProcess {
  readonly child: ChildProcess;
  /** The child's pid, which is also the id of its process group. */
  readonly pgid: number;
  readonly exited: Promise<ExitStatus>;
  /** What the group wrote to stdout and stderr so far, interleaved (empty with `capture: false`). */
  output(): string;
  /**
   * Stops the whole group: SIGTERM (wrangler then ends workerd itself), SIGKILL after `graceMs`,
   * then, once the leader has exited, SIGKILL again for members that outlive it (workerd may, for
   * a moment), and a bounded wait until none is left, so the caller can delete the persist dir.
   */
  stop(graceMs?: number): Promise<ExitStatus>;
}

/**
 * Spawns `command` as the leader of a new process group, stdout and stderr piped (to `log` and,
 * by default, into memory), and registers the group to be killed when this process exits.
 */
export function spawnGroup(command: string, args: readonly string[], options: SpawnGroupOptions): GroupProcess {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: true, // own process group: kill(-pid) reaches the whole tree
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${command} ${args.join(" ")}`);
  const pgid = child.pid;
  groups.add(pgid);
  let out = "";
  for (const stream of [child.stdout!, child.stderr!]) {
    if (options.log) stream.pipe(options.log, { end: false });
    if (options.capture !== false) stream.on("data", (d: Buffer) => (out += d.toString()));
  }
  const exited = exitOf(child);
  return {
    child,
    pgid,
    exited,
    output: () => out,
    async stop(graceMs = 5_000) {
      if (!hasExited(child)) {
        killGroup(pgid, "SIGTERM");
        const timer = setTimeout(() => killGroup(pgid, "SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      }
      killGroup(pgid, "SIGKILL");
      await waitGroupGone(pgid, 5_000);
      return exited;
    },
  };
}

export interface WaitHealthyOptions {
  /** Path polled on `base` (default `/api/v1/health`). */
  path?: string;
  timeoutMs?: number;
  /** Appended to the error messages (e.g. where the server's log is). */
  hint?: string;
}

/**
 * Polls `base + path` until it answers 2xx with a JSON body `{ ok: true }`, watching `child`:
 * when it exits first (a port taken, a build error) this fails at once instead of at the timeout.
 */
export async function waitHealthy(base: string, child: ChildProcess, options: WaitHealthyOptions = {}): Promise<void> {
  const url = `${base}${options.path ?? "/api/v1/health"}`;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const hint = options.hint ? `; ${options.hint}` : "";
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (hasExited(child)) {
      throw new Error(`wrangler exited before ${url} answered (${child.signalCode ?? `code ${child.exitCode}`})${hint}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.ok && ((await res.json()) as { ok?: unknown }).ok === true) return;
    } catch {
      // not listening yet, or not ready
    }
    await sleep(250);
  }
  throw new Error(`${url} did not answer { ok: true } within ${Math.round(timeoutMs / 1000)} s${hint}`);
}

/** The wrangler launcher of this repository's node_modules (run with `process.execPath`). */
export function wranglerBin(): string {
  return path.join(path.dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin/wrangler.js");
}

/** Environment for wrangler: no metrics prompt or upload, no download of the `Request.cf` object (offline). */
export function wranglerEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    // Offline: do not try to download the `Request.cf` object (miniflare falls back anyway).
    CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? "false",
    ...extra,
  };
}

export interface WranglerDevArgs {
  port: number;
  persistDir: string;
  /** `--config`: a wrangler.json(c) other than the one in the working directory. */
  config?: string;
  /** `--inspector-port`; wrangler's default (9229) clashes when several servers run. */
  inspectorPort?: number;
  /** `--env-file`: secrets and vars (what wrangler's required-secrets check reads). */
  envFile?: string;
  /** `--var NAME:VALUE` each; wins over `.dev.vars` and env files. */
  vars?: Record<string, string>;
  logLevel?: "debug" | "info" | "log" | "warn" | "error" | "none";
}

/** Node arguments for `wrangler dev` on 127.0.0.1, not interactive. */
export function wranglerDevArgs(a: WranglerDevArgs): string[] {
  const args = [wranglerBin(), "dev", "--ip", "127.0.0.1", "--port", String(a.port), "--persist-to", a.persistDir];
  if (a.config) args.push("--config", a.config);
  if (a.inspectorPort !== undefined) args.push("--inspector-port", String(a.inspectorPort));
  if (a.envFile) args.push("--env-file", a.envFile);
  for (const [name, value] of Object.entries(a.vars ?? {})) args.push("--var", `${name}:${value}`);
  if (a.logLevel) args.push("--log-level", a.logLevel);
  args.push("--show-interactive-dev-session=false");
  return args;
}

export interface WranglerDevOptions extends Omit<WranglerDevArgs, "port" | "inspectorPort"> {
  /** Working directory (wrangler.jsonc, `.dev.vars` and `.wrangler/` are looked for there); default the repository root. */
  cwd?: string;
  /** Default: a free port. */
  port?: number;
  /** Default: a free port. */
  inspectorPort?: number;
  /** Where wrangler's output goes besides memory (see {@link SpawnGroupOptions}). */
  log?: NodeJS.WritableStream;
  capture?: boolean;
  /** Extra environment for wrangler. */
  env?: NodeJS.ProcessEnv;
  /** Path that answers `{ ok: true }` once the worker is up (default `/api/v1/health`). */
  healthPath?: string;
  timeoutMs?: number;
  /** Appended to startup errors (e.g. where the log is). */
  hint?: string;
  /** Called right after the spawn, before the wait (e.g. to start sampling the tree's memory). */
  onSpawn?: (server: GroupProcess) => void;
}

export interface WranglerDev extends GroupProcess {
  url: string;
  port: number;
}

/**
 * Starts `wrangler dev` in its own process group (see the module comment) on free ports and
 * waits until `healthPath` answers. When it does not come up, the group is stopped before the
 * error is thrown. Stop it with `stop()`.
 */
export async function startWranglerDev(options: WranglerDevOptions): Promise<WranglerDev> {
  const port = options.port ?? (await freePort());
  const inspectorPort = options.inspectorPort ?? (await freePort());
  const args = wranglerDevArgs({ ...options, port, inspectorPort });
  const group = spawnGroup(process.execPath, args, {
    cwd: options.cwd ?? repoRoot,
    env: wranglerEnv({ NO_COLOR: "1", CI: "1", ...options.env }),
    log: options.log,
    capture: options.capture,
  });
  const server: WranglerDev = { ...group, url: `http://127.0.0.1:${port}`, port };
  try {
    options.onSpawn?.(server);
    await waitHealthy(server.url, group.child, { path: options.healthPath, timeoutMs: options.timeoutMs, hint: options.hint });
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

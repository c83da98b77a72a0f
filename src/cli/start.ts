/**
 * `npm start`: a local nixdocs on `wrangler dev`, optionally seeded with data.
 *
 * - Writes random values of the required secrets (`ADMIN_TOKEN`, `TELEMETRY_HASH_KEY`, `JWT_SECRET`)
 *   that `.dev.vars` lacks (they stay in that file).
 * - Runs `wrangler dev --ip 127.0.0.1 --port $PORT --persist-to $NIXDOCS_PERSIST_DIR`
 *   (defaults 8787 and `.wrangler/state`), streaming its output, and waits for `/api/v1/health`.
 * - With `SEED_DIR`: ingests every `*-options.json.gz` there whose namespace the store does not
 *   hold yet (mode replace), so a restart on the same persist directory seeds nothing. A seed
 *   that was cut short is finished on the next start (see the seed journal below).
 * - Forwards SIGINT/SIGTERM/SIGHUP to wrangler and exits when it exits. Works offline.
 *
 * Environment: PORT, NIXDOCS_PERSIST_DIR, SEED_DIR, START_TIMEOUT_S (default 120),
 * SEED_BATCH_BYTES (default 2 MiB).
 * @module
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describeError, formatReportLine, ingestFile, namespaceFromFile, parseByteSize, parseDevVars, prepareFile, totalReport, type IngestReport } from "./ingest-lib.ts";
import { hasExited, portFree, repoRoot as ROOT, waitHealthy, wranglerDevArgs, wranglerEnv } from "./processes.ts";

const USER_CWD = process.env.npm_lifecycle_event === "start" && process.env.INIT_CWD ? process.env.INIT_CWD : process.cwd();

function say(line: string): void {
  process.stdout.write(`[nixdocs] ${line}\n`);
}

function fail(message: string): never {
  process.stderr.write(`[nixdocs] error: ${message}\n`);
  process.exit(1);
}

/**
 * The secrets `wrangler.jsonc` lists as required, with what each is for. `wrangler dev` loads only
 * these (and overrides of configured vars) from `.dev.vars`, so each gets a random value here.
 */
const LOCAL_SECRETS: [name: string, purpose: string][] = [
  ["ADMIN_TOKEN", "Bootstrap admin bearer token (npm run ingest reads it from here)."],
  ["TELEMETRY_HASH_KEY", "Key of the HMAC that hashes telemetry hosts again before storing; changing it makes every host a new one."],
  ["JWT_SECRET", "HS256 key of JWT bearer tokens (claims sub, role, ns?, exp); whoever holds it can mint tokens."],
];

/** Make sure `.dev.vars` holds every required secret (random when missing); returns the admin token. */
function ensureDevVars(): string {
  const file = path.join(ROOT, ".dev.vars");
  const vars = existsSync(file) ? parseDevVars(readFileSync(file, "utf8")) : {};
  const missing = LOCAL_SECRETS.filter(([name]) => !vars[name]);
  if (missing.length) {
    const existed = existsSync(file);
    const lines = missing.map(([name, purpose]) => `# ${purpose}\n${name}=${(vars[name] = randomBytes(32).toString("base64url"))}\n`).join("");
    if (existed) appendFileSync(file, `\n# Added by npm start.\n${lines}`);
    else writeFileSync(file, `# Created by npm start.\n${lines}`, { mode: 0o600, flag: "wx" });
    say(`${existed ? "added to" : "created"} ${file}: random ${missing.map(([n]) => n).join(", ")} (read them from there)`);
  }
  return vars.ADMIN_TOKEN!;
}

interface NamespaceItem {
  namespace: string;
  options: number;
}

/**
 * The seed journal, `<persist dir>/nixdocs-seed.json`, lives with the data it describes: a
 * namespace is marked `started` before its first batch and `done` after its last, so a seed cut
 * short (Ctrl-C, crash) is finished on the next start instead of being taken for a stored namespace.
 */
type SeedJournal = Record<string, { state: "started" | "done"; file: string; at: string }>;

function readJournal(file: string): SeedJournal {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as SeedJournal;
  } catch {
    return {};
  }
}

function writeJournal(file: string, journal: SeedJournal): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(journal, null, 2) + "\n");
  renameSync(`${file}.tmp`, file);
}

async function seed(base: string, token: string, dir: string, persist: string, signal: AbortSignal): Promise<void> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith("-options.json.gz"))
    .sort()
    .map((f) => path.join(dir, f));
  if (files.length === 0) {
    say(`SEED_DIR ${dir} holds no *-options.json.gz files; nothing to seed`);
    return;
  }
  const journalFile = path.join(persist, "nixdocs-seed.json");
  const journal = readJournal(journalFile);
  // kind=all: a seed file may name a preview namespace too.
  const res = await fetch(`${base}/api/v1/namespaces?kind=all`, { signal });
  if (!res.ok) throw new Error(`GET /api/v1/namespaces?kind=all answered ${res.status}: ${await res.text()}`);
  const stored = new Map(((await res.json()) as { items: NamespaceItem[] }).items.map((i) => [i.namespace, i]));
  const todo: string[] = [];
  for (const file of files) {
    const ns = namespaceFromFile(file);
    const have = stored.get(ns);
    if (!have) {
      todo.push(file);
    } else if (journal[ns]?.state === "started") {
      say(`the seed of ${ns} was interrupted (${have.options} options stored); finishing it`);
      todo.push(file);
    } else {
      // Stored and complete as far as we know. A count different from the file means someone
      // changed it since; leave it, but say so, since a restart would otherwise hide it.
      const prepared = await prepareFile(file).catch(() => null);
      if (prepared && prepared.options !== have.options) {
        say(`note: namespace ${ns} holds ${have.options} options, ${path.basename(file)} has ${prepared.options}; left as it is (npm run ingest -- --replace ${file} reloads it)`);
      }
    }
  }
  if (todo.length === 0) {
    say(`store already holds ${stored.size} namespaces; nothing to seed`);
    return;
  }
  say(`seeding ${todo.length} namespace${todo.length === 1 ? "" : "s"} from ${dir}: ${todo.map(namespaceFromFile).join(", ")}`);
  const batchBytes = process.env.SEED_BATCH_BYTES ? parseByteSize(process.env.SEED_BATCH_BYTES) : undefined;
  const started = performance.now();
  const reports: IngestReport[] = [];
  for (const file of todo) {
    const ns = namespaceFromFile(file);
    journal[ns] = { state: "started", file, at: new Date().toISOString() };
    writeJournal(journalFile, journal);
    const report = await ingestFile(file, {
      url: base,
      token,
      mode: "replace",
      batchBytes,
      progress: "lines",
      signal,
      log: (line) => say(line),
    });
    journal[ns] = { state: "done", file, at: new Date().toISOString() };
    writeJournal(journalFile, journal);
    reports.push(report);
    say(`seeded ${formatReportLine(report)}`);
  }
  const total = totalReport(reports, (performance.now() - started) / 1000);
  say(`seeded ${formatReportLine(total)}`);
  say(`seeding done: ${reports.length} namespace${reports.length === 1 ? "" : "s"}, ${total.options} options in ${total.seconds.toFixed(1)} s`);
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8787);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`PORT must be a port number (got ${JSON.stringify(process.env.PORT)})`);
  const persist = process.env.NIXDOCS_PERSIST_DIR ? path.resolve(USER_CWD, process.env.NIXDOCS_PERSIST_DIR) : path.join(ROOT, ".wrangler/state");
  let seedDir: string | null = null;
  if (process.env.SEED_DIR) {
    seedDir = path.resolve(USER_CWD, process.env.SEED_DIR);
    let ok = false;
    try {
      ok = statSync(seedDir).isDirectory();
    } catch {
      ok = false;
    }
    if (!ok) fail(`SEED_DIR ${seedDir} does not exist or is not a directory`);
  }
  const token = ensureDevVars();
  if (!(await portFree(port))) fail(`port ${port} on 127.0.0.1 is already in use (another npm start?); set PORT to use another`);

  say(`starting wrangler dev on http://127.0.0.1:${port} (data in ${persist})`);
  // Not in a process group of its own, unlike the servers of the benchmarks and tests: wrangler
  // stays in the terminal's foreground group, so Ctrl-C reaches it directly as well as through
  // the forwarding below, and whoever stops npm start's group stops wrangler with it.
  const child = spawn(process.execPath, wranglerDevArgs({ port, persistDir: persist }), {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: wranglerEnv(),
  });
  // Our reader may be gone (closed pipe); losing wrangler's log is better than dying of EPIPE.
  process.stdout.on("error", () => {});
  process.stderr.on("error", () => {});
  child.stdout!.pipe(process.stdout, { end: false });
  child.stderr!.pipe(process.stderr, { end: false });

  const seeding = new AbortController();
  let stopping: NodeJS.Signals | null = null;
  const stop = (signal: NodeJS.Signals) => {
    seeding.abort(new Error(`stopped by ${signal}`));
    if (hasExited(child)) return;
    if (stopping) {
      // Second signal: no more patience.
      child.kill("SIGKILL");
      return;
    }
    stopping = signal;
    say(`${signal}: stopping wrangler`);
    child.kill(signal);
    setTimeout(() => {
      if (!hasExited(child)) {
        say("wrangler did not stop within 15 s; killing it");
        child.kill("SIGKILL");
      }
    }, 15_000).unref();
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => stop(signal));
  child.on("error", (err) => fail(`cannot run wrangler: ${err.message}`));
  child.on("exit", (code, signal) => {
    if (stopping) say("wrangler stopped");
    else say(`wrangler exited (${signal ?? `code ${code}`})`);
    process.exitCode = stopping && (code === 0 || signal === stopping || code === 130 || code === 143) ? 0 : (code ?? 1);
    // Let piped output drain, then leave even if handles (fetches) are still open.
    setTimeout(() => process.exit(), 100);
  });

  const base = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(base, child, { timeoutMs: Number(process.env.START_TIMEOUT_S ?? 120) * 1000 });
  } catch (err) {
    if (stopping) return;
    process.stderr.write(`[nixdocs] error: ${(err as Error).message}\n`);
    stop("SIGTERM");
    process.exitCode = 1;
    return;
  }
  say(`ready on ${base}`);
  if (!seedDir) return;
  try {
    await seed(base, token, seedDir, persist, seeding.signal);
  } catch (err) {
    if (stopping) return;
    // The server stays up for inspection; the failure is loud.
    process.stderr.write(`[nixdocs] seeding failed: ${describeError(err)}\n`);
  }
}

await main();

/**
 * `npm run bench:telemetry`: telemetry reports per second from many distinct hosts, over HTTP
 * against a local `wrangler dev` (bench/lib/devserver.ts, which runs src/cli/processes.ts).
 *
 * Seeds the smaller real collections (their module paths are what the hosts report), then
 * `BENCH_HOSTS` simulated hosts (default 2,000) each send one report per round, `BENCH_CONCURRENCY`
 * requests in flight (default 32). Each host uses 5–40 real modules in one of three environments;
 * in every round after the first a third of the hosts change a few modules or their environment,
 * so later rounds exercise the diff path. A round starts 61 s after the previous one ended and
 * sends the hosts in the same order, so no host reports twice within a minute (the server's limit). At the end the counts of every used module are checked against the counts the
 * reports imply. Prints reports/s and latency per round, errors (any answer other than 200 with
 * `applied: true`), and the dev server's peak memory. Figures are printed, not asserted.
 *
 * Env: BENCH_HOSTS, BENCH_ROUNDS (default 2), BENCH_CONCURRENCY, BENCH_NAMESPACES (default
 * agenix,disko,impermanence,nix-darwin,sops-nix,srvos), BENCH_PERSIST_DIR (a new directory, e.g.
 * on /dev/shm to take the disk out of the measurement; default a temp dir), NIXDOCS_DATA_DIR.
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { sleep } from "../src/cli/processes.ts";
import { startDevServer, type DevServer } from "./lib/devserver.ts";
import { formatMemory } from "./lib/memory.ts";
import { dataFiles, repoRoot } from "./lib/paths.ts";
import { seedAll } from "./lib/seed.ts";
import { machine, ms, saveResult, summary, table } from "./lib/stats.ts";
import { runMain } from "./lib/run.ts";

const HOSTS = Number(process.env.BENCH_HOSTS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const NAMESPACES = (process.env.BENCH_NAMESPACES ?? "agenix,disko,impermanence,nix-darwin,sops-nix,srvos").split(",");
const ENVIRONMENTS = ["production", "staging", "dev"];

/** Deterministic pseudo-random numbers (mulberry32), so every run sends the same reports. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Module references (`namespace:path`) of a collection: the first declaring file of each option. */
function moduleRefs(namespace: string, file: string): string[] {
  const options = JSON.parse(gunzipSync(readFileSync(file)).toString("utf8")) as Record<string, { declarations?: string[] }>;
  const paths = new Set<string>();
  for (const o of Object.values(options)) {
    const d = o.declarations?.[0];
    if (d && !d.startsWith("<") && !d.startsWith("/") && d !== "lib/modules.nix") paths.add(d);
  }
  return [...paths].sort().map((p) => `${namespace}:${p}`);
}

interface Host {
  host: string;
  environment: string;
  modules: string[];
}

function makeHosts(pool: readonly string[], n: number, rand: () => number): Host[] {
  return Array.from({ length: n }, (_, i) => {
    const count = 5 + Math.floor(rand() * 36);
    const modules = new Set<string>();
    while (modules.size < Math.min(count, pool.length)) modules.add(pool[Math.floor(rand() * pool.length)]!);
    return {
      host: createHash("sha256").update(`bench-host-${i}.example.org`).digest("hex"),
      environment: ENVIRONMENTS[Math.floor(rand() * ENVIRONMENTS.length)]!,
      modules: [...modules],
    };
  });
}

/** A third of the hosts change: drop or add a few modules, or move environment. */
function change(hosts: Host[], pool: readonly string[], rand: () => number): void {
  for (const h of hosts) {
    if (rand() >= 1 / 3) continue;
    if (rand() < 0.2) h.environment = ENVIRONMENTS[(ENVIRONMENTS.indexOf(h.environment) + 1) % ENVIRONMENTS.length]!;
    if (h.modules.length > 5 && rand() < 0.5) h.modules.splice(Math.floor(rand() * h.modules.length), 1 + Math.floor(rand() * 3));
    for (let k = Math.floor(rand() * 4); k > 0; k--) {
      const m = pool[Math.floor(rand() * pool.length)]!;
      if (!h.modules.includes(m)) h.modules.push(m);
    }
  }
}

interface Sample {
  ms: number;
  status: number;
  applied: boolean;
  error?: string;
}

async function send(server: DevServer, h: Host, reportedAt: number): Promise<Sample> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${server.url}/api/v1/telemetry`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
      body: JSON.stringify({ host: h.host, environment: h.environment, system: "x86_64-linux", reportedAt, modules: h.modules }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    const elapsed = performance.now() - t0;
    const applied = res.ok && (JSON.parse(text) as { applied?: boolean }).applied === true;
    return { ms: elapsed, status: res.status, applied, ...(applied ? {} : { error: text.slice(0, 300) }) };
  } catch (err) {
    return { ms: performance.now() - t0, status: 0, applied: false, error: String(err) };
  }
}

/** Sends every host's report, `CONCURRENCY` at a time. */
async function round(server: DevServer, hosts: readonly Host[], reportedAt: number): Promise<{ samples: Sample[]; wallMs: number }> {
  const samples: Sample[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < hosts.length) {
        const h = hosts[next++]!;
        samples.push(await send(server, h, reportedAt));
      }
    }),
  );
  return { samples, wallMs: performance.now() - t0 };
}

/** Compares every module's host count per environment with what the hosts' last reports imply. */
async function verify(server: DevServer, hosts: readonly Host[]): Promise<{ modules: number; mismatches: string[] }> {
  const expected = new Map<string, Record<string, number>>();
  for (const h of hosts) {
    for (const m of h.modules) {
      const byEnv = expected.get(m) ?? {};
      byEnv[h.environment] = (byEnv[h.environment] ?? 0) + 1;
      expected.set(m, byEnv);
    }
  }
  const mismatches: string[] = [];
  const refs = [...expected.keys()];
  let i = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (i < refs.length) {
        const ref = refs[i++]!;
        const at = ref.indexOf(":");
        const res = await fetch(`${server.url}/api/v1/namespaces/${ref.slice(0, at)}/modules/${encodeURIComponent(ref.slice(at + 1))}/usage`);
        const body = (await res.json()) as { byEnvironment?: Record<string, number> };
        const want = JSON.stringify(Object.fromEntries(Object.entries(expected.get(ref)!).sort()));
        const got = JSON.stringify(Object.fromEntries(Object.entries(body.byEnvironment ?? {}).sort()));
        if (want !== got) mismatches.push(`${ref}: expected ${want}, got ${got} (status ${res.status})`);
      }
    }),
  );
  return { modules: refs.length, mismatches };
}

async function main(): Promise<void> {
  const files = dataFiles().filter((f) => NAMESPACES.includes(f.namespace));
  const pool = files.flatMap((f) => moduleRefs(f.namespace, f.file));
  console.log(`bench:telemetry — ${HOSTS} hosts × ${ROUNDS} rounds, ${CONCURRENCY} in flight, ${pool.length} real modules of ${files.map((f) => f.namespace).join(", ")}`);
  console.log(`machine: ${JSON.stringify(machine())}`);
  const persistDir = process.env.BENCH_PERSIST_DIR ? path.resolve(process.env.BENCH_PERSIST_DIR) : undefined;
  if (persistDir && existsSync(persistDir) && readdirSync(persistDir).length) throw new Error(`BENCH_PERSIST_DIR ${persistDir} is not empty: the hosts must be new`);
  const server = await startDevServer({ persistDir });
  console.log(`wrangler dev pid ${server.pid} on ${server.url}, persist dir ${server.persistDir}, log ${server.logFile}`);
  console.log(`code: ${server.source}`);
  try {
    const seeded = await seedAll(server, files);
    console.log(`seeded ${seeded.options} options`);
    await server.memory.reset();

    const rand = rng(42);
    const hosts = makeHosts(pool, HOSTS, rand);
    const rounds: { round: number; reports: number; wallMs: number; perSecond: number; latency: ReturnType<typeof summary>; errors: number; firstErrors: string[] }[] = [];
    const start = Math.floor(Date.now() / 1000);
    for (let r = 0; r < ROUNDS; r++) {
      if (r > 0) change(hosts, pool, rand);
      const { samples, wallMs } = await round(server, hosts, start + r * 61);
      const bad = samples.filter((s) => !s.applied);
      const entry = {
        round: r + 1,
        reports: samples.length,
        wallMs,
        perSecond: samples.length / (wallMs / 1000),
        latency: summary(samples.map((s) => s.ms)),
        errors: bad.length,
        firstErrors: [...new Set(bad.map((s) => `${s.status} ${s.error ?? ""}`))].slice(0, 5),
      };
      rounds.push(entry);
      console.log(`round ${entry.round}: ${entry.reports} reports in ${(wallMs / 1000).toFixed(2)} s = ${entry.perSecond.toFixed(1)} reports/s, errors ${entry.errors}${entry.firstErrors.length ? ` (${entry.firstErrors.join("; ")})` : ""}`);
      if (r + 1 < ROUNDS) {
        console.log("  waiting 61 s (one report per host per minute)");
        await sleep(61_000);
      }
    }
    const memory = await server.memory.report();
    const check = await verify(server, hosts);

    console.log("");
    console.log(table(["round", "reports", "seconds", "reports/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"], rounds.map((e) => [
      e.round, e.reports, (e.wallMs / 1000).toFixed(2), e.perSecond.toFixed(1), ms(e.latency.p50), ms(e.latency.p95), ms(e.latency.p99), ms(e.latency.max), e.errors,
    ])));
    console.log(`counts checked for ${check.modules} modules against the reports: ${check.mismatches.length} mismatches`);
    for (const m of check.mismatches.slice(0, 10)) console.log(`  ${m}`);
    console.log("memory during the rounds:");
    console.log(formatMemory(memory));
    const file = saveResult("telemetry", { date: new Date().toISOString(), machine: machine(), source: server.source, persistDir: server.persistDir, hosts: HOSTS, concurrency: CONCURRENCY, modules: pool.length, rounds, check, memory });
    console.log(`\nresults saved to ${path.relative(repoRoot, file)}`);
    if (rounds.some((e) => e.errors) || check.mismatches.length) process.exitCode = 1;
  } finally {
    await server.dispose();
  }
}

runMain(main);

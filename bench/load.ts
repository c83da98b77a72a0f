/**
 * `npm run bench:load`: a bounded open-loop load test of a local `wrangler dev` with the real data.
 *
 * Mix: 70% searches (the queries of bench/relevance/queries.json), 25% reads (option and module
 * GETs of the real collections), 5% authenticated writes (one small module upserted into the
 * scratch namespace `bench-scratch`, each with a unique path and text).
 *
 * Open loop at a fixed rate: request i is sent at t0 + i/rate whether or not earlier ones have
 * answered, and its latency counts from that scheduled time, so a server that falls behind shows as
 * latency instead of silently lowering the rate (no coordinated omission).
 *
 * 1. Ramp: with every rate limit far above the load, steps of `LOAD_STEP_S` seconds (default 10;
 *    each step is at most 60 s) at rising rates, until a step has an error (anything but 2xx,
 *    including 429) or p99 ≥ 250 ms. The highest rate that passed is the capacity R.
 * 2. Overload: the server restarted with the per-IP limit at R/2 requests/s (a bucket of R,
 *    refilled over 2 s: well under the capacity, since refusing costs a little too), warmed up,
 *    then one step at 2·R. Expect 429s with Retry-After, no 5xx, and no lost
 *    write: every write answered 2xx is read back afterwards (reads honour Retry-After).
 *
 * Env: LOAD_RAMP_LIMITS=off (ramp without any limiter layer, for comparison), LOAD_RATES (comma-separated requests/s, default 2,5,10,15,20,30,40,50,60,80,100,120,150,200),
 * LOAD_STEP_S (default 10, max 60), LOAD_SEED (PRNG seed, default 1), NIXDOCS_DATA_DIR.
 * @module
 */
import { readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startDevServer, type DevServer } from "./lib/devserver.ts";
import { dataFiles, repoRoot } from "./lib/paths.ts";
import { seedAll } from "./lib/seed.ts";
import { machine, ms, saveResult, summary, table } from "./lib/stats.ts";

const RATES = (process.env.LOAD_RATES ?? "2,5,10,15,20,30,40,50,60,80,100,120,150,200").split(",").map(Number);
const STEP_S = Math.min(60, Number(process.env.LOAD_STEP_S ?? 10));
const P99_BUDGET_MS = 250;
const SCRATCH = "bench-scratch";
/**
 * Rate limits that never trigger during the ramp (the layers still run: their cost is measured),
 * or with LOAD_RAMP_LIMITS=off no limiter at all, to see what the layers cost.
 */
const RAMP_LIMIT = process.env.LOAD_RAMP_LIMITS === "off" ? "off" : "100000000/60";
const UNLIMITED = Object.fromEntries(["IP", "KEY", "SEARCH", "READ", "WRITE", "ADMIN", "GLOBAL"].map((l) => [`RATE_LIMIT_${l}`, RAMP_LIMIT]));

type Kind = "search" | "read" | "write";

interface Sample {
  kind: Kind;
  status: number;
  ms: number;
  /** For writes: the module path written. */
  path?: string;
  /** For writes: the unique description it carries. */
  text?: string;
  retryAfter?: string | null;
  rateLimitHeaders: boolean;
}

interface StepResult {
  rate: number;
  seconds: number;
  sent: number;
  achievedRps: number;
  byStatus: Record<string, number>;
  latency: ReturnType<typeof summary>;
  byKind: Record<Kind, ReturnType<typeof summary>>;
  loadavgBefore: number[];
  loadavgAfter: number[];
  samples: Sample[];
}

/** Small deterministic PRNG (mulberry32), so every run sends the same sequence. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Workload {
  queries: string[];
  /** Read paths: option and module GETs. */
  reads: string[];
}

async function buildWorkload(url: string): Promise<Workload> {
  const list = JSON.parse(readFileSync(path.join(repoRoot, "bench/relevance/queries.json"), "utf8")) as { q: string }[];
  const queries = list.map((q) => q.q);
  const reads: string[] = [];
  for (const ns of ["home-manager", "nixvim", "nix-darwin", "sops-nix", "disko"]) {
    const res = await fetch(`${url}/api/v1/namespaces/${ns}/modules?limit=40`);
    if (!res.ok) throw new Error(`GET modules of ${ns}: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { items: { path: string }[] };
    for (const m of page.items) {
      reads.push(`/api/v1/namespaces/${ns}/modules/${encodeURIComponent(m.path)}`);
      const mod = (await (await fetch(`${url}/api/v1/namespaces/${ns}/modules/${encodeURIComponent(m.path)}`)).json()) as { options: { name: string }[] };
      for (const o of mod.options.slice(0, 5)) reads.push(`/api/v1/namespaces/${ns}/options/${encodeURIComponent(o.name)}`);
    }
  }
  return { queries, reads };
}

let writeCounter = 0;
const RUN_ID = `${Date.now().toString(36)}`;

async function send(server: DevServer, w: Workload, rand: () => number, scheduledAt: number): Promise<Sample> {
  const roll = rand();
  const kind: Kind = roll < 0.7 ? "search" : roll < 0.95 ? "read" : "write";
  let url: string;
  let init: RequestInit = {};
  let modulePath: string | undefined;
  let text: string | undefined;
  if (kind === "search") {
    url = `${server.url}/api/v1/search?q=${encodeURIComponent(w.queries[Math.floor(rand() * w.queries.length)]!)}&limit=20`;
  } else if (kind === "read") {
    url = `${server.url}${w.reads[Math.floor(rand() * w.reads.length)]!}`;
  } else {
    const n = writeCounter++;
    modulePath = `load/${RUN_ID}/w${n}.nix`;
    text = `Load test write ${RUN_ID} #${n}.`;
    const name = `load.r${RUN_ID}.w${n}.enable`;
    url = `${server.url}/api/v1/namespaces/${SCRATCH}/modules/batch`;
    init = {
      method: "POST",
      headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
      body: JSON.stringify({ modules: [{ path: modulePath, options: { [name]: { type: "boolean", description: text, loc: name.split("."), declarations: [modulePath] } } }] }),
    };
  }
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
    await res.arrayBuffer();
    return {
      kind,
      status: res.status,
      ms: performance.now() - scheduledAt,
      path: modulePath,
      text,
      retryAfter: res.headers.get("retry-after"),
      rateLimitHeaders: res.headers.has("ratelimit-limit") && res.headers.has("ratelimit-remaining") && res.headers.has("ratelimit-reset"),
    };
  } catch {
    return { kind, status: 0, ms: performance.now() - scheduledAt, path: modulePath, text, rateLimitHeaders: false };
  }
}

/** One open-loop step: `rate` requests/s for `seconds`. */
async function step(server: DevServer, w: Workload, rate: number, seconds: number, seed: number): Promise<StepResult> {
  const rand = prng(seed);
  const total = Math.round(rate * seconds);
  const loadavgBefore = os.loadavg();
  const t0 = performance.now() + 50;
  const pending: Promise<Sample>[] = [];
  let next = 0;
  await new Promise<void>((done) => {
    const tick = () => {
      const now = performance.now();
      while (next < total && t0 + (next * 1000) / rate <= now) {
        pending.push(send(server, w, rand, t0 + (next * 1000) / rate));
        next++;
      }
      if (next >= total) return done();
      setTimeout(tick, Math.max(0, t0 + (next * 1000) / rate - performance.now()));
    };
    setTimeout(tick, 50);
  });
  const samples = await Promise.all(pending);
  const elapsed = (performance.now() - t0) / 1000;
  const byStatus: Record<string, number> = {};
  for (const s of samples) byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
  const of = (k: Kind) => summary(samples.filter((s) => s.kind === k).map((s) => s.ms));
  return {
    rate,
    seconds,
    sent: total,
    achievedRps: total / elapsed,
    byStatus,
    latency: summary(samples.map((s) => s.ms)),
    byKind: { search: of("search"), read: of("read"), write: of("write") },
    loadavgBefore: loadavgBefore.map((n) => Number(n.toFixed(2))),
    loadavgAfter: os.loadavg().map((n) => Number(n.toFixed(2))),
    samples,
  };
}

function row(r: StepResult): (string | number)[] {
  const statuses = Object.entries(r.byStatus).map(([s, n]) => `${s}:${n}`).join(" ");
  return [r.rate, r.sent, r.achievedRps.toFixed(1), statuses, ms(r.latency.p50), ms(r.latency.p95), ms(r.latency.p99), ms(r.latency.max), ms(r.byKind.search.p99), ms(r.byKind.read.p99), ms(r.byKind.write.p99), r.loadavgBefore[0]!.toFixed(2)];
}
const HEADER = ["rate/s", "sent", "achieved/s", "statuses", "p50", "p95", "p99", "max", "search p99", "read p99", "write p99", "load1 before"];

async function startSeeded(vars: Record<string, string>, persistDir?: string): Promise<DevServer> {
  const server = await startDevServer({ vars, persistDir });
  console.log(`wrangler dev pid ${server.pid} on ${server.url}, persist dir ${server.persistDir}, log ${server.logFile}`);
  return server;
}

/** Read every acknowledged write back, waiting out 429s (Retry-After) — the limiter is still on. */
async function verifyWrites(server: DevServer, writes: Sample[]): Promise<{ checked: number; lost: string[] }> {
  const lost: string[] = [];
  for (const wr of writes) {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${server.url}/api/v1/namespaces/${SCRATCH}/modules/${encodeURIComponent(wr.path!)}`);
      if (res.status === 429 && attempt < 20) {
        await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get("retry-after") ?? 1)));
        continue;
      }
      const body = res.ok ? ((await res.json()) as { options: { description: string }[] }) : null;
      if (!body || body.options[0]?.description !== wr.text) lost.push(`${wr.path} (${res.status})`);
      break;
    }
  }
  return { checked: writes.length, lost };
}

async function main(): Promise<void> {
  console.log(`bench:load — open loop, mix 70% search / 25% read / 5% write, steps of ${STEP_S} s, p99 budget ${P99_BUDGET_MS} ms`);
  console.log(`machine: ${JSON.stringify(machine())}`);
  const files = dataFiles();

  // ---- 1. ramp with limits out of the way ----
  let server = await startSeeded(UNLIMITED);
  console.log(`code: ${server.source}`);
  const persistDir = server.persistDir;
  const ramp: StepResult[] = [];
  let capacity = 0;
  let workload: Workload;
  try {
    const t0 = performance.now();
    const seeded = await seedAll(server, files);
    console.log(`seeded ${seeded.options} options in ${files.length} collections in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    workload = await buildWorkload(server.url);
    console.log(`workload: ${workload.queries.length} queries, ${workload.reads.length} read paths`);
    // Warm-up: one short untimed step.
    await step(server, workload, 10, 3, 99);
    console.log(`\nramp (${RAMP_LIMIT === "off" ? "every limiter layer off" : "limits far above the load"}; an error is any status but 2xx):`);
    console.log(table(HEADER, []).split("\n").slice(0, 2).join("\n"));
    for (const [i, rate] of RATES.entries()) {
      const r = await step(server, workload, rate, STEP_S, Number(process.env.LOAD_SEED ?? 1) + i);
      ramp.push(r);
      console.log(table(HEADER, [row(r)]).split("\n")[2]);
      const errors = r.sent - Object.entries(r.byStatus).filter(([s]) => s.startsWith("2")).reduce((n, [, c]) => n + c, 0);
      if (errors > 0 || r.latency.p99 >= P99_BUDGET_MS) break;
      capacity = rate;
    }
  } finally {
    await server.stop();
  }
  if (!capacity) throw new Error("no rate passed (zero errors and p99 < 250 ms); lower LOAD_RATES");
  console.log(`\ncapacity R = ${capacity} requests/s (highest step with zero errors and p99 < ${P99_BUDGET_MS} ms)`);

  // ---- 2. twice the capacity, with the per-IP limit at R/s ----
  const limited = { ...UNLIMITED, RATE_LIMIT_IP: `${capacity}/2` };
  server = await startSeeded(limited, persistDir);
  let overload: StepResult;
  let verification: { checked: number; lost: string[] };
  try {
    // The restarted objects load their indexes on first use: warm up untimed, then let the bucket refill.
    await step(server, workload, Math.min(10, capacity), 3, 99);
    await new Promise((r) => setTimeout(r, 3_000));
    overload = await step(server, workload, capacity * 2, STEP_S, 1_000);
    console.log(`\noverload at 2R = ${capacity * 2} requests/s, RATE_LIMIT_IP=${limited.RATE_LIMIT_IP}:`);
    console.log(table(HEADER, [row(overload)]));
    const refused = overload.samples.filter((s) => s.status === 429);
    const withRetryAfter = refused.filter((s) => s.retryAfter && Number(s.retryAfter) >= 1).length;
    const server5xx = overload.samples.filter((s) => s.status >= 500 || s.status === 0).length;
    const missingHeaders = overload.samples.filter((s) => s.status !== 0 && !s.rateLimitHeaders).length;
    const acknowledged = overload.samples.filter((s) => s.kind === "write" && s.status >= 200 && s.status < 300);
    verification = await verifyWrites(server, acknowledged);
    const ok = summary(overload.samples.filter((s) => s.status >= 200 && s.status < 300).map((s) => s.ms));
    const no = summary(refused.map((s) => s.ms));
    console.log(table(["latency (ms)", "n", "p50", "p95", "p99", "max"], [
      ["2xx answers", ok.n, ms(ok.p50), ms(ok.p95), ms(ok.p99), ms(ok.max)],
      ["429 answers", no.n, ms(no.p50), ms(no.p95), ms(no.p99), ms(no.max)],
    ]));
    console.log(`429: ${refused.length} (${withRetryAfter} with Retry-After ≥ 1 s); 5xx or network errors: ${server5xx}; responses without RateLimit-* headers: ${missingHeaders}`);
    console.log(`writes: ${overload.samples.filter((s) => s.kind === "write").length} sent, ${acknowledged.length} answered 2xx, ${verification.checked - verification.lost.length} of them read back, lost: ${verification.lost.length}${verification.lost.length ? ` (${verification.lost.slice(0, 5).join(", ")})` : ""}`);
  } finally {
    await server.stop();
  }
  rmSync(persistDir, { recursive: true, force: true });
  const file = saveResult("load", {
    machine: machine(),
    stepSeconds: STEP_S,
    capacity,
    ramp: ramp.map(({ samples: _s, ...r }) => r),
    overload: (({ samples: _s, ...r }) => r)(overload),
    verification,
  });
  console.log(`\nresults: ${file}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});

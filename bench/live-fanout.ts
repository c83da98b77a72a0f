/**
 * `npm run bench:live`: fan-out of one change to many WebSocket subscribers of one live room.
 *
 * Starts `wrangler dev` (bench/lib/devserver.ts, on src/cli/processes.ts), ingests the real
 * sops-nix collection, opens `BENCH_SUBSCRIBERS` (default 1,000) subscribers of `ns:sops-nix`
 * with the typed client (src/shared/liveClient.ts, partysocket over Node's WebSocket), waits
 * until every one is `ready`, then `BENCH_ROUNDS` times (default 5) edits one option's
 * description (`PATCH`, which commits one module version) and measures, per subscriber, the time
 * from sending the edit to receiving its event, and from the version's commit time (`at`) to
 * receiving it (the fan-out alone). Prints p50/p95/p99/max per round and overall,
 * and checks that every subscriber got every event exactly once.
 *
 * Env: BENCH_SUBSCRIBERS, BENCH_ROUNDS, BENCH_FORMAT (json|msgpack), NIXDOCS_DATA_DIR.
 * @module
 */
import { startDevServer } from "./lib/devserver.ts";
import { dataFiles } from "./lib/paths.ts";
import { ingestOne } from "./lib/seed.ts";
import { machine, ms, saveResult, summary, table } from "./lib/stats.ts";
import { LiveClient } from "../src/shared/liveClient.ts";
import type { FrameFormat, LiveEvent } from "../src/shared/live.ts";

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const FORMAT = (process.env.BENCH_FORMAT ?? "json") as FrameFormat;
const NAMESPACE = "sops-nix";
const OPTION = "sops.age.keyFile";
/** Subscribers connecting at once while the room fills. */
const CONNECT_CONCURRENCY = 50;

interface Subscriber {
  client: LiveClient;
  /** seq → receive time (performance.now()). */
  received: Map<number, number>;
  /** seq → ms from the version's commit time (`at`, the server's clock: the same machine) to receipt. */
  sinceCommit: Map<number, number>;
  duplicates: number;
}

function waitUntil(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (check()) return resolve();
      if (performance.now() - started > timeoutMs) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      setTimeout(tick, 2);
    };
    tick();
  });
}

async function connect(host: string): Promise<Subscriber> {
  const client = new LiveClient({ host, protocol: "ws", room: { kind: "namespace", namespace: NAMESPACE }, format: FORMAT, maxRetries: 0 });
  const sub: Subscriber = { client, received: new Map(), sinceCommit: new Map(), duplicates: 0 };
  let ready = false;
  client.onReady = () => (ready = true);
  client.onEvent = (e: LiveEvent) => {
    const now = performance.now();
    const wall = Date.now();
    if (sub.received.has(e.seq)) sub.duplicates++;
    else {
      sub.received.set(e.seq, now);
      sub.sinceCommit.set(e.seq, wall - e.at);
    }
  };
  await waitUntil("a subscriber to be ready", () => ready, 60_000);
  return sub;
}

async function main(): Promise<void> {
  const file = dataFiles().find((f) => f.namespace === NAMESPACE);
  if (!file) throw new Error(`no ${NAMESPACE}-options.json.gz in the data directory`);
  console.log(`bench:live — ${SUBSCRIBERS} subscribers of one room, ${ROUNDS} changes, ${FORMAT} frames`);
  console.log(`machine: ${JSON.stringify(machine())}`);
  const server = await startDevServer();
  console.log(`wrangler dev pid ${server.pid} on ${server.url}, log ${server.logFile}`);
  console.log(`code: ${server.source}`);
  const subs: Subscriber[] = [];
  try {
    await ingestOne(server, file);
    const host = new URL(server.url).host;
    const tConnect = performance.now();
    while (subs.length < SUBSCRIBERS) {
      const n = Math.min(CONNECT_CONCURRENCY, SUBSCRIBERS - subs.length);
      subs.push(...(await Promise.all(Array.from({ length: n }, () => connect(host)))));
    }
    const connectMs = performance.now() - tConnect;
    console.log(`${subs.length} subscribers ready in ${(connectMs / 1000).toFixed(1)} s`);

    const rounds: { seq: number; editMs: number; delivery: number[]; fromCommit: number[] }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = performance.now();
      const res = await fetch(`${server.url}/api/v1/namespaces/${NAMESPACE}/options/${encodeURIComponent(OPTION)}`, {
        method: "PATCH",
        headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
        body: JSON.stringify({ description: `The age key file (bench:live round ${round}, ${Date.now()}).` }),
      });
      const editMs = performance.now() - t0;
      if (!res.ok) throw new Error(`PATCH answered ${res.status}: ${await res.text()}`);
      const { version } = (await res.json()) as { version: number };
      // The event's seq is not in the answer; it is the one seq every subscriber gets this round.
      await waitUntil(`round ${round}'s event at every subscriber`, () => subs.every((s) => s.received.size === round + 1), 60_000);
      const seq = [...subs[0]!.received.keys()][round]!;
      const delivery = subs.map((s) => s.received.get(seq)! - t0);
      rounds.push({ seq, editMs, delivery, fromCommit: subs.map((s) => s.sinceCommit.get(seq)!) });
      console.log(`round ${round}: version ${version}, seq ${seq}, PATCH answered in ${ms(editMs)} ms, last subscriber at ${ms(Math.max(...delivery))} ms`);
      await new Promise((r) => setTimeout(r, 500));
    }

    const duplicates = subs.reduce((n, s) => n + s.duplicates, 0);
    const missing = subs.filter((s) => s.received.size !== ROUNDS).length;
    type Round = (typeof rounds)[number];
    const report = (title: string, pick: (r: Round) => number[]) => {
      const row = (label: string, values: number[]) => {
        const x = summary(values);
        return [label, x.n, ms(x.p50), ms(x.p95), ms(x.p99), ms(x.max)];
      };
      console.log("");
      console.log(table([title, "n", "p50", "p95", "p99", "max"], [...rounds.map((r, i) => row(`round ${i} (seq ${r.seq})`, pick(r))), row("all rounds", rounds.flatMap(pick))]));
      return summary(rounds.flatMap(pick));
    };
    const all = report("delivery (ms from sending the edit)", (r) => r.delivery);
    const allFromCommit = report("delivery (ms from the version's commit, at)", (r) => r.fromCommit);
    console.log(`duplicates: ${duplicates}, subscribers missing an event: ${missing}`);
    const memory = await server.memory.report();
    const saved = saveResult("live-fanout", { subscribers: SUBSCRIBERS, rounds: ROUNDS, format: FORMAT, connectMs, all, allFromCommit, perRound: rounds.map((r) => ({ seq: r.seq, editMs: r.editMs, fromEdit: summary(r.delivery), fromCommit: summary(r.fromCommit) })), duplicates, missing, memory, machine: machine(), source: server.source });
    console.log(`saved ${saved}`);
    if (duplicates || missing) process.exitCode = 1;
  } finally {
    for (const s of subs) s.client.close();
    await server.dispose();
  }
}

await main();

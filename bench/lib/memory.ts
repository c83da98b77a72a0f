/**
 * Peak memory of a process tree, sampled from /proc: every interval, the descendants of the root
 * (workerd and esbuild children of wrangler included) are found through /proc/<pid>/stat, and
 * their VmRSS summed. Each process's own VmHWM (kernel-tracked peak RSS) is kept as well, since
 * a short spike between two samples shows up there even when the sum misses it.
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

export interface ProcessPeak {
  pid: number;
  comm: string;
  /** Largest VmHWM seen, KiB. */
  hwmKiB: number;
  /** Largest VmRSS seen, KiB. */
  rssKiB: number;
}

export interface MemoryReport {
  samples: number;
  /** Largest sampled sum of VmRSS over the tree, KiB. */
  peakTreeRssKiB: number;
  /** Sum of each process's VmHWM: an upper bound of the tree's peak, KiB. */
  sumHwmKiB: number;
  processes: ProcessPeak[];
}

function readStatus(pid: number): { comm: string; rss: number; hwm: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
    const comm = /^Name:\s+(.*)$/m.exec(text)?.[1] ?? "?";
    return { comm, rss: field("VmRSS"), hwm: field("VmHWM") };
  } catch {
    return null;
  }
}

/** The root and all of its descendants that are alive now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    // comm may contain spaces and parentheses: the ppid is the 2nd field after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ppid = Number(rest[1]);
    let list = children.get(ppid);
    if (!list) children.set(ppid, (list = []));
    list.push(Number(entry));
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return out;
}

/** The sampling itself, synchronous; runs inside the worker below. */
export class TreeSampler {
  readonly #root: number;
  #samples = 0;
  #peakTree = 0;
  readonly #peaks = new Map<number, ProcessPeak>();

  constructor(root: number) {
    this.#root = root;
  }

  reset(): void {
    this.#samples = 0;
    this.#peakTree = 0;
    this.#peaks.clear();
  }

  sample(): void {
    let sum = 0;
    for (const pid of processTree(this.#root)) {
      const s = readStatus(pid);
      if (!s) continue;
      sum += s.rss;
      const p = this.#peaks.get(pid);
      if (!p) this.#peaks.set(pid, { pid, comm: s.comm, hwmKiB: s.hwm, rssKiB: s.rss });
      else {
        p.hwmKiB = Math.max(p.hwmKiB, s.hwm);
        p.rssKiB = Math.max(p.rssKiB, s.rss);
      }
    }
    this.#samples++;
    this.#peakTree = Math.max(this.#peakTree, sum);
  }

  report(): MemoryReport {
    const processes = [...this.#peaks.values()].sort((a, b) => b.hwmKiB - a.hwmKiB);
    return {
      samples: this.#samples,
      peakTreeRssKiB: this.#peakTree,
      sumHwmKiB: processes.reduce((n, p) => n + p.hwmKiB, 0),
      processes,
    };
  }
}

type Request = { id: number; op: "report" | "reset" | "sample" | "stop" };

/**
 * Samples in a worker thread, so the timer keeps its 200 ms pace while the benchmark's own
 * thread is busy (reading and validating files, JSON work).
 */
export class MemorySampler {
  readonly #worker: Worker;
  #next = 0;
  readonly #waiting = new Map<number, (r: MemoryReport) => void>();
  #last: MemoryReport = { samples: 0, peakTreeRssKiB: 0, sumHwmKiB: 0, processes: [] };
  #stopped = false;

  constructor(root: number, intervalMs = 200) {
    this.#worker = new Worker(new URL(import.meta.url), { workerData: { root, intervalMs } });
    this.#worker.unref();
    this.#worker.on("message", (m: { id: number; report: MemoryReport }) => {
      this.#last = m.report;
      this.#waiting.get(m.id)?.(m.report);
      this.#waiting.delete(m.id);
    });
  }

  #ask(op: Request["op"]): Promise<MemoryReport> {
    if (this.#stopped) return Promise.resolve(this.#last);
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#worker.postMessage({ id, op } satisfies Request);
    });
  }

  /** Peaks so far (takes one more sample first). */
  report(): Promise<MemoryReport> {
    return this.#ask("report");
  }

  /** Forget what was seen so far (e.g. after seeding, to measure the query phase alone). */
  async reset(): Promise<void> {
    await this.#ask("reset");
  }

  /** Takes a last sample, ends the worker, and returns the final peaks. */
  async stop(): Promise<MemoryReport> {
    if (this.#stopped) return this.#last;
    const last = await this.#ask("stop");
    this.#stopped = true;
    await this.#worker.terminate();
    return last;
  }
}

if (!isMainThread && parentPort && (workerData as { root?: number })?.root) {
  const { root, intervalMs } = workerData as { root: number; intervalMs: number };
  const sampler = new TreeSampler(root);
  const port = parentPort;
  sampler.sample();
  const timer = setInterval(() => sampler.sample(), intervalMs);
  port.on("message", (m: Request) => {
    if (m.op === "reset") sampler.reset();
    sampler.sample();
    port.postMessage({ id: m.id, report: sampler.report() });
    if (m.op === "stop") {
      clearInterval(timer);
      port.close();
    }
  });
}

export function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

export function formatMemory(r: MemoryReport): string {
  const lines = [
    `peak RSS of the dev server tree (sampled sum, ${r.samples} samples): ${mib(r.peakTreeRssKiB)} MiB`,
    `sum of per-process VmHWM (peak since each process started; upper bound): ${mib(r.sumHwmKiB)} MiB`,
  ];
  for (const p of r.processes.slice(0, 6)) lines.push(`  ${p.comm.padEnd(10)} pid ${String(p.pid).padEnd(7)} VmHWM ${mib(p.hwmKiB)} MiB, max VmRSS ${mib(p.rssKiB)} MiB`);
  return lines.join("\n");
}

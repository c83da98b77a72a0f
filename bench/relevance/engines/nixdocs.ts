/**
 * nixdocs itself, through its HTTP API: a `wrangler dev` started with the benchmarks' shared helper
 * (bench/lib/devserver.ts: snapshot of the working tree, temp store, process group killed on exit),
 * seeded with the same files through src/cli/ingest-lib.ts, asked `GET /api/v1/search`.
 * @module
 */
import { startDevServer, type DevServer } from "../../lib/devserver.ts";
import type { DataFile } from "../../lib/paths.ts";
import { seedAll } from "../../lib/seed.ts";
import { docId } from "../docs.ts";
import type { Engine } from "./types.ts";

export interface NixdocsEngine extends Engine {
  /** What code the server runs (commit, uncommitted files), once built. */
  source(): string;
  /** Answers other than 200. */
  readonly errors: { q: string; status: number; body: string }[];
  /** Parts of build(): starting wrangler dev, seeding over HTTP. */
  readonly timings: { startMs: number; seedMs: number };
}

/** Its build() ingests `files` (the documents themselves come from the same files). */
export function nixdocsEngine(files: readonly DataFile[]): NixdocsEngine {
  let server: DevServer | undefined;
  const errors: { q: string; status: number; body: string }[] = [];
  const timings = { startMs: 0, seedMs: 0 };
  return {
    name: "nixdocs",
    description: "nixdocs HTTP API on local wrangler dev, GET /api/v1/search?q=&namespace=&limit=",
    errors,
    timings,
    source: () => server?.source ?? "not started",
    async build() {
      const t0 = performance.now();
      server = await startDevServer();
      timings.startMs = performance.now() - t0;
      console.error(`  nixdocs: wrangler dev pid ${server.pid} on ${server.url}, ${server.source}`);
      const t1 = performance.now();
      await seedAll(server, files);
      timings.seedMs = performance.now() - t1;
    },
    async search(q, namespace, limit) {
      if (!server) throw new Error("nixdocs: build() first");
      const params = new URLSearchParams({ q, limit: String(limit) });
      if (namespace) params.set("namespace", namespace);
      const res = await fetch(`${server.url}/api/v1/search?${params}`, { signal: AbortSignal.timeout(30_000) });
      const text = await res.text();
      if (!res.ok) {
        errors.push({ q, status: res.status, body: text.slice(0, 300) });
        return [];
      }
      const body = JSON.parse(text) as { hits: { namespace: string; name: string }[] };
      return body.hits.slice(0, limit).map((h) => docId(h.namespace, h.name));
    },
    async close() {
      if (!server) return;
      const s = server;
      server = undefined;
      await s.dispose();
    },
  };
}

/** Seeding a dev server with the real collections through src/cli/ingest-lib.ts. @module */
import { describeError, ingestFile, type IngestReport } from "../../src/cli/ingest-lib.ts";
import type { DevServer } from "./devserver.ts";
import type { DataFile } from "./paths.ts";

/** Ingest one file over HTTP (`replace` mode, as `npm run ingest` does for a full collection). */
export async function ingestOne(server: DevServer, f: DataFile): Promise<IngestReport> {
  try {
    return await ingestFile(f.file, {
      namespace: f.namespace,
      url: server.url,
      token: server.token,
      mode: "replace",
      progress: "none",
      log: (line) => console.error(`  [ingest ${f.namespace}] ${line}`),
    });
  } catch (err) {
    throw new Error(`ingest of ${f.file} failed:\n${describeError(err)}`);
  }
}

export async function seedAll(server: DevServer, files: readonly DataFile[]): Promise<{ options: number; reports: IngestReport[] }> {
  const reports: IngestReport[] = [];
  for (const f of files) reports.push(await ingestOne(server, f));
  return { options: reports.reduce((n, r) => n + r.options, 0), reports };
}

/** Live options per namespace, from `GET /api/v1/namespaces`. */
export async function seededCounts(url: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/api/v1/namespaces`);
  if (!res.ok) throw new Error(`GET /api/v1/namespaces: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { items: { namespace: string; options: number }[] };
  return new Map(body.items.map((i) => [i.namespace, i.options]));
}

/** Shared helpers of the workerd test suite. */
import { env, exports } from "cloudflare:workers";

export const ADMIN = { authorization: "Bearer test-admin-token" };

/** Read a real data file from ../shared/data, failing loudly (never skipping) when it is missing. */
export async function dataFile(name: string): Promise<Record<string, unknown>> {
  const res = await env.TEST_DATA.fetch(`http://data/${name}`);
  if (!res.ok) throw new Error(`real test data unavailable: ${await res.text()}`);
  const stream = res.body!.pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text()) as Record<string, unknown>;
}

export function api(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(`http://nixdocs.test${path}`, init));
}

export async function json<T = any>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

export function postBatch(namespace: string, body: unknown, query = ""): Promise<Response> {
  return api(`/api/v1/namespaces/${namespace}/modules/batch${query}`, {
    method: "POST",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

export function enc(s: string): string {
  return encodeURIComponent(s);
}

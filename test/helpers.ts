/** Shared helpers of the workerd test suite. */
import { env, exports } from "cloudflare:workers";
import { SignJWT } from "jose";

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
  return postBatchAs(ADMIN, namespace, body, query);
}

export function enc(s: string): string {
  return encodeURIComponent(s);
}

/** Create an API key through the admin API (as the bootstrap admin); returns the key and its record. */
export async function createKey(body: Record<string, unknown>, headers: Record<string, string> = ADMIN): Promise<{ key: string; id: string; [field: string]: any }> {
  const res = await api("/api/v1/admin/keys", { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) });
  if (res.status !== 201) throw new Error(`creating a key answered ${res.status}: ${await res.text()}`);
  return json(res);
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** POST an ingest batch with the given credentials (no default admin token). */
export function postBatchAs(headers: Record<string, string>, namespace: string, body: unknown, query = ""): Promise<Response> {
  return api(`/api/v1/namespaces/${namespace}/modules/batch${query}`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Totals of every namespace, to show that a refused write changed nothing. */
export async function storeTotals(): Promise<unknown> {
  const stats = await json(await api("/api/v1/stats"));
  return {
    namespaces: stats.namespaces,
    modules: stats.modules,
    options: stats.options,
    versions: stats.versions,
    byNamespace: stats.byNamespace.map((n: any) => [n.namespace, n.modules, n.options, n.versions, n.updatedAt]),
  };
}

// HS256 bearer tokens as the test Worker accepts them (JWT_* vars in vitest.config.ts).
export const JWT_SECRET = new TextEncoder().encode("test-jwt-secret-0123456789abcdef0123456789abcdef");
export const ISSUER = "https://issuer.nixdocs.test";
export const AUDIENCE = "nixdocs-api";
export const now = (): number => Math.floor(Date.now() / 1000);

/** Sign `claims` as an HS256 bearer token, issued now (or at `iat`) and valid for ten minutes (or until `exp`). */
export function hs256(claims: Record<string, unknown>, options: { secret?: Uint8Array; issuer?: string; audience?: string; exp?: number; iat?: number } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt(options.iat)
    .setExpirationTime(options.exp ?? now() + 600)
    .sign(options.secret ?? JWT_SECRET);
}

/**
 * Persistence across restarts of `npm start` (src/cli/start.ts): seeding from SEED_DIR, a clean
 * stop (SIGTERM), a restart that seeds nothing and serves the same data, a crash (SIGKILL of the
 * whole process group) after an acknowledged write, which must survive too, API keys and audit
 * entries surviving a restart, and the completion of a seed that was cut short.
 *
 * Every server runs in its own process group (start.ts → wrangler → workerd), so the test can
 * check that a stop leaves no process behind and can always clean up, even when a step fails.
 */
import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ingestFile, parseDevVars } from "../../src/cli/ingest-lib.ts";
import { freePort, killAllGroups, killGroup, sleep, spawnGroup, waitGroupGone, type ExitStatus, type GroupProcess } from "../../src/cli/processes.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DATA_DIR = process.env.NIXDOCS_DATA_DIR ?? path.resolve(ROOT, "../shared/data");
const FILES = ["agenix-options.json.gz", "sops-nix-options.json.gz"] as const;

/** start.ts is TypeScript run by Node's type stripping: Node 22 is needed, not whatever runs vitest. */
function nodeBinary(): string {
  const major = Number(process.versions.node.split(".")[0]);
  if (major >= 22) return process.execPath;
  const local = path.join(ROOT, "node_modules/.bin/node");
  if (existsSync(local)) return local;
  throw new Error(`Node 22 is needed to run src/cli/start.ts (this is ${process.version} and node_modules/.bin/node is missing)`);
}

function readData(file: string): Record<string, Record<string, unknown>> {
  return JSON.parse(gunzipSync(readFileSync(path.join(DATA_DIR, file))).toString("utf8"));
}

interface Server extends GroupProcess {
  base: string;
}

function startServer(port: number, env: Record<string, string>): Server {
  // Own process group (start.ts, wrangler and workerd), killed at the latest in afterAll.
  const group = spawnGroup(nodeBinary(), ["src/cli/start.ts"], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), WRANGLER_SEND_METRICS: "false", FORCE_COLOR: "0" },
  });
  return { ...group, base: `http://127.0.0.1:${port}` };
}

/** Wait until the output matches `pattern`; fail early on `failure` or when the process exits. */
async function waitForOutput(server: Server, pattern: RegExp, timeoutMs = 120_000, failure = /\[nixdocs\] (error|seeding failed)/): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void server.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    const out = server.output();
    if (pattern.test(out)) return;
    if (failure.test(out)) throw new Error(`server reported a failure while waiting for ${pattern}:\n${out}`);
    if (exited) throw new Error(`server exited while waiting for ${pattern}:\n${out}`);
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${pattern}; output so far:\n${server.output()}`);
}

/** SIGTERM start.ts alone: it must stop wrangler, exit, and leave no process of its group. */
async function stopGracefully(server: Server): Promise<ExitStatus> {
  server.child.kill("SIGTERM");
  const result = await Promise.race([server.exited, sleep(30_000).then(() => null)]);
  if (!result) {
    killGroup(server.pgid, "SIGKILL");
    throw new Error(`start.ts did not exit within 30 s of SIGTERM; output:\n${server.output()}`);
  }
  const gone = await waitGroupGone(server.pgid, 10_000);
  if (!gone) {
    killGroup(server.pgid, "SIGKILL");
    throw new Error(`processes of the group survived start.ts (wrangler/workerd left behind); output:\n${server.output()}`);
  }
  return result;
}

async function getJson<T = any>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

/** What every restart must serve: counts equal to the files' entries, options by exact name. */
async function expectSeededData(base: string, expected: Map<string, Record<string, Record<string, unknown>>>): Promise<void> {
  const list = await getJson<{ items: { namespace: string; options: number; modules: number }[] }>(`${base}/api/v1/namespaces`);
  expect(list.status).toBe(200);
  const byName = new Map(list.body.items.map((i) => [i.namespace, i]));
  for (const [ns, data] of expected) {
    expect(byName.get(ns)?.options, `options of ${ns}`).toBe(Object.keys(data).length);
  }
  const agenix = expected.get("agenix")!;
  const name = "age.secrets.<name>.owner";
  expect(agenix[name], `${name} in the agenix data`).toBeDefined();
  const opt = await getJson(`${base}/api/v1/namespaces/agenix/options/${encodeURIComponent(name)}`);
  expect(opt.status).toBe(200);
  expect(opt.body).toMatchObject({ namespace: "agenix", name, loc: ["age", "secrets", "<name>", "owner"], type: agenix[name]!.type, module: "modules/age.nix" });

  const sops = expected.get("sops-nix")!;
  const sopsName = "sops.secrets.<name>.owner";
  expect(sops[sopsName], `${sopsName} in the sops-nix data`).toBeDefined();
  const sopsOpt = await getJson(`${base}/api/v1/namespaces/sops-nix/options/${encodeURIComponent(sopsName)}`);
  expect(sopsOpt.status).toBe(200);
  expect(sopsOpt.body).toMatchObject({ namespace: "sops-nix", name: sopsName, description: sops[sopsName]!.description });
}

describe("npm start keeps its data across restarts", () => {
  let seedDir = "";
  let persistDir = "";
  let tmpDir = "";
  const expected = new Map<string, Record<string, Record<string, unknown>>>();

  beforeAll(async () => {
    const missing = FILES.filter((f) => !existsSync(path.join(DATA_DIR, f)));
    if (missing.length) {
      throw new Error(`real test data missing in ${DATA_DIR}: ${missing.join(", ")} (set NIXDOCS_DATA_DIR or put ../shared/data beside the repository)`);
    }
    seedDir = await mkdtemp(path.join(os.tmpdir(), "nixdocs-e2e-seed-"));
    persistDir = await mkdtemp(path.join(os.tmpdir(), "nixdocs-e2e-state-"));
    tmpDir = await mkdtemp(path.join(os.tmpdir(), "nixdocs-e2e-tmp-"));
    for (const f of FILES) {
      await copyFile(path.join(DATA_DIR, f), path.join(seedDir, f));
      expected.set(f.replace(/-options\.json\.gz$/, ""), readData(f));
    }
  });

  afterAll(async () => {
    await killAllGroups();
    for (const dir of [seedDir, persistDir, tmpDir]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("seeds an empty store, serves the data, and stops cleanly on SIGTERM", async () => {
    const server = startServer(await freePort(), { SEED_DIR: seedDir, NIXDOCS_PERSIST_DIR: persistDir });
    await waitForOutput(server, /seeding done: 2 namespaces/);
    expect(server.output()).toMatch(/seeding 2 namespaces from .*: agenix, sops-nix/);
    await expectSeededData(server.base, expected);
    // The web UI is served as static assets in front of the Worker.
    const page = await fetch(`${server.base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toContain('<script src="/app.js"');
    // …under a content security policy: only its own script, styles and API (public/_headers).
    expect(page.headers.get("content-security-policy")).toMatch(/script-src 'self'.*frame-ancestors 'none'/);
    expect((await fetch(`${server.base}/app.js`)).status).toBe(200);
    const result = await stopGracefully(server);
    expect(result.code, server.output()).toBe(0);
  });

  it("restarts on the same directory without seeding and serves the same data", async () => {
    const server = startServer(await freePort(), { SEED_DIR: seedDir, NIXDOCS_PERSIST_DIR: persistDir });
    await waitForOutput(server, /store already holds 2 namespaces; nothing to seed/);
    expect(server.output()).not.toMatch(/seeding \d+ namespace/);
    await expectSeededData(server.base, expected);
    await stopGracefully(server);
  });

  it("keeps an acknowledged write when the whole process group is SIGKILLed", async () => {
    const port = await freePort();
    const server = startServer(port, { SEED_DIR: seedDir, NIXDOCS_PERSIST_DIR: persistDir });
    await waitForOutput(server, /nothing to seed/);

    // A write the server acknowledged just before the crash.
    const changed = structuredClone(expected.get("agenix")!);
    const name = "age.secrets.<name>.owner";
    changed[name]!.description = "Owner of the decrypted secret (changed before a crash).";
    const file = path.join(tmpDir, "agenix-options.json");
    await writeFile(file, JSON.stringify(changed));
    const token = parseDevVars(readFileSync(path.join(ROOT, ".dev.vars"), "utf8")).ADMIN_TOKEN;
    const report = await ingestFile(file, { url: server.base, token, mode: "replace", progress: "none" });
    expect(report.summary.options).toMatchObject({ added: 0, changed: 1, removed: 0 });

    killGroup(server.pgid, "SIGKILL");
    await server.exited;
    expect(await waitGroupGone(server.pgid, 10_000), "processes survived SIGKILL of the group").toBe(true);

    const again = startServer(await freePort(), { SEED_DIR: seedDir, NIXDOCS_PERSIST_DIR: persistDir });
    await waitForOutput(again, /nothing to seed/);
    const opt = await getJson(`${again.base}/api/v1/namespaces/agenix/options/${encodeURIComponent(name)}`);
    expect(opt.status).toBe(200);
    expect(opt.body.description).toBe(changed[name]!.description);
    const list = await getJson<{ items: { namespace: string; options: number }[] }>(`${again.base}/api/v1/namespaces`);
    expect(Object.fromEntries(list.body.items.map((i) => [i.namespace, i.options]))).toEqual({ agenix: Object.keys(changed).length, "sops-nix": Object.keys(expected.get("sops-nix")!).length });
    await stopGracefully(again);
  });

  it("keeps API keys and the audit log across a restart, accepts JWTs locally, and the ingest CLI writes with a scoped key", async () => {
    const adminToken = parseDevVars(readFileSync(path.join(ROOT, ".dev.vars"), "utf8")).ADMIN_TOKEN!;
    const admin = { authorization: `Bearer ${adminToken}` };
    const first = startServer(await freePort(), { SEED_DIR: seedDir, NIXDOCS_PERSIST_DIR: persistDir });
    await waitForOutput(first, /nothing to seed/);
    const created = await fetch(`${first.base}/api/v1/admin/keys`, {
      method: "POST",
      headers: { ...admin, "content-type": "application/json" },
      body: JSON.stringify({ name: "e2e sops-nix writer", role: "write", namespaces: ["sops-nix"] }),
    });
    expect(created.status).toBe(201);
    const { id, key } = (await created.json()) as { id: string; key: string };
    await stopGracefully(first);

    const server = startServer(await freePort(), { SEED_DIR: seedDir, NIXDOCS_PERSIST_DIR: persistDir });
    await waitForOutput(server, /nothing to seed/);
    // The same data again through the CLI with the key: accepted, nothing changes.
    const report = await ingestFile(path.join(seedDir, "sops-nix-options.json.gz"), { url: server.base, token: key, progress: "none" });
    expect(report.summary.options).toMatchObject({ added: 0, changed: 0, removed: 0 });
    // Outside its scope the key is refused, and the CLI says so instead of retrying.
    await expect(ingestFile(path.join(seedDir, "agenix-options.json.gz"), { url: server.base, token: key, progress: "none" })).rejects.toThrow(/403/);

    // A JWT signed with the JWT_SECRET that npm start wrote to .dev.vars is accepted: wrangler dev
    // loads that secret (it is listed as required), not only ADMIN_TOKEN.
    const jwtSecret = parseDevVars(readFileSync(path.join(ROOT, ".dev.vars"), "utf8")).JWT_SECRET!;
    expect(jwtSecret).toBeTruthy();
    const jwt = await new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256" }).setSubject("e2e").setExpirationTime("5m").sign(new TextEncoder().encode(jwtSecret));
    expect((await fetch(`${server.base}/api/v1/admin/keys`, { headers: { authorization: `Bearer ${jwt}` } })).status).toBe(200);

    const keys = (await (await fetch(`${server.base}/api/v1/admin/keys`, { headers: admin })).json()) as { items: { id: string; lastUsedAt: number | null }[] };
    expect(keys.items.find((k) => k.id === id)?.lastUsedAt).toBeGreaterThan(0);
    const audit = (await (await fetch(`${server.base}/api/v1/admin/audit?actor=${id}`, { headers: admin })).json()) as { items: { action: string; namespace: string; status: number }[] };
    expect(audit.items.map((e) => [e.action, e.namespace, e.status])).toEqual([
      ["ingest", "agenix", 403],
      ...Array.from({ length: report.batches }, () => ["ingest", "sops-nix", 200]),
    ]);
    await stopGracefully(server);
  });

  it("finishes a seed that the journal says was cut short", async () => {
    // Deterministic stand-in for a crash in the middle of seeding sops-nix.
    const journalFile = path.join(persistDir, "nixdocs-seed.json");
    const journal = JSON.parse(readFileSync(journalFile, "utf8"));
    expect(journal["sops-nix"]?.state).toBe("done");
    journal["sops-nix"].state = "started";
    await writeFile(journalFile, JSON.stringify(journal));

    const server = startServer(await freePort(), { SEED_DIR: seedDir, NIXDOCS_PERSIST_DIR: persistDir });
    await waitForOutput(server, /seeding done: 1 namespace,/);
    expect(server.output()).toMatch(/the seed of sops-nix was interrupted/);
    expect(server.output()).toMatch(/seeding 1 namespace from .*: sops-nix/);
    expect(JSON.parse(readFileSync(journalFile, "utf8"))["sops-nix"].state).toBe("done");
    const list = await getJson<{ items: { namespace: string; options: number }[] }>(`${server.base}/api/v1/namespaces`);
    expect(list.body.items.find((i) => i.namespace === "sops-nix")?.options).toBe(Object.keys(expected.get("sops-nix")!).length);
    await stopGracefully(server);
  });

  it("refuses a SEED_DIR that does not exist, before starting anything", async () => {
    const server = startServer(await freePort(), { SEED_DIR: path.join(tmpDir, "no-such-dir"), NIXDOCS_PERSIST_DIR: persistDir });
    const result = await Promise.race([server.exited, sleep(30_000).then(() => null)]);
    expect(result, server.output()).toEqual({ code: 1, signal: null });
    expect(server.output()).toMatch(/SEED_DIR .*no-such-dir does not exist/);
    expect(await waitGroupGone(server.pgid, 5_000)).toBe(true);
  });
});

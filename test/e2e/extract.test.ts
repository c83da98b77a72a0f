/**
 * extract → upload → search in one command, against a real `npm start`: `npm run extract` evaluates
 * the fixture collection (test/nix/fixtures/collection) with Nix, uploads it with `--upload`, and
 * the options are then found by the search API, module records with their imports and metadata.
 *
 * Needs Nix and Nixpkgs' lib (NIXPKGS_LIB or <nixpkgs/lib>); skipped, saying why, without lib.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDevVars } from "../../src/cli/ingest-lib.ts";
import { freePort, killAllGroups, killGroup, sleep, spawnGroup, type GroupProcess } from "../../src/cli/processes.ts";
import { libForTests, ROOT } from "../nix/helpers.ts";

const { lib, reason } = await libForTests();
if (!lib) console.warn(`[e2e extract] skipped: ${reason}`);

function nodeBinary(): string {
  return Number(process.versions.node.split(".")[0]) >= 22 ? process.execPath : path.join(ROOT, "node_modules/.bin/node");
}

describe.skipIf(!lib)("npm run extract --upload against npm start", () => {
  let server: GroupProcess | undefined;
  let base = "";
  let persistDir = "";

  beforeAll(async () => {
    persistDir = await mkdtemp(path.join(os.tmpdir(), "nixdocs-e2e-extract-"));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = spawnGroup(nodeBinary(), ["src/cli/start.ts"], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), NIXDOCS_PERSIST_DIR: persistDir, SEED_DIR: "", WRANGLER_SEND_METRICS: "false", FORCE_COLOR: "0" },
    });
    const deadline = Date.now() + 120_000;
    while (!/ready on/.test(server.output())) {
      if (Date.now() > deadline) throw new Error(`npm start did not become ready:\n${server.output()}`);
      await sleep(200);
    }
  });

  afterAll(async () => {
    if (server) killGroup(server.pgid, "SIGTERM");
    await sleep(500);
    killAllGroups();
    if (persistDir) await rm(persistDir, { recursive: true, force: true });
  });

  it("extracts, uploads and makes the options searchable", async () => {
    const token = parseDevVars(readFileSync(path.join(ROOT, ".dev.vars"), "utf8")).ADMIN_TOKEN!;
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        nodeBinary(),
        ["src/cli/extract.ts", "--modules", "test/nix/fixtures/collection/modules.nix", "--namespace", "fixture-e2e", "--lib", lib!, "--upload", base, "--token", token, "--no-progress"],
        { cwd: ROOT, encoding: "utf8" },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/fixture-e2e: 26 options, \d+ modules, 1 errors/);
    expect(run.stdout).toMatch(/^fixture-e2e: 26 options in \d+ modules/m);

    const search = (await (await fetch(`${base}/api/v1/search?q=${encodeURIComponent("editor colour theme")}&namespace=fixture-e2e`)).json()) as { hits: { name: string }[] };
    expect(search.hits.map((r) => r.name)).toContain("programs.editor.theme");

    const exact = await fetch(`${base}/api/v1/namespaces/fixture-e2e/options/${encodeURIComponent('targets.defaults."com.example.Editor"."Window.restoreState"')}`);
    expect(exact.status).toBe(200);

    const web = (await (await fetch(`${base}/api/v1/namespaces/fixture-e2e/modules/services/web`)).json()) as { imports: string[]; meta: Record<string, unknown>; description: string };
    expect(web.imports).toEqual(["services/web/tls.nix"]);
    expect(web.meta.contentHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(web.description).toMatch(/^A web service imported as a directory/);

    // A module without options of its own is a record too (renames and removals only).
    const deprecations = await fetch(`${base}/api/v1/namespaces/fixture-e2e/modules/deprecations.nix`);
    expect(deprecations.status).toBe(200);
    expect(((await deprecations.json()) as { description: string }).description).toBe("Renamed and removed options.");
  });
});

/**
 * No code is generated at request time, shown in a real runtime: `wrangler dev` (workerd) runs the
 * probe worker test/e2e/codegen/worker.ts at the production compatibility date and flags (read
 * from wrangler.jsonc). Workers forbid `new Function`/`eval` during requests, but the vitest
 * workers pool grants an unsafe-eval binding, so this cannot be shown by the unit tests.
 *
 * Controls: `new Function` must fail here (else this is not the runtime that matters) and be
 * counted by the probe's spies; the spies must also see msgpackr's default build try code
 * generation (it catches the refusal and falls back, so only the count shows it). Between them,
 * the project's codec, a zod object parse and the option schemas must work during a request
 * without a single attempt.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killAllGroups, repoRoot, startWranglerDev, type GroupProcess, type WranglerDev } from "../../src/cli/processes.ts";

const PROBE_WORKER = path.join(repoRoot, "test/e2e/codegen/worker.ts");

/** JSON with comments (`//`, `/* *\/`) and trailing commas, as wrangler.jsonc allows. */
function parseJsonc(text: string): unknown {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      // Copy the string as it is, escapes included.
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 1;
    } else {
      out += c;
    }
  }
  // Comments are gone, so a comma followed only by white space and a closing bracket is trailing.
  return JSON.parse(out.replace(/("(?:[^"\\]|\\.)*")|,(\s*[}\]])/g, (m, str: string | undefined, close: string | undefined) => str ?? close!));
}

interface Probe {
  ok: boolean;
  value?: unknown;
  error?: string;
  /** Calls of the global `Function` (with or without new) and `eval` while the probe ran. */
  codegenAttempts: number;
}

describe("no code generation at request time (wrangler dev, production compatibility date)", () => {
  let dir = "";
  let server: WranglerDev | undefined;

  beforeAll(async () => {
    const prod = parseJsonc(readFileSync(path.join(repoRoot, "wrangler.jsonc"), "utf8")) as { compatibility_date?: unknown; compatibility_flags?: unknown };
    expect(prod.compatibility_date, "compatibility_date in wrangler.jsonc").toMatch(/^\d{4}-\d{2}-\d{2}$/);
    dir = await mkdtemp(path.join(os.tmpdir(), "nixdocs-e2e-codegen-"));
    const config = path.join(dir, "wrangler.json");
    await writeFile(
      config,
      JSON.stringify({
        name: "nixdocs-codegen-probe",
        main: PROBE_WORKER,
        compatibility_date: prod.compatibility_date,
        compatibility_flags: prod.compatibility_flags ?? [],
      }),
    );
    let group: GroupProcess | undefined;
    try {
      // In the temp dir: no .dev.vars or .wrangler/ of the repository is read or written.
      server = await startWranglerDev({ cwd: dir, config, persistDir: path.join(dir, "state"), healthPath: "/health", onSpawn: (g) => (group = g) });
    } catch (err) {
      throw new Error(`${(err as Error).message}\nwrangler output:\n${group?.output() ?? ""}`);
    }
  });

  afterAll(async () => {
    await server?.stop();
    await killAllGroups(); // whatever else is left of the process group
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function probe(name: string): Promise<Probe> {
    const res = await fetch(`${server!.url}/${name}`);
    expect(res.status, name).toBe(200);
    return (await res.json()) as Probe;
  }

  it("the runtime forbids new Function during a request, and the probe counts the attempt (the control)", async () => {
    const result = await probe("new-function");
    expect(result, JSON.stringify(result)).toMatchObject({ ok: false, codegenAttempts: 1 });
    expect(result.error).toMatch(/code generation/i);
  });

  it.each(["codec", "zod-object-parse", "schemas"])("/%s works during a request without generating code", async (name) => {
    const result = await probe(name);
    expect(result, JSON.stringify(result)).toMatchObject({ ok: true, codegenAttempts: 0 });
  });

  // Last: msgpackr stops trying for the rest of the isolate's life after one refusal, so a codec
  // that fell back on the default build would show no attempt if this had run before it.
  it("msgpackr's default build tries code generation during a request (what src/shared/codec.ts avoids)", async () => {
    const result = await probe("msgpackr-default");
    // It falls back after the refusal (msgpackr 2.x), so `ok` says nothing; the attempts do.
    expect(result.codegenAttempts, JSON.stringify(result)).toBeGreaterThan(0);
  });
});

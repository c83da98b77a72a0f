/** Shared by the Nix tests and the golden-file script. @module */
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { extract, extractionDocument, findLib, findNixInstantiate, type ExtractParams, type ExtractResult } from "../../src/cli/extract-lib.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const FIXTURES = path.join(ROOT, "test/nix/fixtures");
export const GOLDEN = path.join(ROOT, "test/nix/golden");

/** nix-instantiate, or undefined when Nix is not installed. */
export function nixOrUndefined(): string | undefined {
  try {
    return findNixInstantiate();
  } catch {
    return undefined;
  }
}

/**
 * Nixpkgs' lib for evaluation tests, from NIXPKGS_LIB or <nixpkgs/lib>; `reason` says why there is
 * none (the evaluation tests are then skipped).
 */
export async function libForTests(): Promise<{ lib?: string; reason?: string }> {
  const nix = nixOrUndefined();
  if (!nix) return { reason: "nix-instantiate is not installed (apt-get install nix-bin)" };
  try {
    return { lib: await findLib(undefined, nix) };
  } catch (err) {
    return { reason: (err as Error).message };
  }
}

/** The parameters every fixture extraction uses (the golden files depend on them). */
export function fixtureParams(name: string, lib: string, extra: Partial<ExtractParams> = {}): ExtractParams {
  return {
    modules: path.join(FIXTURES, name, "modules.nix"),
    namespace: `fixture-${name}`,
    lib,
    nix: findNixInstantiate(),
    env: { ...process.env, NIX_PATH: "" },
    // `_module.*` documentation is lib's own text and changes with lib; the fixtures are about ours.
    includeModuleSystemOptions: false,
    ...extra,
  };
}

/** The extraction as the golden file holds it: absolute paths of this checkout replaced. */
export function goldenText(result: ExtractResult): string {
  return JSON.stringify(extractionDocument(result), null, 2).split(ROOT).join("<repo>") + "\n";
}

export function goldenFile(name: string): string {
  return path.join(GOLDEN, `${name}.json`);
}

export async function extractFixture(name: string, lib: string, extra: Partial<ExtractParams> = {}): Promise<ExtractResult> {
  return extract(fixtureParams(name, lib, extra));
}

/** Every .nix file of the repository (outside node_modules and tool state), found on disk. */
export function nixFilesOfRepo(dir = ROOT, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) nixFilesOfRepo(p, out);
    else if (e.isFile() && e.name.endsWith(".nix")) out.push(p);
  }
  return out.sort();
}

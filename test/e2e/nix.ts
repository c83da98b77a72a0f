/**
 * Running the Nix CLI from Node-side tests: whether it is installed, parsing a file, and
 * evaluating an expression to JSON. Tests of nix/ call these; they skip (saying why) when Nix is
 * not installed, since the rest of the suite does not need it.
 * @module
 */
import { execFileSync, spawnSync } from "node:child_process";
import path from "node:path";
import { repoRoot } from "../../src/cli/processes.ts";

/** The `nix-instantiate` version line, or null when Nix is not installed. */
export function nixVersion(): string | null {
  const r = spawnSync("nix-instantiate", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Absolute path of a file in the repository (`nix/usage-reporter.nix`). */
export function repoFile(relative: string): string {
  return path.join(repoRoot, relative);
}

/** `nix-instantiate --parse FILE`: throws with Nix's message when the file does not parse. */
export function nixParse(file: string): string {
  return execFileSync("nix-instantiate", ["--parse", file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Evaluates a Nix expression strictly (no store writes, no network) and returns its JSON value. */
export function nixEvalJson(expr: string): unknown {
  const out = execFileSync("nix-instantiate", ["--eval", "--strict", "--json", "--readonly-mode", "-E", expr], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NIX_PATH: "" },
  });
  return JSON.parse(out);
}

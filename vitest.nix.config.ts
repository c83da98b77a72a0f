/**
 * Tests of the Nix side (nix/*.nix and `npm run extract`), run in plain Node because they start
 * `nix-instantiate`. Parse checks of every .nix file always run and need Nix (.ci/run installs
 * Debian's nix-bin). Evaluation tests need Nixpkgs' lib from NIXPKGS_LIB or <nixpkgs/lib>; where
 * neither exists they are skipped and say so (lib is not shipped with Debian nor committed here).
 */
import path from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "node",
    // .ci/run collects these JSON reports to print "N passed, N failed".
    reporters: process.env.NIXDOCS_REPORT_DIR ? ["default", ["json", { outputFile: path.join(process.env.NIXDOCS_REPORT_DIR, "nix.json") }]] : ["default"],
    include: ["test/nix/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});

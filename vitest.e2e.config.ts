/**
 * End-to-end tests: real `npm start` processes (wrangler dev + workerd) driven from plain Node.
 * Run with `npm run test:e2e`. They need Node 22 and the real data in ../shared/data
 * (or NIXDOCS_DATA_DIR); they fail, never skip, when it is missing.
 */
import path from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "node",
    // .ci/run collects these JSON reports to print "N passed, N failed".
    reporters: process.env.NIXDOCS_REPORT_DIR ? ["default", ["json", { outputFile: path.join(process.env.NIXDOCS_REPORT_DIR, "e2e.json") }]] : ["default"],
    include: ["test/e2e/**/*.test.ts"],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    // Each file starts servers on its own free ports, but they share the repository's .dev.vars
    // and wrangler's build output; one file at a time keeps them out of each other's way.
    fileParallelism: false,
    pool: "forks",
  },
});

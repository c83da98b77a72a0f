import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const root = path.dirname(fileURLToPath(import.meta.url));
/** The real option data lives beside the repository (../shared/data) and is never copied into it. */
export const DATA_DIR = process.env.NIXDOCS_DATA_DIR ?? path.resolve(root, "../shared/data");

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.jsonc" },
      miniflare: {
        bindings: {
          ADMIN_TOKEN: "test-admin-token",
          SEARCH_SHARD_TIMEOUT_MS: "1500",
          TELEMETRY_HASH_KEY: "test-telemetry-hash-key",
          // Authentication by tokens (test/auth.test.ts signs its own with these).
          JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789abcdef",
          JWT_ISSUER: "https://issuer.nixdocs.test",
          JWT_AUDIENCE: "nixdocs-api",
          ACCESS_TEAM_DOMAIN: "nixdocs-test.cloudflareaccess.com",
          ACCESS_AUD: "test-access-aud",
          ACCESS_ROLE: "write",
          // Test requests carry no CF-Connecting-IP, so they all share one per-IP bucket, and
          // ingest.test.ts reads all 23,309 Home Manager and nixvim options one by one: the per-IP
          // limit is raised here. test/rate-limit.test.ts sets its own limits per request.
          RATE_LIMIT_IP: "1000000/60",
        },
        // Tests inside workerd read the real data files through this Node-side service:
        // GET http://data/<file> answers the file's bytes, or 404 naming the missing path.
        serviceBindings: {
          TEST_DATA: async (request: Request) => {
            const name = decodeURIComponent(new URL(request.url).pathname.slice(1));
            if (!/^[A-Za-z0-9._-]+$/.test(name)) return new Response("bad file name", { status: 400 });
            const file = path.join(DATA_DIR, name);
            try {
              return new Response(await readFile(file));
            } catch {
              return new Response(`missing test data file ${file} (set NIXDOCS_DATA_DIR or put ../shared/data beside the repository)`, { status: 404 });
            }
          },
        },
      },
    }),
  ],
  test: {
    // .ci/run collects these JSON reports to print "N passed, N failed".
    reporters: process.env.NIXDOCS_REPORT_DIR ? ["default", ["json", { outputFile: path.join(process.env.NIXDOCS_REPORT_DIR, "workers.json") }]] : ["default"],
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**", "test/nix/**"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});

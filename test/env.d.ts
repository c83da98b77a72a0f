// Bindings that exist only in tests (vitest.config.ts adds them through miniflare).
declare namespace Cloudflare {
  interface Env {
    /** Serves files of ../shared/data: `GET http://data/<file>`. */
    TEST_DATA: Fetcher;
  }
}

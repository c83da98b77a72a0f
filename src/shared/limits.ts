/** Documented limits of the API. Values that operators may tune come from `wrangler.jsonc` vars. */
export const LIMITS = {
  /** Default largest write body in bytes (`MAX_BODY_BYTES` overrides it). */
  maxBodyBytes: 8 * 1024 * 1024,
  /** Default longest string (key or value, in characters as sent) in a JSON body (`MAX_JSON_STRING_CHARS` overrides it). */
  maxJsonStringChars: 1024 * 1024,
  /** Nesting depth of arrays and objects in a JSON body. */
  maxJsonDepth: 64,
  /** Modules in one ingest batch. */
  maxModulesPerBatch: 2_000,
  /** Options in one ingest batch. */
  maxOptionsPerBatch: 25_000,
  /** Characters of a search query. */
  maxQueryLength: 256,
  /** Words of a search query that reach the index; more are rejected. */
  maxQueryTerms: 16,
  /** Largest page of search results or module listings. */
  maxPageSize: 100,
  defaultPageSize: 20,
  /** Search results reachable through pages: the first 1,000 of the ranking. */
  maxSearchDepth: 1_000,
  /** Length of a module path or an option name. */
  maxPathLength: 1_024,
  /** Length of one option description or literal text. */
  maxTextLength: 200_000,
  /** Bytes of one message a live-room client sends. */
  maxLiveMessageBytes: 4_096,
  /** Messages a live-room connection may send per window; more close it with 1008. */
  liveMessagesPerWindow: 30,
  liveMessageWindowMs: 10_000,
  /** Events per page of a live-room replay (and per publish call of a shard). */
  liveEventPage: 500,
  /** Modules in one telemetry report. */
  maxTelemetryModules: 2_000,
  /** Largest telemetry report body in bytes (2,000 typical module references are ~200 KB). */
  maxTelemetryBodyBytes: 1024 * 1024,
  /** Days of the daily usage series an aggregate keeps and a read may ask for. */
  maxUsageDays: 90,
} as const;

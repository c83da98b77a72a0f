/**
 * Client side of `POST /api/v1/namespaces/:ns/modules/batch`: reads an `options.json` (plain or
 * gzipped), validates it with the same shared code the server runs, groups it into modules, packs
 * the modules into batches under a byte budget and sends them one after the other, retrying
 * transient failures. Used by `npm run ingest`, by `npm start` (seeding) and by the benchmarks.
 *
 * Option names contain `<name>`, `*`, quotes and dots; they only ever travel inside JSON bodies,
 * never through a shell or a URL.
 * @module
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { groupIntoModules } from "../shared/group.ts";
import { LIMITS } from "../shared/limits.ts";
import { namespaceName, normalizeModules, normalizeOptionsJson, type Issue } from "../shared/schemas.ts";
import type { IngestMode, IngestSummary } from "../shared/types.ts";

/** Batch size aimed at when packing modules (bytes of JSON body). */
export const DEFAULT_BATCH_BYTES = 2 * 1024 * 1024;
/** Hard ceiling of a batch body: the server's default `MAX_BODY_BYTES`. */
export const MAX_BATCH_BYTES = LIMITS.maxBodyBytes;
export const DEFAULT_URL = "http://127.0.0.1:8787";

// ---- errors --------------------------------------------------------------------------------------

export type IngestErrorKind =
  /** The file cannot be read, is not JSON, or fails validation (`issues`). Nothing was sent. */
  | "input"
  /** Missing token, bad namespace or URL, bad option values. Nothing was sent. */
  | "config"
  /** The server refused a batch with a 4xx other than 429 (`status`, `body` = error envelope). */
  | "http"
  /** Retries exhausted on 429/5xx/network errors (`status` of the last answer, if any). */
  | "unavailable";

/** Every failure of this module. `batchesApplied` tells how much of the import reached the store. */
export class IngestError extends Error {
  readonly kind: IngestErrorKind;
  readonly status: number | undefined;
  /** The server's error envelope `{error:{code,message,details?}}` (or raw text) for `http`. */
  readonly body: unknown;
  /** Validation issues for `input` errors, as the server would report them. */
  readonly issues: Issue[] | undefined;
  /** Batches of this import the server had committed before the failure. */
  batchesApplied = 0;
  batchesTotal = 0;

  constructor(kind: IngestErrorKind, message: string, extra: { status?: number; body?: unknown; issues?: Issue[]; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "IngestError";
    this.kind = kind;
    this.status = extra.status;
    this.body = extra.body;
    this.issues = extra.issues;
  }
}

// ---- reading --------------------------------------------------------------------------------------

/** Read an options.json file, gunzipping it when it starts with the gzip magic bytes (1f 8b). */
export async function readOptionsFile(file: string): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new IngestError("input", `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (err) {
      throw new IngestError("input", `${file} looks gzipped but does not decompress: ${(err as Error).message}`, { cause: err });
    }
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch (err) {
    throw new IngestError("input", `${file} is not valid UTF-8`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new IngestError("input", `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** `home-manager-options.json.gz` → `home-manager`; `foo.json` → `foo`. */
export function namespaceFromFile(file: string): string {
  const base = path.basename(file);
  return base.replace(/(-options)?\.json(\.gz)?$/i, "").replace(/\.gz$/i, "");
}

/** `KEY=VALUE` lines of a `.dev.vars`/`.env` file (comments, `export ` and quotes handled). */
export function parseDevVars(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    if (/^(["']).*\1$/.test(value) && value.length >= 2) value = value.slice(1, -1);
    else value = value.replace(/\s+#.*$/, "");
    out[m[1]!] = value;
  }
  return out;
}

/** Token from, in order: `explicit`, env `ADMIN_TOKEN`, `ADMIN_TOKEN` in `<dir>/.dev.vars`. */
export function resolveToken(explicit?: string, dir: string = process.cwd()): string | undefined {
  if (explicit) return explicit;
  if (process.env.ADMIN_TOKEN) return process.env.ADMIN_TOKEN;
  try {
    return parseDevVars(readFileSync(path.join(dir, ".dev.vars"), "utf8")).ADMIN_TOKEN || undefined;
  } catch {
    return undefined;
  }
}

/** `2097152`, `512k`, `2M`, `2MiB`, `1.5mb` → bytes. */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib)?\s*$/i.exec(text);
  if (!m) throw new IngestError("config", `not a byte size: ${JSON.stringify(text)} (examples: 2097152, 512k, 2MiB)`);
  const unit = (m[2] ?? "b").toLowerCase();
  const mult = unit.startsWith("k") ? 1024 : unit.startsWith("m") ? 1024 * 1024 : 1;
  return Math.floor(Number(m[1]) * mult);
}

// ---- preparing -----------------------------------------------------------------------------------

/** One module ready to send: its JSON text inside a batch is fixed once. */
export interface PreparedModule {
  path: string;
  /** `{"path":…,"options":{…raw entries…}}` */
  json: string;
  bytes: number;
  options: number;
}

/** A validated file, grouped into modules, not yet sent. */
export interface PreparedImport {
  file: string;
  namespace: string;
  /** Entries in the file (including undocumented ones the server would drop). */
  entries: number;
  /** Documented options that will be sent. */
  options: number;
  modules: PreparedModule[];
  /** Time spent reading, validating and grouping (ms). */
  prepareMs: number;
}

const BATCH_PREFIX = '{"modules":[';
const BATCH_SUFFIX = "]}";

function formatIssues(issues: Issue[]): string {
  return issues.map((i) => `  - ${i.path.length ? i.path.map(String).join(" › ") + ": " : ""}${i.message}`).join("\n");
}

/**
 * Validate a parsed options.json with the shared `normalizeOptionsJson`, group it with
 * `groupIntoModules`, and map each grouped option back to its raw entry (by name) so the batch
 * carries exactly what the file says: `{modules:[{path, options:{name: rawEntry}}]}`.
 * Throws `IngestError("input")` with `issues` when the data is invalid.
 */
export function prepareOptions(raw: unknown, namespace: string, file = "<memory>"): Omit<PreparedImport, "prepareMs"> {
  const ns = namespaceName.safeParse(namespace);
  if (!ns.success) {
    throw new IngestError("config", `invalid namespace ${JSON.stringify(namespace)}: ${ns.error.issues[0]?.message ?? "invalid"} (pass --namespace)`);
  }
  const normalized = normalizeOptionsJson(raw);
  if ("issues" in normalized) {
    throw new IngestError("input", `${file} has invalid entries; nothing was sent:\n${formatIssues(normalized.issues)}`, { issues: normalized.issues });
  }
  const entries = raw as Record<string, unknown>;
  // Display name → raw keys. The record's name is `showOption(loc)`; the key normally equals it,
  // but a file may quote a segment differently, so match on the parsed identity too.
  const keysByName = new Map<string, string[]>();
  for (const o of normalized.options) keysByName.set(o.name, []);
  for (const key of Object.keys(entries)) {
    const list = keysByName.get(key);
    if (list) list.push(key);
  }
  const missing = normalized.options.filter((o) => keysByName.get(o.name)!.length === 0);
  if (missing.length) {
    // Keys that are not the canonical display name: find them through a per-entry normalization.
    const known = new Set(keysByName.keys());
    for (const key of Object.keys(entries)) {
      if (known.has(key)) continue;
      const one = normalizeOptionsJson({ [key]: entries[key] });
      if ("options" in one && one.options[0]) keysByName.get(one.options[0].name)?.push(key);
    }
  }

  const modules: PreparedModule[] = [];
  for (const m of groupIntoModules(normalized.options)) {
    const options: Record<string, unknown> = {};
    for (const o of m.options) for (const key of keysByName.get(o.name) ?? []) options[key] = entries[key];
    const json = JSON.stringify({ path: m.path, options });
    modules.push({ path: m.path, json, bytes: Buffer.byteLength(json), options: m.options.length });
  }
  return { file, namespace, entries: Object.keys(entries).length, options: normalized.options.length, modules };
}

/** Read, validate and group one file. */
export async function prepareFile(file: string, namespace?: string): Promise<PreparedImport> {
  const started = performance.now();
  const raw = await readOptionsFile(file);
  const prepared = prepareOptions(raw, namespace ?? namespaceFromFile(file), file);
  return { ...prepared, prepareMs: performance.now() - started };
}

export interface Batch {
  modules: PreparedModule[];
  bytes: number;
  options: number;
}

function batchOf(modules: PreparedModule[]): Batch {
  return {
    modules,
    bytes: BATCH_PREFIX.length + BATCH_SUFFIX.length + modules.reduce((n, m) => n + m.bytes, 0) + Math.max(0, modules.length - 1),
    options: modules.reduce((n, m) => n + m.options, 0),
  };
}

export function batchBody(batch: Batch): string {
  return BATCH_PREFIX + batch.modules.map((m) => m.json).join(",") + BATCH_SUFFIX;
}

/**
 * Pack modules, in order, into batches of at most `targetBytes` (and the server's module and option
 * counts). A module larger than the target travels alone; one larger than `maxBytes` cannot be sent
 * (a module is the unit of an all-or-nothing write) and is an error.
 */
export function packBatches(modules: PreparedModule[], targetBytes = DEFAULT_BATCH_BYTES, maxBytes = MAX_BATCH_BYTES): Batch[] {
  const target = Math.min(targetBytes, maxBytes);
  const batches: Batch[] = [];
  let current: PreparedModule[] = [];
  let bytes = BATCH_PREFIX.length + BATCH_SUFFIX.length;
  let options = 0;
  const flush = () => {
    if (current.length) batches.push(batchOf(current));
    current = [];
    bytes = BATCH_PREFIX.length + BATCH_SUFFIX.length;
    options = 0;
  };
  for (const m of modules) {
    const alone = BATCH_PREFIX.length + BATCH_SUFFIX.length + m.bytes;
    if (alone > maxBytes) {
      throw new IngestError("input", `module ${m.path} alone is ${alone} bytes of JSON, above the ${maxBytes}-byte request limit; it cannot be sent`);
    }
    if (m.options > LIMITS.maxOptionsPerBatch) {
      throw new IngestError("input", `module ${m.path} has ${m.options} options, above the server's ${LIMITS.maxOptionsPerBatch} per batch`);
    }
    const extra = m.bytes + (current.length ? 1 : 0);
    if (current.length && (bytes + extra > target || current.length >= LIMITS.maxModulesPerBatch || options + m.options > LIMITS.maxOptionsPerBatch)) flush();
    bytes += m.bytes + (current.length ? 1 : 0);
    options += m.options;
    current.push(m);
  }
  flush();
  return batches;
}

// ---- progress ------------------------------------------------------------------------------------

export interface IngestProgress {
  file: string;
  namespace: string;
  batchesDone: number;
  batchesTotal: number;
  optionsDone: number;
  optionsTotal: number;
  bytesDone: number;
  retries: number;
  elapsedMs: number;
  done: boolean;
}

/**
 * `auto`: a bar when stderr is a TTY, otherwise a line every few seconds; `bar`/`lines` force one;
 * `none` is silent; a function receives every update.
 */
export type ProgressMode = "auto" | "bar" | "lines" | "none" | ((p: IngestProgress) => void);

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** A reporter writing to stderr. Returns the update function and a `clear` for interleaved logs. */
export function createProgressReporter(mode: ProgressMode): { update: (p: IngestProgress) => void; clear: () => void } {
  if (typeof mode === "function") return { update: mode, clear: () => {} };
  const resolved = mode === "auto" ? (process.stderr.isTTY ? "bar" : "lines") : mode;
  if (resolved === "none") return { update: () => {}, clear: () => {} };
  if (resolved === "lines") {
    let last = 0;
    return {
      update(p) {
        const now = Date.now();
        if (p.batchesTotal <= 1) return;
        if (!p.done && now - last < 5_000 && p.batchesDone !== 0) return;
        last = now;
        process.stderr.write(
          `${p.namespace}: ${p.batchesDone}/${p.batchesTotal} batches, ${fmtInt(p.optionsDone)}/${fmtInt(p.optionsTotal)} options, ${(p.elapsedMs / 1000).toFixed(1)} s\n`,
        );
      },
      clear() {},
    };
  }
  let lastDraw = 0;
  let drawn = false;
  const clear = () => {
    if (drawn) process.stderr.write("\r\x1b[2K");
    drawn = false;
  };
  return {
    update(p) {
      const now = Date.now();
      if (!p.done && now - lastDraw < 80) return;
      lastDraw = now;
      const cols = process.stderr.columns || 80;
      const frac = p.optionsTotal ? p.optionsDone / p.optionsTotal : p.batchesTotal ? p.batchesDone / p.batchesTotal : 1;
      const secs = p.elapsedMs / 1000;
      const rate = secs > 0 ? p.optionsDone / secs : 0;
      const label = `${p.namespace} `;
      const tail = ` ${p.batchesDone}/${p.batchesTotal} batches ${fmtInt(p.optionsDone)}/${fmtInt(p.optionsTotal)} options ${secs.toFixed(1)}s ${fmtInt(rate)}/s${p.retries ? ` (${p.retries} retries)` : ""}`;
      // Width from the longest the tail can get, so the bar does not shrink as numbers grow.
      const longest = tail.length + String(p.batchesTotal).length + fmtInt(p.optionsTotal).length + 6;
      const width = Math.max(10, Math.min(40, cols - label.length - longest - 3));
      const filled = Math.round(frac * width);
      const line = `${label}[${"#".repeat(filled)}${"-".repeat(width - filled)}]${tail}`;
      process.stderr.write(`\r\x1b[2K${line.slice(0, cols - 1)}`);
      drawn = true;
      if (p.done) clear();
    },
    clear,
  };
}

// ---- sending -------------------------------------------------------------------------------------

export interface IngestOptions {
  /** Target namespace; default: the file name without `-options.json(.gz)` / `.json(.gz)`. */
  namespace?: string;
  /** Server base URL; default `http://127.0.0.1:8787`. */
  url?: string;
  /** Bearer token; default: env `ADMIN_TOKEN`, else `ADMIN_TOKEN` in `./.dev.vars`. */
  token?: string;
  /** `replace` soft-deletes modules the import did not deliver (once, after the last batch). Default `merge`. */
  mode?: IngestMode;
  /** Batch size to aim at, in bytes of JSON (default 2 MiB; capped at 8 MiB). */
  batchBytes?: number;
  /** Retries per batch on 429, 5xx and network errors (default 6). */
  maxRetries?: number;
  /** First backoff step in ms (default 500); doubles per retry up to 30 s; the delay is 50-100 % of the step. */
  backoffMs?: number;
  /** Per-request timeout in ms (default 300 000). A timed-out batch is retried (ingest is idempotent). */
  timeoutMs?: number;
  /** Progress display on stderr (default `auto`). */
  progress?: ProgressMode;
  /** Where retry notices go (default: stderr). */
  log?: (line: string) => void;
  /** Import id for `replace` (default: random). Must match `[A-Za-z0-9_-]{1,64}`. */
  importId?: string;
  /** Injected fetch (tests, instrumentation). */
  fetch?: typeof fetch;
  /** Aborts between and during requests. */
  signal?: AbortSignal;
}

/** What one file's ingest did. `summary` adds up the server's IngestSummary of every batch. */
export interface IngestReport {
  file: string;
  namespace: string;
  mode: IngestMode;
  importId: string | null;
  entries: number;
  options: number;
  modules: number;
  batches: number;
  /** Bytes of JSON bodies sent (successful attempts). */
  bytes: number;
  retries: number;
  summary: IngestSummary;
  prepareMs: number;
  sendMs: number;
  /** Wall time from reading the file to the last answer, in seconds. */
  seconds: number;
  optionsPerSecond: number;
  /** Per batch: modules, options, bytes and the round trip in ms (for benchmarks). */
  batchTimings: { modules: number; options: number; bytes: number; ms: number }[];
}

function emptySummary(namespace: string): IngestSummary {
  return { namespace, modules: { added: 0, changed: 0, unchanged: 0, removed: 0 }, options: { added: 0, changed: 0, removed: 0 }, versionsCreated: 0 };
}

function addSummary(into: IngestSummary, s: Partial<IngestSummary>): void {
  into.modules.added += s.modules?.added ?? 0;
  into.modules.changed += s.modules?.changed ?? 0;
  into.modules.unchanged += s.modules?.unchanged ?? 0;
  into.modules.removed += s.modules?.removed ?? 0;
  into.options.added += s.options?.added ?? 0;
  into.options.changed += s.options?.changed ?? 0;
  into.options.removed += s.options?.removed ?? 0;
  into.versionsCreated += s.versionsCreated ?? 0;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Seconds or HTTP date → ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Math.max(0, Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Longest Retry-After we wait for; a server asking for more makes the import stop. */
const MAX_RETRY_AFTER_MS = 120_000;
const MAX_BACKOFF_MS = 30_000;

function describeNetworkError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError") return "request timed out";
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e?.message ?? "network error"} (${cause})` : (e?.message ?? String(err));
}

function envelopeText(body: unknown): string {
  const err = (body as { error?: { code?: string; message?: string } })?.error;
  if (err?.code || err?.message) return `${err.code ?? "error"}: ${err.message ?? ""}`;
  return typeof body === "string" ? body.slice(0, 500) : JSON.stringify(body).slice(0, 500);
}

interface Ctx {
  endpoint: string;
  token: string;
  fetch: typeof fetch;
  maxRetries: number;
  backoffMs: number;
  timeoutMs: number;
  log: (line: string) => void;
  signal: AbortSignal | undefined;
  retries: number;
}

/** POST one body, retrying 429/5xx/network errors. Returns the parsed 2xx body, or the 413 marker. */
async function postWithRetry(ctx: Ctx, url: string, body: string, what: string): Promise<{ ok: true; json: unknown } | { ok: false; tooLarge: unknown }> {
  for (let attempt = 0; ; attempt++) {
    let status: number | undefined;
    let problem: string;
    let retryAfterMs: number | undefined;
    try {
      const signals = [AbortSignal.timeout(ctx.timeoutMs)];
      if (ctx.signal) signals.push(ctx.signal);
      const res = await ctx.fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${ctx.token}`, "content-type": "application/json" },
        body,
        signal: AbortSignal.any(signals),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // keep text
      }
      if (res.ok) return { ok: true, json: parsed };
      status = res.status;
      if (res.status === 413) return { ok: false, tooLarge: parsed };
      if (res.status !== 429 && res.status < 500) {
        throw new IngestError("http", `the server refused ${what} with ${res.status}: ${envelopeText(parsed)}`, { status: res.status, body: parsed });
      }
      problem = `${res.status} ${envelopeText(parsed)}`;
      retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
    } catch (err) {
      if (err instanceof IngestError) throw err;
      if (ctx.signal?.aborted) throw err;
      problem = describeNetworkError(err);
    }
    if (attempt >= ctx.maxRetries) {
      throw new IngestError("unavailable", `giving up on ${what} after ${attempt + 1} attempts: ${problem}`, { status });
    }
    if (retryAfterMs !== undefined && retryAfterMs > MAX_RETRY_AFTER_MS) {
      throw new IngestError("unavailable", `the server asks to retry ${what} in ${Math.round(retryAfterMs / 1000)} s; giving up (${problem})`, { status });
    }
    // Exponential with "equal jitter": half the step is fixed, half random.
    const step = Math.min(MAX_BACKOFF_MS, ctx.backoffMs * 2 ** attempt);
    const backoff = step / 2 + (Math.random() * step) / 2;
    const delay = retryAfterMs !== undefined ? retryAfterMs + Math.random() * 250 : backoff;
    ctx.retries++;
    ctx.log(`${what}: ${problem}; retry ${attempt + 1}/${ctx.maxRetries} in ${(delay / 1000).toFixed(1)} s`);
    await sleep(delay, ctx.signal);
  }
}

/** Send a prepared import. See `ingestFile`. */
export async function sendPrepared(prepared: PreparedImport, opts: IngestOptions = {}): Promise<IngestReport> {
  const started = performance.now();
  const mode: IngestMode = opts.mode ?? "merge";
  const token = resolveToken(opts.token);
  if (!token) throw new IngestError("config", "no admin token: pass --token, set ADMIN_TOKEN, or put ADMIN_TOKEN in ./.dev.vars (npm start creates one)");
  let base: URL;
  try {
    base = new URL(opts.url ?? DEFAULT_URL);
  } catch {
    throw new IngestError("config", `not a URL: ${opts.url}`);
  }
  const importId = mode === "replace" ? (opts.importId ?? `cli-${Date.now().toString(36)}-${randomBytes(6).toString("hex")}`) : null;
  if (importId !== null && !/^[A-Za-z0-9_-]{1,64}$/.test(importId)) throw new IngestError("config", `invalid import id ${JSON.stringify(importId)}`);
  const batchBytes = opts.batchBytes ?? DEFAULT_BATCH_BYTES;
  if (!Number.isFinite(batchBytes) || batchBytes < 1024) throw new IngestError("config", `batch size must be at least 1024 bytes (got ${batchBytes})`);

  const queue = packBatches(prepared.modules, batchBytes);
  const ctx: Ctx = {
    endpoint: new URL(`api/v1/namespaces/${encodeURIComponent(prepared.namespace)}/modules/batch`, base.href.endsWith("/") ? base.href : base.href + "/").href,
    token,
    fetch: opts.fetch ?? fetch,
    maxRetries: opts.maxRetries ?? 6,
    backoffMs: opts.backoffMs ?? 500,
    timeoutMs: opts.timeoutMs ?? 300_000,
    log: opts.log ?? ((line) => process.stderr.write(line + "\n")),
    signal: opts.signal,
    retries: 0,
  };
  const reporter = createProgressReporter(opts.progress ?? "auto");
  const log = ctx.log;
  ctx.log = (line) => {
    reporter.clear();
    log(line);
  };

  const summary = emptySummary(prepared.namespace);
  const batchTimings: IngestReport["batchTimings"] = [];
  let done = 0;
  let optionsDone = 0;
  let bytesDone = 0;
  const progress = (finished: boolean) =>
    reporter.update({
      file: prepared.file,
      namespace: prepared.namespace,
      batchesDone: done,
      batchesTotal: done + queue.length,
      optionsDone,
      optionsTotal: prepared.options,
      bytesDone,
      retries: ctx.retries,
      elapsedMs: performance.now() - started + prepared.prepareMs,
      done: finished,
    });

  if (queue.length === 0) {
    // Nothing documented: the server does not accept an empty batch, so a replace cannot sweep.
    ctx.log(`${prepared.file}: no documented options; nothing sent${mode === "replace" ? " (namespace left as it is)" : ""}`);
  }
  progress(false);
  try {
    while (queue.length) {
      const batch = queue.shift()!;
      const final = queue.length === 0;
      const params = new URLSearchParams({ mode });
      if (importId) {
        params.set("importId", importId);
        params.set("final", String(final));
      }
      const what = `batch ${done + 1}/${done + 1 + queue.length} of ${prepared.namespace} (${batch.modules.length} modules, ${fmtBytes(batch.bytes)})`;
      const t0 = performance.now();
      const result = await postWithRetry(ctx, `${ctx.endpoint}?${params}`, batchBody(batch), what);
      if (!result.ok) {
        if (batch.modules.length > 1) {
          // The server's limit is lower than ours: halve the batch and go on.
          const mid = Math.ceil(batch.modules.length / 2);
          queue.unshift(batchOf(batch.modules.slice(0, mid)), batchOf(batch.modules.slice(mid)));
          ctx.log(`${what}: 413 payload_too_large; splitting it in two`);
          continue;
        }
        throw new IngestError("http", `the server refused module ${batch.modules[0]!.path} (${fmtBytes(batch.bytes)}) as too large: ${envelopeText(result.tooLarge)}; raise MAX_BODY_BYTES`, {
          status: 413,
          body: result.tooLarge,
        });
      }
      batchTimings.push({ modules: batch.modules.length, options: batch.options, bytes: batch.bytes, ms: performance.now() - t0 });
      addSummary(summary, result.json as Partial<IngestSummary>);
      done++;
      optionsDone += batch.options;
      bytesDone += batch.bytes;
      progress(false);
    }
  } catch (err) {
    reporter.clear();
    if (err instanceof IngestError) {
      err.batchesApplied = done;
      err.batchesTotal = done + queue.length + 1;
    }
    throw err;
  }
  progress(true);
  const sendMs = performance.now() - started;
  const seconds = (sendMs + prepared.prepareMs) / 1000;
  return {
    file: prepared.file,
    namespace: prepared.namespace,
    mode,
    importId,
    entries: prepared.entries,
    options: prepared.options,
    modules: prepared.modules.length,
    batches: done,
    bytes: bytesDone,
    retries: ctx.retries,
    summary,
    prepareMs: prepared.prepareMs,
    sendMs,
    seconds,
    optionsPerSecond: seconds > 0 ? prepared.options / seconds : 0,
    batchTimings,
  };
}

/**
 * Validate the batches of a prepared import locally with the server's `normalizeModules`, so a
 * batch the server would reject with 400 is caught before anything is written.
 */
export function checkPrepared(prepared: PreparedImport, batchBytes = DEFAULT_BATCH_BYTES): void {
  for (const batch of packBatches(prepared.modules, batchBytes)) {
    const result = normalizeModules(JSON.parse(batchBody(batch)));
    if ("issues" in result) {
      throw new IngestError("input", `${prepared.file}: a batch would be rejected by the server; nothing was sent:\n${formatIssues(result.issues)}`, { issues: result.issues });
    }
  }
}

/**
 * Ingest one options.json file (plain or gzipped) into a namespace.
 *
 * Reads and validates the file with the shared schema (`IngestError` kind `input` with `issues`
 * when invalid, before anything is sent), groups it into modules, packs them into batches of about
 * `opts.batchBytes` (default 2 MiB, never above 8 MiB; a bigger module goes alone), and POSTs the
 * batches in order. 429, 5xx, network errors and timeouts are retried with exponential backoff
 * and jitter (Retry-After honoured); a 413 splits the batch; any other 4xx stops with
 * `IngestError` kind `http` carrying the server's error envelope in `body`. With
 * `mode: "replace"` all batches share one import id and the last carries `final=true`, so modules
 * missing from the file are soft-deleted once, at the end.
 *
 * @param file path of an `options.json` or `options.json.gz`
 * @param opts see `IngestOptions`; all optional
 * @returns an `IngestReport`: counts, the summed server `IngestSummary`, bytes, retries, timings
 * @throws IngestError
 */
export async function ingestFile(file: string, opts: IngestOptions = {}): Promise<IngestReport> {
  const prepared = await prepareFile(file, opts.namespace);
  const t0 = performance.now();
  checkPrepared(prepared, opts.batchBytes);
  prepared.prepareMs += performance.now() - t0;
  return sendPrepared(prepared, opts);
}

// ---- reporting -----------------------------------------------------------------------------------

export function formatReportLine(r: Pick<IngestReport, "namespace" | "summary" | "options" | "modules" | "batches" | "bytes" | "seconds" | "optionsPerSecond" | "retries">): string {
  const s = r.summary;
  return (
    `${r.namespace}: ${fmtInt(r.options)} options in ${fmtInt(r.modules)} module${r.modules === 1 ? "" : "s"}, ${r.batches} batch${r.batches === 1 ? "" : "es"} (${fmtBytes(r.bytes)}); ` +
    `modules +${s.modules.added} ~${s.modules.changed} -${s.modules.removed} =${s.modules.unchanged}, ` +
    `options +${s.options.added} ~${s.options.changed} -${s.options.removed}; ` +
    `${r.seconds.toFixed(2)} s, ${fmtInt(r.optionsPerSecond)} options/s${r.retries ? `, ${r.retries} retries` : ""}`
  );
}

/** Sum of several reports (for the total line). `seconds` is the given wall time. */
export function totalReport(reports: IngestReport[], seconds: number): Pick<IngestReport, "namespace" | "summary" | "options" | "modules" | "batches" | "bytes" | "seconds" | "optionsPerSecond" | "retries"> {
  const summary = emptySummary("total");
  for (const r of reports) addSummary(summary, r.summary);
  const options = reports.reduce((n, r) => n + r.options, 0);
  return {
    namespace: `total (${reports.length} file${reports.length === 1 ? "" : "s"})`,
    summary,
    options,
    modules: reports.reduce((n, r) => n + r.modules, 0),
    batches: reports.reduce((n, r) => n + r.batches, 0),
    bytes: reports.reduce((n, r) => n + r.bytes, 0),
    retries: reports.reduce((n, r) => n + r.retries, 0),
    seconds,
    optionsPerSecond: seconds > 0 ? options / seconds : 0,
  };
}

/** Multi-line description of a failure, for the CLI and the seeder. */
export function describeError(err: unknown): string {
  if (!(err instanceof IngestError)) return err instanceof Error ? (err.stack ?? err.message) : String(err);
  const lines = [err.message];
  if (err.kind === "http" && err.body !== undefined) lines.push(`server answered: ${typeof err.body === "string" ? err.body : JSON.stringify(err.body, null, 2)}`);
  if ((err.kind === "http" || err.kind === "unavailable") && err.batchesTotal > 0) {
    lines.push(
      err.batchesApplied === 0
        ? "no batch of this file was applied"
        : `${err.batchesApplied} of ${err.batchesTotal} batches were applied before the failure (each batch is all-or-nothing; re-running the ingest is safe)`,
    );
  }
  return lines.join("\n");
}

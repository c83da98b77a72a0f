/**
 * `npm run ingest -- FILE... [--namespace NS] [--url URL] [--token T] [--replace] [--batch-bytes N]`
 *
 * Sends options.json files (plain or gzipped) to a nixdocs server in batches. Every file is read
 * and validated before the first request, so invalid input sends nothing. Exit status: 0 done,
 * 1 invalid input or a failed import, 2 bad usage.
 * @module
 */
import path from "node:path";
import { parseArgs } from "node:util";
import {
  DEFAULT_BATCH_BYTES,
  DEFAULT_URL,
  IngestError,
  MAX_BATCH_BYTES,
  checkPrepared,
  describeError,
  fmtBytes,
  formatReportLine,
  parseByteSize,
  prepareFile,
  resolveToken,
  sendPrepared,
  totalReport,
  type IngestReport,
  type PreparedImport,
} from "./ingest-lib.ts";

const USAGE = `usage: npm run ingest -- FILE... [options]

Send options.json files (plain or .gz) to a nixdocs server, grouped into modules and batched.

options:
  --namespace NS      target namespace (only with a single FILE); default: the file name
                      without -options.json(.gz) / .json(.gz)
  --url URL           server (default ${DEFAULT_URL})
  --token T           admin token (default: env ADMIN_TOKEN, else ADMIN_TOKEN in ./.dev.vars)
  --replace           replace the namespace: modules missing from the file are removed
                      (default: merge)
  --batch-bytes N     target batch size, e.g. 2097152, 512k, 2MiB (default ${fmtBytes(DEFAULT_BATCH_BYTES)},
                      at most ${fmtBytes(MAX_BATCH_BYTES)})
  --retries N         retries per batch on 429/5xx/network errors (default 6)
  --timeout S         seconds per request before it is retried (default 300)
  --no-progress       no progress display
  -h, --help          this text`;

function usageError(message: string): never {
  process.stderr.write(`ingest: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        namespace: { type: "string" },
        url: { type: "string" },
        token: { type: "string" },
        replace: { type: "boolean", default: false },
        "batch-bytes": { type: "string" },
        retries: { type: "string" },
        timeout: { type: "string" },
        "no-progress": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (positionals.length === 0) usageError("no FILE given");
  if (values.namespace !== undefined && positionals.length > 1) usageError("--namespace applies to a single FILE");

  let batchBytes = DEFAULT_BATCH_BYTES;
  if (values["batch-bytes"] !== undefined) {
    try {
      batchBytes = parseByteSize(values["batch-bytes"]);
    } catch (err) {
      usageError((err as Error).message);
    }
    if (batchBytes < 1024) usageError("--batch-bytes must be at least 1024");
    if (batchBytes > MAX_BATCH_BYTES) {
      process.stderr.write(`ingest: --batch-bytes ${batchBytes} is above the ${MAX_BATCH_BYTES}-byte request limit; using ${MAX_BATCH_BYTES}\n`);
      batchBytes = MAX_BATCH_BYTES;
    }
  }
  const retries = values.retries === undefined ? 6 : Number(values.retries);
  if (!Number.isInteger(retries) || retries < 0) usageError("--retries must be a non-negative integer");
  const timeout = values.timeout === undefined ? 300 : Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) usageError("--timeout must be a positive number of seconds");
  const token = resolveToken(values.token);
  if (!token) {
    process.stderr.write("ingest: no admin token: pass --token, set ADMIN_TOKEN, or put ADMIN_TOKEN in ./.dev.vars (npm start creates one)\n");
    return 1;
  }

  // `npm run` moves to the package root; file names are relative to where the user typed them.
  const base = process.env.npm_lifecycle_event === "ingest" && process.env.INIT_CWD ? process.env.INIT_CWD : process.cwd();
  const files = positionals.map((f) => path.resolve(base, f));

  const started = performance.now();
  // Read and validate everything first: invalid input must not leave half an import behind.
  const prepared: PreparedImport[] = [];
  for (const file of files) {
    try {
      const p = await prepareFile(file, values.namespace);
      const t0 = performance.now();
      checkPrepared(p, batchBytes);
      p.prepareMs += performance.now() - t0;
      prepared.push(p);
    } catch (err) {
      process.stderr.write(`ingest: ${describeError(err)}\n`);
      return 1;
    }
  }
  const seen = new Map<string, string>();
  for (const p of prepared) {
    const other = seen.get(p.namespace);
    if (other) usageError(`${other} and ${p.file} both go to namespace ${p.namespace}`);
    seen.set(p.namespace, p.file);
  }

  const reports: IngestReport[] = [];
  for (const p of prepared) {
    try {
      const report = await sendPrepared(p, {
        url: values.url,
        token,
        mode: values.replace ? "replace" : "merge",
        batchBytes,
        maxRetries: retries,
        timeoutMs: timeout * 1000,
        progress: values["no-progress"] ? "none" : "auto",
      });
      reports.push(report);
      process.stdout.write(formatReportLine(report) + "\n");
    } catch (err) {
      process.stderr.write(`ingest: ${p.namespace} (${p.file}) failed:\n${describeError(err)}\n`);
      if (err instanceof IngestError && err.kind === "unavailable" && values.url === undefined) {
        process.stderr.write(`is the server running? (npm start serves ${DEFAULT_URL})\n`);
      }
      if (reports.length) process.stdout.write(formatReportLine(totalReport(reports, (performance.now() - started) / 1000)) + "\n");
      return 1;
    }
  }
  if (reports.length > 1) process.stdout.write(formatReportLine(totalReport(reports, (performance.now() - started) / 1000)) + "\n");
  return 0;
}

process.exitCode = await main();

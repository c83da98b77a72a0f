/**
 * `npm run extract -- --modules PATH|--flake REF --namespace NS [--lib PATH] [--out FILE] [--upload URL]`
 *
 * Evaluates a module collection with nix/extract.nix, validates the result with the ingest API's
 * schemas, writes it, and optionally uploads it through ingest-lib (batches, progress, retries).
 * Exit status: 0 done, 1 evaluation/validation/upload failed, 2 bad usage, 3 Nix or lib missing.
 * @module
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { ExtractError, extract, extractionDocument, findLib, findNixInstantiate, prepareExtract, type ExtractResult } from "./extract-lib.ts";
import { DEFAULT_BATCH_BYTES, MAX_BATCH_BYTES, checkPrepared, describeError, fmtBytes, formatReportLine, parseByteSize, resolveToken, sendPrepared } from "./ingest-lib.ts";

const USAGE = `usage: npm run extract -- (--modules PATH | --flake REF) --namespace NS [options]

Evaluate a module collection's option documentation with Nix (nix/extract.nix) and write it,
upload it to a nixdocs server, or both.

source:
  --modules PATH       a .nix file or directory evaluating to a module, a list of modules, or a
                       function { lib, pkgs, ... } returning a list (e.g. home-manager's
                       modules/modules.nix)
  --flake REF          a flake and its module set, e.g. .#nixosModules (default attribute
                       nixosModules); needs a Nix with flakes (2.4+)
  --namespace NS       namespace the options belong to (required)
  --lib PATH           Nixpkgs' lib (a nixpkgs checkout or its lib/ directory); default: env
                       NIXPKGS_LIB, then <nixpkgs/lib> from NIX_PATH
  --source-root DIR    declarations are made relative to it (default: the directory of --modules)
  --url-prefix URL     declarations become {name, url, line} with URL + path + #L<line>
  --lines              declarations become {name, line} (the line Nix knows), without a URL
  --nixpkgs PATH       a nixpkgs checkout: pkgs.path and the real pkgs.formats for the stub
  --lib-overlay FILE   a lib overlay (self: super: { ... }) applied before evaluation
  --class NAME         the module class given to evalModules (nixos, homeManager, darwin)
  --system SYSTEM      stdenv.hostPlatform of the stub pkgs (default x86_64-linux)
  --entry-arg K=V      argument for a collection function, V as JSON (e.g. check=false); repeatable
  --package ATTR       a pkgs attribute path the stub must provide beyond those found in the
                       source; repeatable
  --no-module-system-options   leave out _module.* options

output:
  --out FILE           write the extraction (options, types, modules, errors) as JSON; "-" for
                       stdout (the default when there is no --upload)
  --options-json FILE  write only the options.json object (what nixosOptionsDoc writes)
  --upload URL         upload to the nixdocs server at URL (e.g. http://127.0.0.1:8787)
  --token T            admin token (default: env ADMIN_TOKEN, else ADMIN_TOKEN in ./.dev.vars)
  --replace            replace the namespace: modules the extraction lacks are removed
  --batch-bytes N      target batch size (default ${fmtBytes(DEFAULT_BATCH_BYTES)})
  --no-progress        no progress display
  -h, --help           this text

exit status: 0 done, 1 evaluation, validation or upload failed, 2 bad usage, 3 Nix or lib missing`;

function usageError(message: string): never {
  process.stderr.write(`extract: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function parseEntryArgs(list: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    if (eq <= 0) usageError(`--entry-arg ${item}: expected NAME=JSON`);
    const value = item.slice(eq + 1);
    try {
      out[item.slice(0, eq)] = JSON.parse(value);
    } catch {
      out[item.slice(0, eq)] = value;
    }
  }
  return out;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        modules: { type: "string" },
        flake: { type: "string" },
        namespace: { type: "string" },
        lib: { type: "string" },
        "source-root": { type: "string" },
        "url-prefix": { type: "string" },
        lines: { type: "boolean", default: false },
        nixpkgs: { type: "string" },
        "lib-overlay": { type: "string" },
        class: { type: "string" },
        system: { type: "string" },
        "entry-arg": { type: "string", multiple: true, default: [] },
        package: { type: "string", multiple: true, default: [] },
        "no-module-system-options": { type: "boolean", default: false },
        out: { type: "string" },
        "options-json": { type: "string" },
        upload: { type: "string" },
        token: { type: "string" },
        replace: { type: "boolean", default: false },
        "batch-bytes": { type: "string" },
        "no-progress": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    usageError((err as Error).message);
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (!values.modules === !values.flake) usageError("give exactly one of --modules PATH and --flake REF");
  if (!values.namespace) usageError("--namespace NS is required");
  let batchBytes = DEFAULT_BATCH_BYTES;
  if (values["batch-bytes"] !== undefined) {
    try {
      batchBytes = Math.min(parseByteSize(values["batch-bytes"]), MAX_BATCH_BYTES);
    } catch (err) {
      usageError((err as Error).message);
    }
  }
  const token = values.upload ? resolveToken(values.token) : undefined;
  if (values.upload && !token) {
    process.stderr.write("extract: no admin token for --upload: pass --token, set ADMIN_TOKEN, or put ADMIN_TOKEN in ./.dev.vars (npm start creates one)\n");
    return 1;
  }

  // `npm run` moves to the package root; paths are relative to where the user typed them.
  const base = process.env.npm_lifecycle_event === "extract" && process.env.INIT_CWD ? process.env.INIT_CWD : process.cwd();
  const resolve = (p: string | undefined) => (p === undefined ? undefined : path.resolve(base, p));
  const flake = values.flake && !/^[a-z+]+:/.test(values.flake) ? path.resolve(base, values.flake.split("#")[0]!) + (values.flake.includes("#") ? values.flake.slice(values.flake.indexOf("#")) : "") : values.flake;

  let result: ExtractResult;
  try {
    const nix = findNixInstantiate();
    const lib = await findLib(resolve(values.lib), nix);
    result = await extract({
      modules: resolve(values.modules),
      flake,
      namespace: values.namespace,
      lib,
      sourceRoot: resolve(values["source-root"]),
      urlPrefix: values["url-prefix"],
      withLines: values.lines,
      nixpkgs: resolve(values.nixpkgs),
      libOverlay: resolve(values["lib-overlay"]),
      class: values.class,
      hostSystem: values.system,
      entryArgs: parseEntryArgs(values["entry-arg"]),
      packages: values.package,
      includeModuleSystemOptions: !values["no-module-system-options"],
      nix,
      log: (line) => process.stderr.write(`extract: ${line}\n`),
    });
  } catch (err) {
    if (err instanceof ExtractError) {
      process.stderr.write(`extract: ${err.message}\n`);
      return err.kind === "nix-missing" || err.kind === "lib-missing" ? 3 : err.kind === "usage" ? 2 : 1;
    }
    throw err;
  }

  const optionCount = Object.keys(result.options).length;
  process.stderr.write(
    `extract: ${result.namespace}: ${optionCount} options, ${result.modules.length} modules, ${result.errors.length} errors (${result.stats.evaluations} evaluation${result.stats.evaluations === 1 ? "" : "s"}, ${result.stats.seconds.toFixed(1)} s)\n`,
  );
  for (const e of result.errors) process.stderr.write(`extract: not documented: ${e.name} (${e.fields.join(", ")})${e.message ? `\n  ${e.message.replace(/\n/g, "\n  ")}` : ""}\n`);

  let prepared;
  try {
    prepared = prepareExtract(result);
    checkPrepared(prepared, batchBytes);
  } catch (err) {
    process.stderr.write(`extract: ${err instanceof ExtractError ? err.message : describeError(err)}\n`);
    return 1;
  }

  const out = values.out ?? (values.upload || values["options-json"] ? undefined : "-");
  if (out === "-") process.stdout.write(JSON.stringify(extractionDocument(result), null, 2) + "\n");
  else if (out) await writeFile(resolve(out)!, JSON.stringify(extractionDocument(result), null, 2) + "\n");
  if (values["options-json"]) await writeFile(resolve(values["options-json"])!, JSON.stringify(result.options, null, 2) + "\n");

  if (values.upload) {
    try {
      const report = await sendPrepared(prepared, {
        url: values.upload,
        token,
        mode: values.replace ? "replace" : "merge",
        batchBytes,
        progress: values["no-progress"] ? "none" : "auto",
      });
      process.stdout.write(formatReportLine(report) + "\n");
    } catch (err) {
      process.stderr.write(`extract: upload to ${values.upload} failed:\n${describeError(err)}\n`);
      return 1;
    }
  }
  return 0;
}

process.exitCode = await main();

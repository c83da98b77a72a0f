/**
 * Driving nix/extract.nix from Node: find Nix and Nixpkgs' `lib`, list the packages a collection's
 * source mentions (for the documentation `pkgs` stub), evaluate with `nix-instantiate --eval
 * --strict --json`, isolate options and modules whose evaluation fails in a way `tryEval` cannot
 * catch, and validate the result with the ingest API's own schemas. Uploading reuses ingest-lib.
 * @module
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { modulePath, namespaceName, normalizeOptionsJson } from "../shared/schemas.ts";
import { IngestError, prepareOptions, type PreparedImport, type PreparedModule } from "./ingest-lib.ts";

export const EXTRACT_NIX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../nix/extract.nix");

/** Failures of the extraction itself (`kind` says which, for the exit code and the message). */
export class ExtractError extends Error {
  readonly kind: "nix-missing" | "lib-missing" | "usage" | "evaluation" | "invalid-output";
  constructor(kind: ExtractError["kind"], message: string) {
    super(message);
    this.name = "ExtractError";
    this.kind = kind;
  }
}

// ---- finding Nix and lib --------------------------------------------------------------------------

/** `nix-instantiate` from `NIX_INSTANTIATE` or PATH; ExtractError("nix-missing") when absent. */
export function findNixInstantiate(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NIX_INSTANTIATE) {
    if (existsSync(env.NIX_INSTANTIATE)) return env.NIX_INSTANTIATE;
    throw new ExtractError("nix-missing", `NIX_INSTANTIATE=${env.NIX_INSTANTIATE} does not exist`);
  }
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, "nix-instantiate");
    if (existsSync(candidate)) return candidate;
  }
  throw new ExtractError(
    "nix-missing",
    "nix-instantiate was not found on PATH: install Nix (Debian/Ubuntu: apt-get install nix-bin; elsewhere https://nixos.org/download) or set NIX_INSTANTIATE",
  );
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { env, maxBuffer: 1024 * 1024 * 1024, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === "number" ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      resolve({ code, stdout, stderr: stderr || (err && !stderr ? String(err.message) : "") });
    });
  });
}

/** Environment for nix-instantiate: without a daemon (root) flakes use the local store. */
export function nixEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, NIX_REMOTE: env.NIX_REMOTE ?? "" };
}

/**
 * Evaluation builds nothing and writes nothing, so it runs against Nix's `dummy://` store: no
 * daemon, no write access to /nix and no root needed. Flakes are the exception: `getFlake` copies
 * the flake into the real store.
 */
export function nixStoreArgs(flake: boolean): string[] {
  return flake ? [] : ["--store", "dummy://"];
}

/** A lib directory (holding default.nix) from a lib dir or a Nixpkgs checkout; undefined if neither. */
function libDirOf(candidate: string): string | undefined {
  if (existsSync(path.join(candidate, "default.nix")) && existsSync(path.join(candidate, "modules.nix"))) return candidate;
  if (existsSync(path.join(candidate, "lib", "default.nix")) && existsSync(path.join(candidate, "lib", "modules.nix"))) return path.join(candidate, "lib");
  return undefined;
}

/**
 * Nixpkgs' `lib`, in order: `explicit` (`--lib`), env `NIXPKGS_LIB`, then `<nixpkgs/lib>` on the
 * NIX_PATH. Each may name the lib directory or a Nixpkgs checkout. ExtractError("lib-missing")
 * names what was tried.
 */
export async function findLib(explicit: string | undefined, nix: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const tried: string[] = [];
  for (const [what, value] of [
    ["--lib", explicit],
    ["NIXPKGS_LIB", env.NIXPKGS_LIB],
  ] as const) {
    if (!value) continue;
    const dir = libDirOf(path.resolve(value));
    if (dir) return dir;
    if (what === "--lib") throw new ExtractError("lib-missing", `--lib ${value} is neither Nixpkgs' lib directory nor a Nixpkgs checkout (no default.nix and modules.nix)`);
    tried.push(`NIXPKGS_LIB=${value} (not a lib directory)`);
  }
  const found = await run(nix, [...nixStoreArgs(false), "--find-file", "nixpkgs/lib"], nixEnv(env));
  const fromNixPath = found.code === 0 ? libDirOf(found.stdout.trim()) : undefined;
  if (fromNixPath) return fromNixPath;
  tried.push("<nixpkgs/lib> on NIX_PATH (not found)");
  throw new ExtractError(
    "lib-missing",
    `Nixpkgs' lib was not found; tried ${tried.join(", ")}. Pass --lib PATH (a nixpkgs checkout or its lib/ directory, e.g. from github.com/nix-community/nixpkgs.lib), set NIXPKGS_LIB, or add nixpkgs to NIX_PATH`,
  );
}

// ---- the documentation pkgs stub ----------------------------------------------------------------

const PKGS_REF = /(?<![\w.'-])pkgs\.([A-Za-z_][\w'-]*(?:\.[A-Za-z_][\w'-]*)*)/g;
const WITH_PKGS = /\bwith\s+pkgs\s*;\s*\[([^\]]*)\]/g;
const PACKAGE_OPTION = /\bmkPackageOption\s+pkgs\s+(?:"([^"]+)"|\[([^\]]*)\])/g;
const IDENT = /(?<![\w.'"-])([A-Za-z_][\w'-]*(?:\.[A-Za-z_][\w'-]*)*)/g;

function nixFiles(root: string, out: string[] = []): string[] {
  let entries;
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name === ".git" || e.name === "node_modules") continue;
    const p = path.join(root, e.name);
    if (e.isDirectory()) nixFiles(p, out);
    else if (e.isFile() && e.name.endsWith(".nix")) out.push(p);
  }
  return out;
}

/**
 * Attribute paths of `pkgs` that the `.nix` files under `root` mention: `pkgs.a.b`, the names in
 * `with pkgs; [ ... ]`, and `mkPackageOption pkgs "name"`. Nix has no catch-all attribute, so the
 * stub can only provide packages it is told about. Sorted, unique.
 */
export function scanPackagePaths(root: string): string[] {
  const found = new Set<string>();
  const files = statSync(root).isDirectory() ? nixFiles(root) : [root];
  for (const file of files) {
    const text = readFileSync(file, "utf8").replace(/(^|\s)#.*$/gm, "$1");
    for (const m of text.matchAll(PKGS_REF)) found.add(m[1]!.replace(/\.$/, ""));
    for (const m of text.matchAll(WITH_PKGS)) for (const id of m[1]!.matchAll(IDENT)) found.add(id[1]!);
    for (const m of text.matchAll(PACKAGE_OPTION)) {
      if (m[1]) found.add(m[1]);
      else if (m[2]) found.add([...m[2].matchAll(/"([^"]+)"/g)].map((x) => x[1]).join("."));
    }
  }
  const keywords = new Set(["if", "then", "else", "let", "in", "with", "inherit", "rec", "or", "null", "true", "false", "import"]);
  return [...found].filter((p) => p && !keywords.has(p.split(".")[0]!)).sort();
}

// ---- evaluating ---------------------------------------------------------------------------------

export interface ExtractParams {
  /** A `.nix` file or directory: a module, a list of modules, or a `{ lib, pkgs }` function returning a list. */
  modules?: string;
  /** A flake reference with an optional `#attr` (default `nixosModules`). */
  flake?: string;
  namespace: string;
  /** Nixpkgs' lib directory (see findLib). */
  lib: string;
  /** Root that declarations are made relative to; default: the directory of `modules`, or the flake. */
  sourceRoot?: string;
  urlPrefix?: string;
  /** Declarations as `{ name, line }` objects even without `urlPrefix`. */
  withLines?: boolean;
  /** A Nixpkgs checkout for `pkgs.path` and the real `pkgs.formats` (optional). */
  nixpkgs?: string;
  /** File evaluating to a lib overlay `self: super: { ... }` applied before evaluation. */
  libOverlay?: string;
  /** `class` given to evalModules (e.g. nixos, homeManager, darwin). */
  class?: string;
  hostSystem?: string;
  /** Extra arguments for a collection function (`--entry-arg check=false`), as JSON values. */
  entryArgs?: Record<string, unknown>;
  includeModuleSystemOptions?: boolean;
  /** Extra package attribute paths for the stub, beside those scanned from the source. */
  packages?: string[];
  nix: string;
  env?: NodeJS.ProcessEnv;
  /** Receives one line per step (isolation of failures). */
  log?: (line: string) => void;
}

/** nix/extract.nix's result, after isolation. */
export interface ExtractResult {
  namespace: string;
  options: Record<string, Record<string, unknown>>;
  types: Record<string, unknown>;
  modules: ExtractedModule[];
  errors: ExtractErrorRecord[];
  stats: { evaluations: number; seconds: number };
}

export interface ExtractedModule {
  path: string;
  namespace: string;
  declares: string[];
  imports: string[];
  disabled: boolean;
  freeformTypes: Record<string, string>;
  contentHash: string | null;
  description?: string;
}

export interface ExtractErrorRecord {
  /** Option name, or `module #N (file)` for a module that could not be imported. */
  name: string;
  /** Fields of the option that failed (`default`, `example`, `entry`, `subOptions`), or `module`. */
  fields: string[];
  /** Nix's error message, when the failure was isolated in an evaluation of its own. */
  message?: string;
}

function nixString(s: string): string {
  return JSON.stringify(s).replace(/\$\{/g, "\\${");
}

/** The expression handed to nix-instantiate: reads its parameters from a JSON file. */
function driverExpression(p: ExtractParams, paramsFile: string): string {
  const flake = p.flake ? splitFlakeRef(p.flake) : undefined;
  const lines = [
    "let",
    `  params = builtins.fromJSON (builtins.readFile ${nixString(paramsFile)});`,
    `  lib = import ${nixString(p.lib)};`,
    flake ? `  flake = builtins.getFlake ${nixString(flake.ref)};` : "",
    "in",
    `import ${nixString(EXTRACT_NIX)} (removeAttrs params [ "entryPath" ] // {`,
    "  inherit lib;",
    p.modules ? "  entry = /. + params.entryPath;" : "",
    p.libOverlay ? `  libOverlay = import ${nixString(path.resolve(p.libOverlay))};` : "",
    flake ? `  moduleSet = flake.${flake.attr.map((a) => nixString(a)).join(".")}; sourceRoot = params.sourceRoot or flake.outPath;` : "",
    "})",
  ];
  return lines.filter(Boolean).join("\n");
}

export function splitFlakeRef(ref: string): { ref: string; attr: string[] } {
  const hash = ref.indexOf("#");
  let base = hash < 0 ? ref : ref.slice(0, hash);
  const attr = hash < 0 || hash === ref.length - 1 ? ["nixosModules"] : ref.slice(hash + 1).split(".");
  // A plain directory becomes a path: flake (no git needed, untracked files included).
  if (!/^[a-z+]+:/.test(base) && existsSync(base)) base = `path:${path.resolve(base)}`;
  return { ref: base, attr };
}

interface EvalOutcome<T> {
  ok: boolean;
  value?: T;
  error?: string;
}

/**
 * The attribute a failed evaluation found missing in `pkgs`, when the failing source line reads
 * it from `pkgs` (`pkgs.${name}`, `pkgs.foo`); undefined for any other error.
 */
export function missingPackage(error: string | undefined): string | undefined {
  const m = error && /attribute '([^']+)' missing[\s\S]*?\n\s*(\d+)\|([^\n]*)\n\s*\|\s*\^/.exec(error);
  if (!m) return undefined;
  return /\bpkgs\s*\.\s*(\$\{|[A-Za-z_])/.test(m[3]!) ? m[1] : undefined;
}

/** Nix's message without the trace noise: the last `error:` paragraph. */
export function nixErrorMessage(stderr: string): string {
  const text = stderr.replace(/\x1b\[[0-9;]*m/g, "").trim();
  const idx = text.lastIndexOf("error:");
  const tail = (idx >= 0 ? text.slice(idx) : text).replace(/\n?\(use '--show-trace' to show detailed location information\)/, "");
  return tail.split("\n").slice(0, 12).join("\n").trim() || "evaluation failed";
}

async function evaluate<T>(p: ExtractParams, extra: Record<string, unknown>, counter: { n: number }): Promise<EvalOutcome<T>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nixdocs-extract-"));
  try {
    const paramsFile = path.join(dir, "params.json");
    const modulesPath = p.modules ? path.resolve(p.modules) : undefined;
    const sourceRoot = p.sourceRoot
      ? path.resolve(p.sourceRoot)
      : modulesPath
        ? statSync(modulesPath).isDirectory()
          ? modulesPath
          : path.dirname(modulesPath)
        : undefined;
    const scanned = p.flake ? [] : sourceRoot ? scanPackagePaths(sourceRoot) : [];
    const params: Record<string, unknown> = {
      namespace: p.namespace,
      packagePaths: [...new Set([...scanned, ...(p.packages ?? [])])].sort(),
      hostSystem: p.hostSystem ?? "x86_64-linux",
      includeModuleSystemOptions: p.includeModuleSystemOptions ?? true,
      entryArgs: p.entryArgs ?? {},
      ...extra,
    };
    if (modulesPath) params.entryPath = modulesPath;
    if (sourceRoot) params.sourceRoot = sourceRoot;
    if (p.urlPrefix) params.urlPrefix = p.urlPrefix;
    if (p.withLines) params.withLines = true;
    if (p.nixpkgs) params.nixpkgsPath = path.resolve(p.nixpkgs);
    if (p.class) params.class = p.class;
    await writeFile(paramsFile, JSON.stringify(params));
    const args = [...nixStoreArgs(Boolean(p.flake)), "--eval", "--strict", "--json"];
    if (p.flake) args.push("--extra-experimental-features", "nix-command flakes");
    args.push("-E", driverExpression(p, paramsFile));
    counter.n++;
    const r = await run(p.nix, args, nixEnv(p.env));
    if (r.code !== 0) return { ok: false, error: nixErrorMessage(r.stderr) };
    try {
      return { ok: true, value: JSON.parse(r.stdout) as T };
    } catch (err) {
      return { ok: false, error: `nix-instantiate printed no JSON: ${(err as Error).message}` };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type FullOutput = Omit<ExtractResult, "stats">;

/**
 * Evaluate a collection. One evaluation normally suffices: options whose documentation throws are
 * caught inside Nix and listed in `errors`. When the evaluation as a whole fails (an error
 * `tryEval` cannot catch), the failing options are found by halving the option list, and modules
 * that cannot be imported by halving the module list; each is reported with Nix's message and left
 * out, and the rest comes out.
 */
export async function extract(params: ExtractParams): Promise<ExtractResult> {
  let p = params;
  const started = performance.now();
  const counter = { n: 0 };
  const log = p.log ?? (() => {});
  if (!p.modules === !p.flake) throw new ExtractError("usage", "give exactly one of --modules PATH and --flake REF");
  if (p.modules && !existsSync(p.modules)) throw new ExtractError("usage", `--modules ${p.modules} does not exist`);
  const ns = namespaceName.safeParse(p.namespace);
  if (!ns.success) throw new ExtractError("usage", `invalid namespace ${JSON.stringify(p.namespace)}: ${ns.error.issues[0]?.message}`);

  // Packages reached through computed names (`pkgs.${name}`) cannot be found by reading the
  // source; Nix names them when they are missing, so add them and evaluate again.
  p = { ...p, packages: [...(p.packages ?? [])] };
  const learnPackage = (error: string | undefined): boolean => {
    const name = missingPackage(error);
    if (!name || p.packages!.includes(name) || p.packages!.length > 200) return false;
    p.packages!.push(name);
    log(`pkgs.${name} is reached through a computed name; adding it to the documentation pkgs`);
    return true;
  };
  let first = await evaluate<FullOutput>(p, {}, counter);
  while (!first.ok && learnPackage(first.error)) first = await evaluate<FullOutput>(p, {}, counter);
  let output: FullOutput;
  const errors: ExtractErrorRecord[] = [];
  if (first.ok) {
    output = first.value!;
  } else {
    log(`evaluation failed; isolating the failure:\n${first.error}`);
    // Modules that cannot even be imported: find them by the shortest failing prefix.
    const exclude: number[] = [];
    let names = await evaluate<{ names: string[]; modules: number }>(p, { mode: "names" }, counter);
    if (!names.ok) {
      const count = await evaluate<string[]>(p, { mode: "count" }, counter);
      const labels = count.ok ? count.value! : [];
      const total = labels.length;
      if (!total) throw new ExtractError("evaluation", `the collection does not evaluate:\n${first.error}`);
      while (!names.ok) {
        // Smallest k such that modules [0, k) minus `exclude` fail to list their options.
        let lo = 1;
        let hi = total;
        const prefixFails = async (k: number) => {
          const out = [...exclude, ...Array.from({ length: total - k }, (_, i) => k + i)];
          return !(await evaluate(p, { mode: "names", exclude: out }, counter)).ok;
        };
        if (!(await prefixFails(total))) break;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (await prefixFails(mid)) hi = mid;
          else lo = mid + 1;
        }
        const culprit = lo - 1;
        const alone = await evaluate(p, { mode: "names", exclude: [...exclude, ...Array.from({ length: total }, (_, i) => i).filter((i) => i > culprit)] }, counter);
        exclude.push(culprit);
        const label = `module #${culprit} (${labels[culprit]})`;
        errors.push({ name: label, fields: ["module"], message: alone.error });
        log(`${label} fails to evaluate; leaving it out`);
        names = await evaluate<{ names: string[]; modules: number }>(p, { mode: "names", exclude }, counter);
        if (exclude.length >= total) break;
      }
      if (!names.ok) throw new ExtractError("evaluation", `the collection does not evaluate even without its failing modules:\n${names.error}`);
    }
    const all = names.value!.names;
    // Halve the option list until every failing option stands alone.
    const good: string[][] = [];
    const bad: string[] = [];
    const queue: string[][] = [all];
    while (queue.length) {
      const chunk = queue.shift()!;
      const r = await evaluate<FullOutput>(p, { only: chunk, exclude }, counter);
      if (r.ok) good.push(chunk);
      else if (learnPackage(r.error)) queue.unshift(chunk);
      else if (chunk.length === 1) {
        bad.push(chunk[0]!);
        errors.push({ name: chunk[0]!, fields: ["entry"], message: r.error });
        log(`option ${chunk[0]} fails to evaluate; leaving it out`);
      } else {
        const mid = chunk.length >> 1;
        queue.unshift(chunk.slice(0, mid), chunk.slice(mid));
      }
    }
    const final = await evaluate<FullOutput>(p, { only: good.flat(), exclude }, counter);
    if (!final.ok) throw new ExtractError("evaluation", `evaluation failed again after leaving out ${bad.length} options:\n${final.error}`);
    output = final.value!;
  }
  // Options that threw inside Nix: ask Nix for the message, one evaluation each (a few at most).
  for (const e of output.errors.slice(0, 20)) {
    if (e.name.startsWith("module #")) continue;
    const r = await evaluate<FullOutput>(p, { only: [e.name], strictErrors: true }, counter);
    if (!r.ok) e.message = r.error;
  }
  return {
    ...output,
    errors: [...errors, ...output.errors],
    modules: output.modules.map((m) => ({ ...m, description: describeModule(p, m.path) })),
    stats: { evaluations: counter.n, seconds: (performance.now() - started) / 1000 },
  };
}

/** The leading `#` comment of a module file, as its description (empty when there is none). */
function describeModule(p: ExtractParams, modulePath: string): string {
  const root = p.sourceRoot ?? (p.modules ? (statSync(p.modules).isDirectory() ? p.modules : path.dirname(p.modules)) : undefined);
  if (!root || modulePath.startsWith("<")) return "";
  let file = path.join(root, modulePath);
  try {
    if (statSync(file).isDirectory()) file = path.join(file, "default.nix");
    const lines: string[] = [];
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const m = /^\s*#\s?(.*)$/.exec(line);
      if (!m) break;
      lines.push(m[1]!);
    }
    return lines.join("\n").trim();
  } catch {
    return "";
  }
}

// ---- validating and preparing the upload -----------------------------------------------------------

/**
 * Validate the extracted options with the ingest API's own schema (`normalizeOptionsJson`) and turn
 * the result into a `PreparedImport` for ingest-lib's `sendPrepared`. Options are grouped into
 * modules exactly as `npm run ingest` groups an options.json (`groupIntoModules`), so both paths
 * give the same module paths; the module records add what an options.json lacks: imports, a
 * description, and `meta` (content hash, freeform types, disabled).
 */
export function prepareExtract(result: ExtractResult, file = "<extract>"): PreparedImport {
  const started = performance.now();
  const normalized = normalizeOptionsJson(result.options);
  if ("issues" in normalized) {
    throw new ExtractError("invalid-output", `the extracted options do not pass the ingest schema:\n${normalized.issues.map((i) => `  - ${i.path.join(" › ")}: ${i.message}`).join("\n")}`);
  }
  const base = prepareOptions(result.options, result.namespace, file);
  const records = new Map(result.modules.map((m) => [m.path, m]));
  const modules: PreparedModule[] = base.modules.map((m) => {
    const rec = records.get(m.path);
    if (!rec) return m;
    const { options } = JSON.parse(m.json) as { options: Record<string, unknown> };
    const json = JSON.stringify({
      path: m.path,
      description: rec.description ?? "",
      imports: rec.imports.filter((i) => modulePath.safeParse(i).success),
      meta: moduleMeta(rec),
      options,
    });
    return { ...m, json, bytes: Buffer.byteLength(json) };
  });
  // Modules that declare no documented option still carry the import graph (a collection's entry
  // file, directories that only import others, deprecation modules).
  const carried = new Set(modules.map((m) => m.path));
  for (const rec of result.modules) {
    if (carried.has(rec.path) || !modulePath.safeParse(rec.path).success) continue;
    const json = JSON.stringify({
      path: rec.path,
      description: rec.description ?? "",
      imports: rec.imports.filter((i) => modulePath.safeParse(i).success),
      meta: moduleMeta(rec),
      options: {},
    });
    modules.push({ path: rec.path, json, bytes: Buffer.byteLength(json), options: 0 });
    carried.add(rec.path);
  }
  modules.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { ...base, modules, prepareMs: performance.now() - started };
}

function moduleMeta(m: ExtractedModule): Record<string, unknown> {
  const meta: Record<string, unknown> = { declares: m.declares.length };
  if (m.contentHash) meta.contentHash = m.contentHash;
  if (Object.keys(m.freeformTypes).length) meta.freeformTypes = m.freeformTypes;
  if (m.disabled) meta.disabled = true;
  return meta;
}

/** What `--out` writes: everything but the run's statistics. */
export function extractionDocument(r: ExtractResult): Record<string, unknown> {
  return { namespace: r.namespace, options: r.options, types: r.types, modules: r.modules, errors: r.errors };
}

/** Keep the `IngestError` type reachable for callers that catch both. */
export { IngestError };

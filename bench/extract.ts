/**
 * `npm run bench:extract -- --home-manager DIR --lib DIR --nixpkgs DIR`
 *
 * Extracts Home Manager's option documentation with `npm run extract` (as its documentation build
 * evaluates it: modules/modules.nix, check = false, class homeManager, the lib extension of
 * bench/home-manager/lib-overlay.nix), measures wall time and peak memory (GNU time's maximum
 * resident set size over the command and its nix-instantiate children), and compares the result
 * option for option with ../shared/data/home-manager-options.json.gz: names, types, defaults,
 * examples, descriptions, declarations, loc, readOnly, relatedPackages.
 *
 * Use the Home Manager and lib revisions the data README names. `--nixpkgs` is a directory with
 * the few Nixpkgs files Home Manager imports through `pkgs.path` (nixos/modules/misc/assertions.nix,
 * nixos/modules/misc/meta.nix, modules/generic/meta-maintainers.nix,
 * nixos/modules/system/service/systemd/service.nix, lib/). `--skip-extract FILE` compares an
 * existing options.json instead of extracting.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DATA_DIR = process.env.NIXDOCS_DATA_DIR ?? path.resolve(ROOT, "../shared/data");

const { values } = parseArgs({
  options: {
    "home-manager": { type: "string" },
    lib: { type: "string" },
    nixpkgs: { type: "string" },
    "skip-extract": { type: "string" },
    examples: { type: "string", default: "3" },
  },
});

type Entry = Record<string, unknown>;
const FIELDS = ["type", "default", "example", "description", "declarations", "loc", "readOnly", "relatedPackages"] as const;

let ours: Record<string, Entry>;
let outFile = values["skip-extract"];
if (!outFile) {
  const hm = values["home-manager"];
  if (!hm || !values.lib || !values.nixpkgs) {
    process.stderr.write("usage: node bench/extract.ts --home-manager DIR --lib DIR --nixpkgs DIR | --skip-extract OPTIONS_JSON\n");
    process.exit(2);
  }
  outFile = path.join(os.tmpdir(), `nixdocs-hm-options-${process.pid}.json`);
  const command = [
    process.execPath,
    "src/cli/extract.ts",
    "--modules", path.join(hm, "modules/modules.nix"),
    "--source-root", hm,
    "--namespace", "home-manager",
    "--lib", values.lib,
    "--nixpkgs", values.nixpkgs,
    "--lib-overlay", "bench/home-manager/lib-overlay.nix",
    "--class", "homeManager",
    "--entry-arg", "check=false",
    "--options-json", outFile,
  ];
  const gnuTime = existsSync("/usr/bin/time") ? ["/usr/bin/time", "-f", "BENCH wall=%e s maxrss=%M KiB"] : [];
  process.stderr.write(`$ HOME_MANAGER_SRC=${hm} ${[...gnuTime, ...command].join(" ")}\n`);
  const started = performance.now();
  const r = spawnSync(gnuTime[0] ?? command[0]!, [...gnuTime.slice(1), ...(gnuTime.length ? command : command.slice(1))], {
    cwd: ROOT,
    env: { ...process.env, HOME_MANAGER_SRC: hm },
    encoding: "utf8",
  });
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(r.stderr);
  if (r.status !== 0) process.exit(r.status ?? 1);
  const measured = /BENCH wall=([\d.]+) s maxrss=(\d+) KiB/.exec(r.stderr);
  const nixVersion = execFileSync("nix-instantiate", ["--version"], { encoding: "utf8" }).trim();
  console.log(`extraction: ${seconds.toFixed(1)} s wall${measured ? `, peak RSS ${(Number(measured[2]) / 1024).toFixed(0)} MiB (largest process: node or nix-instantiate)` : ""}; ${nixVersion}; ${os.cpus().length} CPUs`);
}
ours = JSON.parse(readFileSync(outFile, "utf8"));
const reference: Record<string, Entry> = JSON.parse(gunzipSync(readFileSync(path.join(DATA_DIR, "home-manager-options.json.gz"))).toString("utf8"));

const names = new Set([...Object.keys(reference), ...Object.keys(ours)]);
const onlyReference = [...names].filter((n) => !(n in ours)).sort();
const onlyOurs = [...names].filter((n) => !(n in reference)).sort();
const common = [...names].filter((n) => n in ours && n in reference);
const limit = Number(values.examples);

console.log(`options: reference ${Object.keys(reference).length}, extracted ${Object.keys(ours).length}, in both ${common.length}`);
console.log(`only in the reference: ${onlyReference.length}${onlyReference.length ? ` (e.g. ${onlyReference.slice(0, limit).join(", ")})` : ""}`);
console.log(`only extracted: ${onlyOurs.length}${onlyOurs.length ? ` (e.g. ${onlyOurs.slice(0, limit).join(", ")})` : ""}`);
let identical = 0;
const differing: Record<string, string[]> = Object.fromEntries(FIELDS.map((f) => [f, []]));
for (const name of common) {
  let same = true;
  for (const f of FIELDS) {
    if (JSON.stringify(reference[name]![f]) !== JSON.stringify(ours[name]![f])) {
      differing[f]!.push(name);
      same = false;
    }
  }
  if (same) identical++;
}
console.log(`identical entries: ${identical} of ${common.length}`);
for (const f of FIELDS) {
  const list = differing[f]!;
  console.log(`${f}: ${common.length - list.length} equal, ${list.length} different`);
  for (const name of list.slice(0, limit)) {
    const show = (v: unknown) => (JSON.stringify(v) ?? "(absent)").slice(0, 160);
    console.log(`  ${name}\n    reference: ${show(reference[name]![f])}\n    extracted: ${show(ours[name]![f])}`);
  }
}

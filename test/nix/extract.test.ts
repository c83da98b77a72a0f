/**
 * nix/extract.nix and `npm run extract`, against fixture collections written for these tests
 * (test/nix/fixtures) and golden output (test/nix/golden, rewritten only by `npm run golden:nix`).
 *
 * Parse checks and the command's errors need Nix only. Evaluation needs Nixpkgs' lib from
 * NIXPKGS_LIB or <nixpkgs/lib>; without it those tests are skipped, with the reason printed.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ExtractError, extract, findLib, nixStoreArgs, prepareExtract, scanPackagePaths, type ExtractResult } from "../../src/cli/extract-lib.ts";
import { checkPrepared } from "../../src/cli/ingest-lib.ts";
import { normalizeModules } from "../../src/shared/schemas.ts";
import { extractFixture, FIXTURES, fixtureParams, goldenFile, goldenText, libForTests, nixFilesOfRepo, nixOrUndefined, ROOT } from "./helpers.ts";

const nix = nixOrUndefined();
const { lib, reason } = await libForTests();
if (!lib) console.warn(`[nix tests] evaluation tests skipped: ${reason}`);

/** Node 22 runs the .ts command directly. */
function nodeBinary(): string {
  if (Number(process.versions.node.split(".")[0]) >= 22) return process.execPath;
  return path.join(ROOT, "node_modules/.bin/node");
}

function runExtract(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(nodeBinary(), ["src/cli/extract.ts", ...args], { cwd: ROOT, env, encoding: "utf8" }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("every .nix file parses", () => {
  it("has Nix to check with (.ci/run installs nix-bin)", () => {
    expect(nix, "nix-instantiate not found: install Nix (apt-get install nix-bin)").toBeDefined();
  });
  const files = nixFilesOfRepo();
  it("covers nix/ and the fixtures", () => {
    expect(files.some((f) => f.endsWith("nix/extract.nix"))).toBe(true);
    expect(files.some((f) => f.endsWith("nix/docs-pkgs.nix"))).toBe(true);
    expect(files.filter((f) => f.includes("test/nix/fixtures")).length).toBeGreaterThan(8);
  });
  it.each(files.map((f) => [path.relative(ROOT, f)]))("%s", (file) => {
    expect(() => execFileSync(nix!, [...nixStoreArgs(false), "--parse", path.join(ROOT, file)], { stdio: "pipe" })).not.toThrow();
  });
});

describe("npm run extract: errors", () => {
  it("says Nix is missing, with exit status 3", async () => {
    const r = await runExtract(["--modules", "test/nix/fixtures/collection/modules.nix", "--namespace", "x"], { PATH: "/nonexistent", HOME: os.tmpdir() });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/nix-instantiate was not found on PATH.*apt-get install nix-bin/);
  });

  it.skipIf(!nix)("says lib is missing, with exit status 3 and what it tried", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, NIX_PATH: "", HOME: mkdtempSync(path.join(os.tmpdir(), "nixdocs-home-")) };
    delete env.NIXPKGS_LIB;
    const r = await runExtract(["--modules", "test/nix/fixtures/collection/modules.nix", "--namespace", "x"], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/Nixpkgs' lib was not found; tried <nixpkgs\/lib> on NIX_PATH/);
    expect(r.stderr).toMatch(/--lib PATH/);
  });

  it.skipIf(!nix)("refuses a --lib that is not lib", async () => {
    const r = await runExtract(["--modules", "test/nix/fixtures/collection/modules.nix", "--namespace", "x", "--lib", "test"], process.env);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/--lib \S*test is neither Nixpkgs' lib directory nor a Nixpkgs checkout/);
  });

  it("refuses bad usage with exit status 2", async () => {
    const none = await runExtract(["--namespace", "x"], process.env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/exactly one of --modules PATH and --flake REF/);
    const noNs = await runExtract(["--modules", "test/nix/fixtures/collection/modules.nix"], process.env);
    expect(noNs.code).toBe(2);
    expect(noNs.stderr).toMatch(/--namespace NS is required/);
  });

  it.skipIf(!lib)("refuses an invalid namespace before evaluating", async () => {
    await expect(extract(fixtureParams("collection", lib!, { namespace: "Not Valid" }))).rejects.toThrow(ExtractError);
  });
});

describe("the documentation pkgs stub is told which packages the source mentions", () => {
  it("finds pkgs.a.b, with pkgs; [ ... ] and mkPackageOption pkgs", () => {
    const found = scanPackagePaths(path.join(FIXTURES, "collection"));
    expect(found).toEqual(expect.arrayContaining(["editor-bin", "ripgrep", "fd", "formats.toml", "writeShellScript"]));
    expect(found).not.toContain("with");
  });
});

describe.skipIf(!lib)("extracting the fixture collection", () => {
  let result: ExtractResult;
  beforeAll(async () => {
    result = await extractFixture("collection", lib!);
  });

  it("matches the golden output (npm run golden:nix rewrites it)", () => {
    expect(goldenText(result)).toBe(readFileSync(goldenFile("collection"), "utf8"));
  });

  it("writes options.json entries as nixosOptionsDoc does", () => {
    const enable = result.options["programs.editor.enable"]!;
    expect(enable).toEqual({
      declarations: ["programs/editor.nix"],
      default: { _type: "literalExpression", text: "false" },
      example: { _type: "literalExpression", text: "true" },
      description: "Whether to enable the editor.",
      loc: ["programs", "editor", "enable"],
      readOnly: false,
      type: "boolean",
    });
    // Internal and invisible options, and renamed/removed ones (invisible), are left out.
    for (const hidden of ["programs.editor.secretToken", "programs.editor.invisible", "programs.editor.tabSize", "programs.editor.legacyMode"]) {
      expect(result.options).not.toHaveProperty([hidden]);
    }
    expect(result.options["programs.editor.undocumented"]!.description).toBe("This option has no description.");
    expect(result.options["programs.editor.plugin"]!.example).toEqual({ _type: "literalMD", text: "A plugin set, see the editor's manual." });
    expect(result.options["services.web.listen"]!.declarations).toEqual(["services/web"]);
  });

  it("renders pkgs references through the documentation stub", () => {
    expect(result.options["programs.editor.launcher"]!.default).toEqual({ _type: "literalExpression", text: '"\\${pkgs.editor-bin}/bin/editor --wait"' });
    expect(result.options["programs.editor.package"]!.default).toEqual({ _type: "literalExpression", text: "pkgs.editor-bin" });
    expect(result.options["programs.editor.wrapper"]!.default).toEqual({ _type: "literalExpression", text: "<derivation editor-wrapper>" });
    expect(result.options["programs.editor.extraPackages"]!.relatedPackages).toContain("[`pkgs.nodePackages.prettier`](");
  });

  it("names submodule entries with <name> and *, and quotes segments holding dots", () => {
    expect(Object.keys(result.options)).toEqual(
      expect.arrayContaining([
        "services.web.virtualHosts.<name>.serverName",
        "services.web.virtualHosts.<name>.locations.*.proxyPass",
        'targets.defaults."com.example.Editor"."Window.restoreState"',
      ]),
    );
    expect(result.options['targets.defaults."com.example.Editor"."Window.restoreState"']!.loc).toEqual(["targets", "defaults", "com.example.Editor", "Window.restoreState"]);
  });

  it("gives the structure of every kind of type", () => {
    const t = result.types as Record<string, Record<string, unknown>>;
    expect(t["programs.editor.theme"]).toMatchObject({ kind: "enum", values: ["light", "dark", "auto"] });
    expect(t["programs.editor.backupDir"]).toMatchObject({ kind: "strMatching", pattern: "^/.*[^/]$" });
    expect(t["programs.editor.fontSize"]).toMatchObject({ kind: "nullOr", elemType: { kind: "either", members: [{ name: "int" }, { name: "float" }] } });
    expect(t["programs.editor.keymap"]).toMatchObject({ kind: "either", members: [{ name: "str" }, { name: "path" }, { kind: "listOf", elemType: { name: "str" } }] });
    expect(t["programs.editor.extraPackages"]).toMatchObject({ kind: "listOf", elemType: { name: "package" } });
    expect(t["programs.editor.history"]).toMatchObject({ name: "coercedTo", nested: { coercedType: { name: "int" }, finalType: { kind: "attrsOf" } } });
    expect(t["programs.editor.plugin"]).toEqual({ kind: "other", name: "editorPlugin", description: "editor plugin specification" });
    expect(t["services.web.virtualHosts"]).toMatchObject({
      kind: "attrsOf",
      elemType: { kind: "submodule" },
      subOptions: expect.arrayContaining(["services.web.virtualHosts.<name>.root", "services.web.virtualHosts.<name>.locations"]),
    });
    expect(t["services.web.virtualHosts.<name>.locations"]).toMatchObject({ kind: "listOf", elemType: { kind: "submodule" } });
    // Freeform settings: the open submodule's freeform type, recursive where TOML is.
    expect(t["programs.editor.settings"]).toMatchObject({ kind: "submodule", description: "open submodule of (TOML value)", freeformType: { description: "TOML value", kind: "either" } });
    expect(JSON.stringify(t["programs.editor.settings"])).toContain('"kind":"recursive"');
  });

  it("reports an option whose default throws, with Nix's message, and documents the rest", () => {
    expect(result.errors).toEqual([{ name: "services.web.port", fields: ["default"], message: "error: services.web.port has no default: set it" }]);
    expect(result.options).not.toHaveProperty(["services.web.port"]);
    expect(result.options).toHaveProperty(["services.web.listen"]);
  });

  it("emits module records with declared options, imports, freeform types and content hashes", () => {
    const web = result.modules.find((m) => m.path === "services/web")!;
    expect(web).toMatchObject({ namespace: "fixture-collection", imports: ["services/web/tls.nix"], disabled: false });
    expect(web.declares).toContain("services.web.virtualHosts.<name>.locations.*.path");
    expect(web.contentHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(web.description).toMatch(/^A web service imported as a directory/);
    const settings = result.modules.find((m) => m.path === "settings.nix")!;
    expect(settings.freeformTypes).toEqual({ "programs.editor.settings": "TOML value" });
    expect(result.modules.map((m) => m.path)).toEqual(expect.arrayContaining(["programs/editor.nix", "deprecations.nix", "darwin-defaults.nix"]));
  });

  it("passes the ingest API's schemas and becomes module batches with imports and meta", () => {
    const prepared = prepareExtract(result);
    expect(() => checkPrepared(prepared)).not.toThrow();
    const batch = JSON.parse(`{"modules":[${prepared.modules.map((m) => m.json).join(",")}]}`);
    const normalized = normalizeModules(batch);
    if ("issues" in normalized) throw new Error(JSON.stringify(normalized.issues));
    const web = normalized.modules.find((m) => m.path === "services/web")!;
    expect(web.imports).toEqual(["services/web/tls.nix"]);
    expect(web.meta).toMatchObject({ contentHash: expect.stringMatching(/^sha256:/) });
    expect(normalized.modules.flatMap((m) => m.options).length).toBe(Object.keys(result.options).length);
  });

  it("uploads modules without documented options as records of their own", () => {
    const prepared = prepareExtract(result);
    const deprecations = prepared.modules.find((m) => m.path === "deprecations.nix");
    expect(deprecations && JSON.parse(deprecations.json)).toMatchObject({ path: "deprecations.nix", description: "Renamed and removed options.", options: {} });
  });

  it("refuses output the ingest schema rejects, naming the option", () => {
    const broken = { ...result, options: { ...result.options, "programs.editor.theme": { ...result.options["programs.editor.theme"]!, type: 42 } } };
    expect(() => prepareExtract(broken)).toThrow(/do not pass the ingest schema:\n {2}- programs\.editor\.theme › type/);
  });

  it("gives declarations line numbers, and URLs with a URL prefix", async () => {
    const withUrls = await extractFixture("collection", lib!, { urlPrefix: "https://example.org/src/" });
    expect(withUrls.options["programs.editor.tabWidth"]!.declarations).toEqual([{ name: "programs/editor.nix", url: "https://example.org/src/programs/editor.nix#L13", line: 13 }]);
    expect(withUrls.options["services.web.listen"]!.declarations).toEqual([{ name: "services/web", url: "https://example.org/src/services/web#L51", line: 51 }]);
    const withLines = await extractFixture("collection", lib!, { withLines: true });
    expect(withLines.options["programs.editor.tabWidth"]!.declarations).toEqual([{ name: "programs/editor.nix", line: 13 }]);
    expect(() => prepareExtract(withLines)).not.toThrow();
  });
});

describe.skipIf(!lib)("error recovery", () => {
  it("isolates a module that cannot be imported and an option whose evaluation aborts", async () => {
    const result = await extractFixture("broken", lib!);
    expect(goldenText(result)).toBe(readFileSync(goldenFile("broken"), "utf8"));
    expect(Object.keys(result.options).sort()).toEqual(["bad.fine", "good.enable", "good.name"]);
    expect(result.errors.map((e) => [e.name, e.fields])).toEqual([
      ["module #2 (throws.nix)", ["module"]],
      ["bad.missing", ["entry"]],
    ]);
    expect(result.errors[1]!.message).toMatch(/attribute 'notThere' missing/);
  });
});

describe.skipIf(!lib || !nix)("flakes", () => {
  it("documents a flake's nixosModules", async () => {
    const result = await extract({ flake: path.join(FIXTURES, "flake"), namespace: "fixture-flake", lib: lib!, nix: nix!, includeModuleSystemOptions: false });
    expect(Object.keys(result.options).sort()).toEqual(["services.flaky.enable", "services.flaky.user", "services.inline.enable"]);
    expect(result.options["services.flaky.user"]!.declarations).toEqual(["module.nix"]);
    expect(result.options["services.inline.enable"]!.declarations).toEqual(["flake.nix#inline"]);
  });
});

describe("lib discovery", () => {
  it.skipIf(!lib)("accepts a Nixpkgs checkout or its lib directory", async () => {
    expect(await findLib(lib!, nix!)).toBe(lib);
    expect(await findLib(path.dirname(lib!), nix!)).toBe(lib);
    expect(existsSync(path.join(lib!, "modules.nix"))).toBe(true);
  });
});

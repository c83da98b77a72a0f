/**
 * nix/usage-modules.nix, the function the NixOS reporter (nix/usage-reporter.nix) uses to turn a
 * host's evaluated options into the module references it reports. It uses builtins only, so it is
 * evaluated here with plain `nix-instantiate` on hand-made option trees (no Nixpkgs needed).
 * Both files are parse-checked with every other .nix file by extract.test.ts.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { moduleRef } from "../../src/shared/telemetry.ts";
import { nixOrUndefined, ROOT } from "./helpers.ts";

const nix = nixOrUndefined();
const usageModules = path.join(ROOT, "nix/usage-modules.nix");

/** Evaluates a Nix expression strictly (nothing written, no NIX_PATH) to its JSON value. */
function evalJson(expr: string): unknown {
  const out = execFileSync(nix!, ["--eval", "--strict", "--json", "--readonly-mode", "-E", expr], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NIX_PATH: "" },
  });
  return JSON.parse(out);
}

describe.skipIf(!nix)("the usage reporter's module list", () => {
  it("holds the modules declaring enable options that are true, under the known source roots", () => {
    const src = "/nix/store/0000000000000000000000000000000a-source";
    const sops = "/nix/store/0000000000000000000000000000000b-source";
    const expr = `
      let
        opt = value: declarations: { _type = "option"; isDefined = true; inherit value declarations; };
        undefined = { _type = "option"; isDefined = false; value = throw "no value"; declarations = [ "${src}/nixos/modules/undefined.nix" ]; };
      in import ${usageModules} {
        options = {
          services.openssh.enable = opt true [ "${src}/nixos/modules/services/networking/ssh/sshd.nix" ];
          services.openssh.ports = opt [ 22 ] [ "${src}/nixos/modules/services/networking/ssh/sshd.nix" ];
          services.nginx.enable = opt false [ "${src}/nixos/modules/services/web-servers/nginx/default.nix" ];
          services.broken.enable = opt (throw "fails to evaluate") [ "${src}/nixos/modules/broken.nix" ];
          services.undefined.enable = undefined;
          services.deep.nested.enable = opt true [ "${src}/nixos/modules/deep.nix" "${src}/nixos/modules/deep-extra.nix" ];
          sops.enable = opt true [ "${sops}/modules/sops" ];
          elsewhere.enable = opt true [ "/etc/nixos/local.nix" ];
          throwing = throw "a subtree that fails";
          _module.args = opt {} [ "${src}/lib/modules.nix" ];
        };
        sources = { nixos = "${src}"; sops-nix = "${sops}"; };
        extraModules = [ "home-manager:modules/programs/git.nix" "sops-nix:modules/sops" ];
      }`;
    const modules = evalJson(expr) as string[];
    expect(modules).toEqual([
      "home-manager:modules/programs/git.nix",
      "nixos:nixos/modules/deep-extra.nix",
      "nixos:nixos/modules/deep.nix",
      "nixos:nixos/modules/services/networking/ssh/sshd.nix",
      "sops-nix:modules/sops",
    ]);
    // Every reference is one the telemetry API accepts.
    for (const m of modules) expect(moduleRef.safeParse(m).success, m).toBe(true);
  });

  it("is capped at the server's limit per report", () => {
    const expr = `import ${usageModules} {
      options = {}; sources = {}; maxModules = 3;
      extraModules = builtins.genList (i: "nixos:m" + toString i + ".nix") 10;
    }`;
    expect(evalJson(expr)).toHaveLength(3);
  });
});

/**
 * The NixOS module itself, evaluated with builtins and a small stand-in for Nixpkgs' lib and pkgs
 * (no Nixpkgs here): `mkIf` keeps its value when true, option declarations are returned as given.
 */
function evalModule(settings: { url: string; allowInsecure?: boolean }, select: string): unknown {
  const cfg = `{ enable = true; url = ${JSON.stringify(settings.url)}; allowInsecure = ${settings.allowInsecure ? "true" : "false"};
    apiKeyFile = "/run/secrets/key"; interval = "daily"; environment = "production"; extraModules = [ ]; sources = { }; }`;
  const expr = `
    let
      lib = {
        inherit (builtins) elem;
        hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
        mkEnableOption = d: { description = d; };
        mkOption = o: o;
        mkIf = c: v: if c then v else { };
        getExe = d: d.text;
        literalExpression = x: x;
        types = { str = "str"; bool = "bool"; path = "path"; strMatching = r: r; listOf = t: t; attrsOf = t: t; coercedTo = a: f: b: b; };
      };
      pkgs = {
        writeText = name: text: "/nix/store/0000000000000000000000000000000a-" + name;
        writeShellApplication = a: a;
        path = "/nix/store/0000000000000000000000000000000b-nixpkgs";
        coreutils = null; curl = null; jq = null;
        stdenv.hostPlatform.system = "x86_64-linux";
      };
      m = import ${path.join(ROOT, "nix/usage-reporter.nix")} { inherit lib pkgs; options = { }; config.services.nixdocs-reporter = ${cfg}; };
    in ${select}`;
  return evalJson(expr);
}

describe.skipIf(!nix)("the usage reporter's NixOS module", () => {
  it("refuses an http:// URL (the key would travel in clear text) unless allowInsecure is set", () => {
    const assertions = "map (a: a.assertion) m.config.assertions";
    expect(evalModule({ url: "https://nixdocs.example.org" }, assertions)).toEqual([true]);
    expect(evalModule({ url: "http://nixdocs.example.org" }, assertions)).toEqual([false]);
    expect(evalModule({ url: "http://localhost:8787", allowInsecure: true }, assertions)).toEqual([true]);
    const [message] = evalModule({ url: "http://nixdocs.example.org" }, "map (a: a.message) m.config.assertions") as string[];
    expect(message).toContain("clear text");
    expect(message).toContain("allowInsecure");
    expect(evalModule({ url: "https://nixdocs.example.org" }, "m.options.services.nixdocs-reporter.allowInsecure.default")).toBe(false);
  });

  it("retries refused connections and spreads a fleet's reports over up to an hour", () => {
    const script = evalModule({ url: "https://nixdocs.example.org" }, "m.config.systemd.services.nixdocs-reporter.serviceConfig.ExecStart") as string;
    expect(script).toContain("--retry-connrefused");
    expect(evalModule({ url: "https://nixdocs.example.org" }, "m.config.systemd.timers.nixdocs-reporter.timerConfig.RandomizedDelaySec")).toBe("1h");
    expect(evalModule({ url: "https://nixdocs.example.org" }, "m.options.services.nixdocs-reporter.interval.description")).toContain("up to one hour");
  });
});

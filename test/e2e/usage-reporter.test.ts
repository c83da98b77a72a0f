/**
 * nix/usage-reporter.nix (the NixOS reporter module) and nix/usage-modules.nix (what it reports),
 * checked with the Nix CLI: both parse, and the module list computed from an evaluated option
 * tree is the one the telemetry API expects. Skipped when Nix is not installed.
 */
import { describe, expect, it } from "vitest";
import { moduleRef } from "../../src/shared/telemetry.ts";
import { nixEvalJson, nixParse, nixVersion, repoFile } from "./nix.ts";

const nix = nixVersion();

describe.skipIf(!nix)(`the usage reporter (${nix ?? "nix-instantiate not installed"})`, () => {
  it("parses", () => {
    expect(() => nixParse(repoFile("nix/usage-reporter.nix"))).not.toThrow();
    expect(() => nixParse(repoFile("nix/usage-modules.nix"))).not.toThrow();
  });

  it("reports the modules declaring enable options that are true, under the known source roots", () => {
    const src = "/nix/store/0000000000000000000000000000000a-source";
    const sops = "/nix/store/0000000000000000000000000000000b-source";
    const expr = `
      let
        opt = value: declarations: { _type = "option"; isDefined = true; inherit value declarations; };
        undefined = { _type = "option"; isDefined = false; value = throw "no value"; declarations = [ "${src}/nixos/modules/undefined.nix" ]; };
      in import ${repoFile("nix/usage-modules.nix")} {
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
    const modules = nixEvalJson(expr) as string[];
    expect(modules).toEqual([
      "home-manager:modules/programs/git.nix",
      "nixos:nixos/modules/deep-extra.nix",
      "nixos:nixos/modules/deep.nix",
      "nixos:nixos/modules/services/networking/ssh/sshd.nix",
      "sops-nix:modules/sops",
    ]);
    // Every reference is one the API accepts.
    for (const m of modules) expect(moduleRef.safeParse(m).success, m).toBe(true);
  });

  it("caps the list at the server's limit per report", () => {
    const expr = `import ${repoFile("nix/usage-modules.nix")} {
      options = {}; sources = {}; maxModules = 3;
      extraModules = builtins.genList (i: "nixos:m" + toString i + ".nix") 10;
    }`;
    expect(nixEvalJson(expr)).toHaveLength(3);
  });
});

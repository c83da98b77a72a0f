# A documentation stand-in for a Nixpkgs package set: enough of `pkgs` for module collections to
# evaluate their option documentation without Nixpkgs and without building anything.
#
# - Every attribute path in `packagePaths` ("git", "python3Packages.requests") is a placeholder
#   derivation whose `outPath` is the text "${pkgs.<path>}", so a default such as
#   "${pkgs.xdg-utils}/bin/xdg-open" documents itself the way Home Manager's and nix-darwin's
#   manuals show it (their `scrubDerivations`). Nix has no catch-all attribute, so the caller
#   (src/cli/extract-lib.ts) lists the paths the collection's source mentions.
# - Builder functions (writeText, runCommand, symlinkJoin, ...) return placeholder derivations
#   named /nix/store/00000000000000000000000000000000-NAME; `callPackage` calls its function with
#   placeholders for the arguments it asks for.
# - `formats` are Nixpkgs' own (pkgs/pkgs-lib/formats.nix) when `nixpkgsPath` is given, so type
#   descriptions such as "TOML value" are the real ones; otherwise serialization types with the
#   same descriptions.
# - `stdenv.hostPlatform` is `lib.systems.elaborate hostSystem`.
{
  lib,
  packagePaths ? [ ],
  nixpkgsPath ? null,
  hostSystem ? "x86_64-linux",
}:
let
  inherit (lib)
    concatStringsSep
    filter
    genAttrs
    head
    last
    length
    mapAttrs
    tail
    types
    unique
    ;

  fakeHash = "00000000000000000000000000000000";

  # Shared by package placeholders and builder results: a derivation that builds nothing.
  derivationLike =
    {
      name,
      outPath,
      extra ? { },
    }:
    let
      self = extra // {
        type = "derivation";
        inherit name outPath;
        pname = name;
        version = "";
        drvPath = outPath;
        outputName = "out";
        outputs = [ "out" ];
        out = self;
        all = [ self ];
        meta = {
          mainProgram = name;
          description = "";
          platforms = lib.platforms.all or [ ];
        };
        passthru = { };
        override = _: self;
        overrideAttrs = _: self;
        overrideDerivation = _: self;
        overridePythonAttrs = _: self;
        withPackages = _: self;
      };
    in
    self;

  # Paths as lists of segments, grouped into a tree of placeholders.
  splitPaths = map (p: if builtins.isList p then p else lib.splitString "." p) packagePaths;
  placeholderTree =
    prefix: paths:
    let
      heads = unique (map head paths);
      below = h: map tail (filter (p: head p == h && length p > 1) paths);
    in
    genAttrs heads (
      h:
      let
        attrPath = prefix ++ [ h ];
      in
      derivationLike {
        name = h;
        outPath = "\${pkgs.${concatStringsSep "." attrPath}}";
        extra = placeholderTree attrPath (below h);
      }
    );

  placeholder =
    attrPath:
    derivationLike {
      name = last attrPath;
      outPath = "\${pkgs.${concatStringsSep "." attrPath}}";
    };

  built =
    name:
    derivationLike {
      name = builtins.replaceStrings [ "/" ] [ "-" ] (toString name);
      outPath = "/nix/store/${fakeHash}-${builtins.replaceStrings [ "/" ] [ "-" ] (toString name)}";
    };

  # Builders take either a name first or an attribute set with `name`.
  nameOf = arg: if builtins.isAttrs arg then arg.name or arg.pname or "unnamed" else toString arg;
  builder1 = arg: built (nameOf arg);
  builder2 = arg: _: built (nameOf arg);
  builder3 = arg: _: _: built (nameOf arg);

  callPackage =
    fn: args:
    let
      f = if builtins.isFunction fn then fn else import fn;
      wanted = builtins.functionArgs f;
      supply = lib.filterAttrs (n: hasDefault: !(args ? ${n}) && (pkgs ? ${n} || !hasDefault)) wanted;
    in
    f (mapAttrs (n: _: pkgs.${n} or (placeholder [ n ])) supply // args);

  platform = lib.systems.elaborate hostSystem;

  serializable =
    typeName: nullable:
    let
      base = types.oneOf [
        types.bool
        types.int
        types.float
        types.str
        types.path
        (types.attrsOf value)
        (types.listOf value)
      ];
      value = (if nullable then types.nullOr base else base) // {
        description = "${typeName} value";
      };
    in
    value;

  atomOf =
    what:
    types.nullOr (
      types.oneOf [
        types.bool
        types.int
        types.float
        types.str
      ]
    )
    // {
      description = "${what} (null, bool, int, float or string)";
    };

  # The atom of key-value formats: a list for duplicate keys, or a list joined into one value.
  listAtom =
    single:
    {
      listsAsDuplicateKeys ? false,
      listToValue ? null,
      ...
    }:
    if listsAsDuplicateKeys then
      types.coercedTo single lib.singleton (types.listOf single)
      // {
        description = single.description + " or a list of them for duplicate keys";
      }
    else if listToValue != null then
      types.coercedTo single lib.singleton (types.nonEmptyListOf single)
      // {
        description = single.description + " or a non-empty list of them";
      }
    else
      single;

  iniSection =
    atom:
    types.attrsOf atom
    // {
      description = "section of an INI file (attrs of ${atom.description})";
    };

  documentationFormat = type: {
    inherit type;
    generate = name: _value: built name;
    lib = { };
  };

  withAtom = atom: format: format // { lib.types.atom = atom; };

  # Used when no Nixpkgs source is at hand: the same type descriptions, no generators.
  ownFormats = {
    json = _: documentationFormat (serializable "JSON" true);
    yaml = _: documentationFormat (serializable "YAML 1.1" true);
    yaml_1_1 = _: documentationFormat (serializable "YAML 1.1" true);
    yaml_1_2 = _: documentationFormat (serializable "YAML 1.2" true);
    toml = _: documentationFormat (serializable "TOML" false);
    ini =
      args:
      let
        atom = listAtom (atomOf "INI atom") args;
      in
      withAtom atom (documentationFormat (types.attrsOf (iniSection atom)));
    iniWithGlobalSection =
      args:
      let
        atom = listAtom (atomOf "INI atom") args;
      in
      withAtom atom (
        documentationFormat (
          types.submodule {
            options.sections = lib.mkOption rec {
              type = types.attrsOf (iniSection atom);
              default = { };
              description = type.description;
            };
            options.globalSection = lib.mkOption rec {
              type = iniSection atom;
              default = { };
              description = "global " + type.description;
            };
          }
        )
      );
    gitIni =
      args:
      let
        atom = listAtom (atomOf "INI atom") (args // { listToValue = null; });
      in
      withAtom atom (
        documentationFormat (types.attrsOf (types.attrsOf (types.either atom (types.attrsOf atom))))
      );
    keyValue = args: documentationFormat (types.attrsOf (listAtom (atomOf "atom") args));
    javaProperties =
      _:
      documentationFormat (
        types.attrsOf (
          types.oneOf [
            types.str
            types.package
            types.bool
            types.int
            types.float
          ]
          // {
            description = "string, package, bool, int or float";
          }
        )
      );
    # Nixpkgs' XML type reads as a noun: "list of XML value", not "list of (XML value)".
    xml = _: documentationFormat (serializable "XML" true // { descriptionClass = "noun"; });
    plist = _: documentationFormat (serializable "Property list (plist)" true);
    lua = _: documentationFormat (serializable "Lua" true);
    elixirConf = _: documentationFormat (serializable "Elixir" true);
    pythonVars = _: documentationFormat (serializable "Python" true);
    php = _: documentationFormat (serializable "PHP" true);
    hocon = _: documentationFormat (serializable "HOCON" true);
    libconfig = _: documentationFormat (serializable "libconfig" true);
    cdn = _: documentationFormat (serializable "CDN" true);
  };

  nixpkgsFormats =
    if nixpkgsPath != null && builtins.pathExists (nixpkgsPath + "/pkgs/pkgs-lib/formats.nix") then
      import (nixpkgsPath + "/pkgs/pkgs-lib/formats.nix") { inherit lib pkgs; }
    else
      { };

  builders =
    genAttrs [
      "writeText"
      "writeScript"
      "writeScriptBin"
      "writeShellScript"
      "writeShellScriptBin"
      "writeTextDir"
      "writeCBin"
      "writeJSON"
      "writeTOML"
      "writeYAML"
      "substituteAll"
      "concatText"
      "concatScript"
      "runCommand"
      "runCommandLocal"
      "runCommandCC"
      "runCommandNoCC"
    ] (_: builder2)
    // genAttrs [
      "writeTextFile"
      "writeShellApplication"
      "symlinkJoin"
      "mkDerivation"
      "buildEnv"
      "replaceVars"
      "makeDesktopItem"
      "fetchurl"
      "fetchFromGitHub"
      "fetchgit"
      "fetchzip"
    ] (_: builder1)
    // {
      linkFarm = builder2;
      linkFarmFromDrvs = builder2;
      substitute = builder1;
      makeWrapper = placeholder [ "makeWrapper" ];
      writers = genAttrs [
        "writeBash"
        "writeBashBin"
        "writeDash"
        "writeDashBin"
        "writePython3"
        "writePython3Bin"
        "writeJS"
        "writeNu"
        "writeFish"
        "writeFishBin"
      ] (_: builder2);
    };

  pkgs =
    placeholderTree [ ] splitPaths
    // builders
    // {
      inherit lib callPackage;
      config = { };
      inherit (platform) system;
      stdenv = placeholder [ "stdenv" ] // {
        inherit (platform) isLinux isDarwin;
        hostPlatform = platform;
        buildPlatform = platform;
        targetPlatform = platform;
        mkDerivation = builder1;
        cc = placeholder [ "stdenv" "cc" ];
        shell = "\${pkgs.bash}/bin/bash";
      };
      stdenvNoCC = pkgs.stdenv;
      hostPlatform = platform;
      buildPlatform = platform;
      buildPackages = pkgs;
      pkgsBuildBuild = pkgs;
      pkgsHostTarget = pkgs;
      formats = ownFormats // nixpkgsFormats;
      # The derivation names passed to builders show up in defaults; keep them readable.
      nixosOptionsDoc = _: built "options";
    }
    // lib.optionalAttrs (nixpkgsPath != null) { path = nixpkgsPath; };
in
pkgs

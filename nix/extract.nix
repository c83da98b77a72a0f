# Option documentation of a module collection, as JSON-ready data.
#
#   nix-instantiate --eval --strict --json -E \
#     'import ./nix/extract.nix { lib = import <nixpkgs/lib>; entry = ./modules.nix; sourceRoot = ./.; }'
#
# Evaluates the modules with `lib.evalModules` (`_module.check = false`) and returns
#   options  the entries `nixosOptionsDoc` writes to options.json: visible, non-internal options,
#            defaults and examples rendered by `lib.options.renderOptionValue`, declarations
#            relative to `sourceRoot` (with line numbers and URLs when `urlPrefix` is given),
#            `relatedPackages` as Markdown, missing descriptions as "This option has no description.";
#   types    per option, the structure of its type beside the description string;
#   modules  one record per module file: path, the options it declares, its imports, whether it is
#            disabled, the freeform types of its options, and a content hash;
#   errors   options whose documentation fails to evaluate (`throw`/`assert`), with the fields that
#            failed; the rest still comes out. Errors `tryEval` cannot catch (a missing attribute,
#            a type error) stop the evaluation; the caller then evaluates again with `only`/`exclude`
#            to isolate them (src/cli/extract-lib.ts).
{
  lib,
  # A path: a file (or directory) evaluating to a module, a list of modules, or a function of
  # `{ lib, pkgs }` (and optional arguments) returning a list of modules, such as Home Manager's
  # modules/modules.nix.
  entry ? null,
  # Modules given directly: a module or a list of modules.
  modules ? [ ],
  # A flake's module attribute set (`nixosModules`, `homeManagerModules`, ...): name → module.
  moduleSet ? { },
  specialArgs ? { },
  # A real package set; by default the documentation stub of ./docs-pkgs.nix.
  pkgs ? null,
  packagePaths ? [ ],
  nixpkgsPath ? null,
  hostSystem ? "x86_64-linux",
  # Root of the collection's source; declarations and module paths are made relative to it.
  sourceRoot ? null,
  # e.g. "https://github.com/nix-community/home-manager/blob/master/": declarations become
  # { name, url, line } with the line Nix knows.
  urlPrefix ? null,
  # Declarations as { name, line } even without a URL prefix.
  withLines ? false,
  namespace ? null,
  class ? null,
  # Extra arguments for a collection function `entry` (e.g. { check = false; }).
  entryArgs ? { },
  includeModuleSystemOptions ? true,
  # A lib extension applied before evaluation (Home Manager's docs build documents the sub-options
  # of `either` types this way): self: super: { ... }.
  libOverlay ? null,
  # Option names to render (null: all); used to isolate a failing option.
  only ? null,
  # Indices of the top-level modules to leave out; used to isolate a failing module.
  exclude ? [ ],
  # "full": everything; "names": only the names of the documented options; "count": the
  # top-level modules (their paths).
  mode ? "full",
  # Let errors of rendered options through instead of catching them (to read Nix's message).
  strictErrors ? false,
}:
let
  inherit (lib)
    attrNames
    concatMap
    concatStringsSep
    filter
    hasPrefix
    isAttrs
    isBool
    isFunction
    isList
    isOption
    listToAttrs
    optionalAttrs
    removePrefix
    showOption
    unique
    ;

  docLib = if libOverlay == null then lib else lib.extend libOverlay;

  docPkgs =
    if pkgs != null then
      pkgs
    else
      import ./docs-pkgs.nix {
        lib = docLib;
        inherit packagePaths nixpkgsPath hostSystem;
      };

  unknownModule = "<unknown-file>";

  # ---- the modules -------------------------------------------------------------------------

  # Modules that are values (not paths) carry no file name; give them the file they came from.
  located =
    file: m:
    if builtins.isPath m || builtins.isString m then m else lib.setDefaultModuleLocation file m;

  # A function whose required arguments are only `lib` and `pkgs` and that returns a list is a
  # collection function (Home Manager's modules.nix); anything else is a module.
  fromEntry =
    let
      value = import entry;
      wanted = builtins.functionArgs value;
      required = attrNames (lib.filterAttrs (_: hasDefault: !hasDefault) wanted);
      isCollectionFunction =
        isFunction value
        && !(wanted ? config || wanted ? options)
        && wanted != { }
        && builtins.all (n: n == "lib" || n == "pkgs") required;
      called = value (
        builtins.intersectAttrs wanted (
          {
            lib = docLib;
            pkgs = docPkgs;
          }
          // entryArgs
        )
      );
    in
    if isList value then
      map (located (toString entry)) value
    else if isCollectionFunction && isList called then
      map (located (toString entry)) called
    else
      [ entry ];

  fromSet = lib.mapAttrsToList (
    name: m:
    if builtins.isPath m || builtins.isString m then
      m
    else
      {
        _file = "${if sourceRoot == null then "" else str sourceRoot}/flake.nix#${name}";
        key = "moduleSet:${name}";
        imports = [ m ];
      }
  ) moduleSet;

  topModules =
    (if entry == null then [ ] else fromEntry)
    ++ (if isList modules then modules else [ modules ])
    ++ fromSet;

  excluded = listToAttrs (map (i: { name = toString i; value = true; }) exclude);
  chosenModules = lib.concatLists (
    lib.imap0 (i: m: if excluded ? ${toString i} then [ ] else [ m ]) topModules
  );

  eval = docLib.evalModules (
    {
      modules = chosenModules ++ [
        {
          _file = "<nixdocs/extract.nix>";
          _module.check = false;
          _module.args.pkgs = lib.mkForce docPkgs;
        }
      ];
      specialArgs = {
        pkgs = docPkgs;
      }
      // specialArgs;
    }
    // optionalAttrs (class != null) { inherit class; }
  );

  options = if includeModuleSystemOptions then eval.options else removeAttrs eval.options [ "_module" ];

  # ---- paths ---------------------------------------------------------------------------------

  # File names become attribute names and JSON text; a flake's store path context must not follow.
  str = x: builtins.unsafeDiscardStringContext (toString x);
  rootText = if sourceRoot == null then null else str sourceRoot;
  nixpkgsText = if nixpkgsPath == null then null else str nixpkgsPath;

  relative =
    file:
    let
      f = str file;
    in
    if rootText != null && hasPrefix (rootText + "/") f then
      removePrefix (rootText + "/") f
    else if rootText != null && f == rootText then
      baseNameOf f
    else if nixpkgsText != null && hasPrefix (nixpkgsText + "/") f then
      "<nixpkgs/${removePrefix (nixpkgsText + "/") f}>"
    else if hasPrefix "/" f then
      # Outside the collection (another input): still a relative, recognisable name.
      "<${removePrefix "/" f}>"
    else
      f;

  declaration =
    opt: file:
    let
      path = relative file;
      # A module imported as a directory is declared by its default.nix.
      positions = filter (
        p: str p.file == str file || str p.file == "${str file}/default.nix"
      ) (opt.declarationPositions or [ ]);
      line = if positions == [ ] then null else (builtins.head positions).line;
    in
    if urlPrefix == null && !withLines then
      path
    else
      {
        name = path;
      }
      // optionalAttrs (urlPrefix != null && !(hasPrefix "<" path)) {
        url = urlPrefix + path + (if line == null then "" else "#L${toString line}");
      }
      // optionalAttrs (line != null) { inherit line; };

  # ---- one option ---------------------------------------------------------------------------

  # Same Markdown as nixosOptionsDoc's genRelatedPackages.
  relatedPackagesText =
    packages: _name:
    let
      unpack =
        p:
        if builtins.isString p then
          { name = p; }
        else if isList p then
          { path = p; }
        else
          p;
      describe =
        args:
        let
          title = args.title or null;
          name = args.name or (concatStringsSep "." args.path);
        in
        ''
          - [${lib.optionalString (title != null) "${title} aka "}`pkgs.${name}`](
              https://search.nixos.org/packages?show=${name}&sort=relevance&query=${name}
            )${lib.optionalString (args ? comment) "\n\n  ${args.comment}"}
        '';
    in
    lib.concatMapStrings (p: describe (unpack p)) packages;

  descriptionText =
    opt:
    let
      d = opt.description or null;
    in
    if d == null then
      "This option has no description."
    else if isAttrs d && d ? text then
      d.text
    else
      d;

  hasDefault =
    opt:
    opt ? defaultText
    || opt ? default
    || ((opt.type or { }).emptyValue or { }) ? value && (opt.type or { }).getSubModules or null == null;

  fields = name: opt: {
    description = descriptionText opt;
    type = opt.type.description or "unspecified";
    declarations = map (declaration opt) (filter (x: x != unknownModule) opt.declarations);
    readOnly = opt.readOnly or false;
    loc = opt.loc;
    default =
      if hasDefault opt then
        lib.options.renderOptionValue (opt.defaultText or opt.default or opt.type.emptyValue.value)
      else
        null;
    example = if opt ? example then lib.options.renderOptionValue opt.example else null;
    relatedPackages =
      if opt ? relatedPackages && opt.relatedPackages != null && opt.relatedPackages != [ ] then
        relatedPackagesText opt.relatedPackages name
      else
        null;
  };

  strict =
    v:
    if strictErrors then
      {
        success = true;
        value = builtins.deepSeq v v;
      }
    else
      builtins.tryEval (builtins.deepSeq v v);

  render =
    name: opt:
    let
      all = strict (fields name opt);
      each = lib.mapAttrs (_: strict) (fields name opt);
      failed = attrNames (lib.filterAttrs (_: r: !r.success) each);
      entry = lib.filterAttrs (
        n: v: v != null || n == "description"
      ) all.value;
    in
    if all.success then
      { inherit name entry; }
    else
      {
        inherit name;
        error = {
          inherit name;
          fields = if failed == [ ] then [ "entry" ] else failed;
        };
      };

  # ---- types ---------------------------------------------------------------------------------

  # The structure of a type. Only the option's own type description is read: nested descriptions
  # can recurse forever (a self-referential `oneOf` without a description of its own), which no
  # `tryEval` catches. A recursive type (JSON value, TOML value) stops where its shape repeats.
  shapeKey =
    t:
    let
      n = t.name or "unknown";
      nested = t.nestedTypes or { };
    in
    n + ":" + concatStringsSep "," (map (k: "${k}=${nested.${k}.name or "?"}") (attrNames nested));

  typeInfo =
    seen: t:
    let
      name = t.name or "unknown";
      nested = t.nestedTypes or { };
      key = shapeKey t;
      sub = typeInfo (seen ++ [ key ]);
      eitherMembers =
        ty:
        if (ty.name or null) == "either" then
          eitherMembers ty.nestedTypes.left ++ eitherMembers ty.nestedTypes.right
        else
          [ ty ];
      base = { inherit name; };
    in
    if builtins.elem key seen then
      base // { kind = "recursive"; }
    else if builtins.length seen > 8 then
      base // { kind = "truncated"; }
    else if name == "submodule" then
      base
      // {
        kind = "submodule";
      }
      # Safe to read: the submodule's own description ("open submodule of ...") already did.
      // optionalAttrs (nested ? freeformType) {
        freeformType = sub nested.freeformType // {
          inherit (nested.freeformType) description;
        };
      }
    else if name == "enum" then
      base
      // {
        kind = "enum";
        values = t.functor.payload.values or [ ];
      }
    else if hasPrefix "strMatching" name then
      base
      // {
        kind = "strMatching";
        pattern = t.functor.payload.pattern or null;
      }
    else if name == "either" then
      base
      // {
        kind = "either";
        members = map sub (eitherMembers t);
      }
    else if nested ? elemType then
      base
      // {
        kind = name;
        elemType = sub nested.elemType;
      }
    else if nested != { } then
      base
      // {
        kind = "other";
        nested = lib.mapAttrs (_: sub) nested;
      }
    else
      base // { kind = "other"; };

  # ---- walking the option tree ------------------------------------------------------------

  wanted = if only == null then (_: true) else let set = lib.genAttrs only (_: true); in n: set ? ${n};

  # Like lib.optionAttrSetToDocList, but every option is evaluated on its own (tryEval) and
  # hidden or internal options are not rendered at all.
  walk =
    namesOnly: opts:
    concatMap (
      opt:
      let
        name = showOption opt.loc;
        visible = opt.visible or true;
        shown = (if isBool visible then visible else visible == "shallow") && !(opt.internal or false);
        subVisible = if isBool visible then visible else visible == "transparent";
        # A type may answer a list here; lib's optionAttrSetToDocList then finds no option in it.
        subs = builtins.tryEval (
          let
            ss = opt.type.getSubOptions opt.loc;
          in
          if isAttrs ss then builtins.seq (attrNames ss) ss else { }
        );
        subNames =
          if subs.success then
            map (o: showOption o.loc) (
              filter (o: !(o.internal or false) && (o.visible or true) != false) (lib.collect isOption subs.value)
            )
          else
            [ ];
        here =
          if shown && wanted name && namesOnly then
            [ { inherit name; } ]
          else if shown && wanted name then
            [
              (
                render name opt
                // {
                  option = opt;
                  inherit subNames;
                }
              )
            ]
          else
            [ ];
        below =
          if !subVisible then
            [ ]
          else if subs.success then
            walk namesOnly subs.value
          else
            [
              {
                inherit name;
                error = {
                  inherit name;
                  fields = [ "subOptions" ];
                };
              }
            ];
      in
      here ++ below
    ) (lib.collect isOption opts);

  walked = walk false options;
  rendered = filter (r: r ? entry) walked;
  errors = map (r: r.error) (filter (r: r ? error) walked);

  optionsJson = listToAttrs (
    map (r: {
      inherit (r) name;
      value = r.entry;
    }) rendered
  );

  types = listToAttrs (
    map (r: {
      inherit (r) name;
      value =
        let
          t = strict (typeInfo [ ] r.option.type);
        in
        if t.success then t.value // { description = r.entry.type; } // optionalAttrs (r.subNames != [ ]) { subOptions = r.subNames; } else { name = "unknown"; description = r.entry.type; kind = "error"; };
    }) rendered
  );

  # ---- module records ----------------------------------------------------------------------

  graphNodes =
    let
      flatten = node: [ node ] ++ concatMap flatten node.imports;
    in
    concatMap flatten (eval.graph or [ ]);

  fileNodes = filter (n: n.file != unknownModule && n.file != "<nixdocs/extract.nix>") graphNodes;
  files = unique (map (n: str n.file) fileNodes);

  declaredBy = lib.foldl' (
    acc: r:
    lib.foldl' (
      acc': file:
      let
        f = str file;
      in
      acc' // { ${f} = (acc'.${f} or [ ]) ++ [ r.name ]; }
    ) acc (unique (filter (x: x != unknownModule) r.option.declarations))
  ) { } rendered;

  fileKind =
    f:
    if hasPrefix "/" f && builtins.pathExists f then
      (builtins.readDir (dirOf f)).${baseNameOf f} or "unknown"
    else
      "unknown";

  contentHash =
    f:
    let
      kind = fileKind f;
    in
    if kind == "regular" then
      "sha256:" + builtins.hashFile "sha256" f
    else if kind == "directory" && builtins.pathExists (f + "/default.nix") then
      "sha256:" + builtins.hashFile "sha256" (f + "/default.nix")
    else
      null;

  moduleRecord =
    f:
    let
      nodes = filter (n: str n.file == f) fileNodes;
      importFiles = unique (
        filter (g: g != f && g != unknownModule) (concatMap (n: map (c: str c.file) n.imports) nodes)
      );
      declares = lib.sort (a: b: a < b) (unique (declaredBy.${f} or [ ]));
      freeform = listToAttrs (
        concatMap (
          name:
          let
            t = types.${name} or { };
            ff = t.freeformType or (t.elemType.freeformType or null);
          in
          if ff == null then [ ] else [ { inherit name; value = ff.description; } ]
        ) declares
      );
    in
    {
      path = relative f;
      inherit namespace declares;
      imports = map relative importFiles;
      disabled = builtins.all (n: n.disabled) nodes;
      freeformTypes = freeform;
      contentHash = contentHash f;
    };

  # Files that declare options but do not appear in the graph (older lib without `graph`).
  moduleFiles = unique (files ++ attrNames declaredBy);
in
if mode == "count" then
  map (m: if builtins.isPath m || builtins.isString m then relative m else "<inline module>") topModules
else if mode == "names" then
  {
    names = map (r: r.name) (walk true options);
    modules = builtins.length topModules;
  }
else
  {
    inherit namespace errors types;
    options = optionsJson;
    modules = map moduleRecord (filter (f: f != "lib/modules.nix") moduleFiles);
  }

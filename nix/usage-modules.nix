# The modules a host uses, as nixdocs module references (`namespace:path`), from the host's
# evaluated option tree. Only builtins are used, so it can be evaluated (and tested) without
# Nixpkgs: `import ./usage-modules.nix { inherit options; sources = { nixos = pkgs.path; }; }`.
#
# A module counts as used when one of its `enable` options is true: that option's declaring
# files are the modules. A declaring file under a source root becomes `<namespace>:<path below
# the root>`, which is how nixdocs names modules (the `declarations` of options.json, relative to
# the collection's repository). Files under no source root are left out.
{
  # The evaluated `options` of a NixOS (or other module system) configuration.
  options,
  # Namespace → source root, e.g. `{ nixos = pkgs.path; sops-nix = inputs.sops-nix; }`.
  sources,
  # References added as they are (`home-manager:modules/programs/git.nix`).
  extraModules ? [ ],
  # The server accepts this many modules per report.
  maxModules ? 2000,
}:
let
  isOption = v: builtins.isAttrs v && (v._type or null) == "option";

  # True only for a defined option whose value evaluates to `true`; a value that throws is not.
  isTrue =
    opt:
    let
      r = builtins.tryEval ((opt.isDefined or true) && opt.value == true);
    in
    r.success && r.value;

  # Declaring files of every enable option set to true. Options of attribute-set submodules
  # (`<name>`) are not in the tree, so the walk ends; `_module` is internal.
  enabledDeclarations =
    set:
    builtins.concatMap (
      name:
      let
        r = builtins.tryEval set.${name};
        v = r.value;
      in
      if !r.success || builtins.substring 0 1 name == "_" then
        [ ]
      else if isOption v then
        (if name == "enable" && isTrue v then map toString (v.declarations or [ ]) else [ ])
      else if builtins.isAttrs v then
        enabledDeclarations v
      else
        [ ]
    ) (builtins.attrNames set);

  # Longest root first, so a source nested in another wins.
  roots = builtins.sort (a: b: builtins.stringLength a.root > builtins.stringLength b.root) (
    map (ns: {
      inherit ns;
      root = "${toString sources.${ns}}/";
    }) (builtins.attrNames sources)
  );

  toRefs =
    file:
    let
      under = builtins.filter (r: builtins.substring 0 (builtins.stringLength r.root) file == r.root) roots;
      r = builtins.head under;
      n = builtins.stringLength r.root;
    in
    if under == [ ] then [ ] else [ "${r.ns}:${builtins.substring n (builtins.stringLength file - n) file}" ];

  refs = builtins.concatMap toRefs (enabledDeclarations options) ++ extraModules;
  # Sorted and without repeats (attribute names are both).
  unique = builtins.attrNames (
    builtins.listToAttrs (
      map (r: {
        name = r;
        value = null;
      }) refs
    )
  );
  count = if builtins.length unique < maxModules then builtins.length unique else maxModules;
in
builtins.genList (builtins.elemAt unique) count

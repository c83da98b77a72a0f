# The lib Home Manager's documentation build evaluates with (its docs/default.nix): Nixpkgs' lib
# plus `lib.hm` (modules/lib/stdlib-extended.nix), and `types.either` documenting the sub-options
# of both sides (upstream documents neither, so e.g. `nullOr (either str (submodule ...))` would
# lose its sub-options). Used by bench/extract.ts with
#   npm run extract -- --lib-overlay bench/home-manager/lib-overlay.nix
# and HOME_MANAGER_SRC naming the Home Manager checkout.
self: super:
let
  src = builtins.getEnv "HOME_MANAGER_SRC";
  hm = import (src + "/modules/lib") { lib = self; };

  subOptionsOf =
    prefix: type:
    let
      options = type.getSubOptions prefix;
    in
    if builtins.isAttrs options then options else { };

  declaration = options: {
    _file = "<docs/default.nix>";
    pos = null;
    inherit options;
  };
in
if src == "" then
  throw "bench/home-manager/lib-overlay.nix: set HOME_MANAGER_SRC to a Home Manager checkout"
else
  {
    inherit hm;
    maintainers = super.maintainers // hm.maintainers;
    types = super.types // {
      either =
        left: right:
        super.types.either left right
        // {
          getSubOptions =
            prefix:
            builtins.foldl' (
              acc: options:
              if acc == { } then
                options
              else
                (super.mergeOptionDecls prefix [
                  (declaration acc)
                  (declaration options)
                ]).options
            ) { } (builtins.filter (o: o != { }) (map (subOptionsOf prefix) [ left right ]));
        };
    };
  }

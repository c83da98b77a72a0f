# NixOS module `services.nixdocs-reporter`: reports which modules this host uses to a nixdocs
# service (`POST /api/v1/telemetry`), from a hardened systemd service on a timer.
#
# The module list is computed when the system is built, from the evaluated `options` (see
# ./usage-modules.nix), and stored as a JSON file in the Nix store. At run time the service hashes
# the hostname with sha256sum (the raw hostname never leaves the host; the server hashes it
# again with its own key), reads the API key through systemd's LoadCredential (the key file is
# never copied to the store), and posts the report with curl.
#
#   imports = [ ./nix/usage-reporter.nix ];
#   services.nixdocs-reporter = {
#     enable = true;
#     url = "https://nixdocs.example.org";
#     apiKeyFile = "/run/secrets/nixdocs-telemetry-key";
#     environment = "production";
#   };
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  cfg = config.services.nixdocs-reporter;
  inherit (lib) mkEnableOption mkIf mkOption types;

  modulesFile = pkgs.writeText "nixdocs-usage-modules.json" (
    builtins.toJSON (
      import ./usage-modules.nix {
        inherit options;
        sources = cfg.sources;
        extraModules = cfg.extraModules;
      }
    )
  );

  report = pkgs.writeShellApplication {
    name = "nixdocs-report";
    runtimeInputs = [
      pkgs.coreutils
      pkgs.curl
      pkgs.jq
    ];
    text = ''
      # SHA-256 of the hostname (without newline), as the API expects; uname works without /proc.
      host=$(uname -n | tr -d '\n' | sha256sum | cut -d' ' -f1)
      body="$(mktemp)"
      jq -n \
        --arg host "$host" \
        --arg environment "$NIXDOCS_ENVIRONMENT" \
        --arg system "$NIXDOCS_SYSTEM" \
        --argjson reportedAt "$(date +%s)" \
        --slurpfile modules "$NIXDOCS_MODULES" \
        '{host: $host, environment: $environment, system: $system, reportedAt: $reportedAt, modules: $modules[0]}' >"$body"
      # The key goes to curl on stdin (printf is a shell builtin): never in argv or the environment.
      key="$(tr -d '\n' <"$CREDENTIALS_DIRECTORY/api-key")"
      printf 'header = "Authorization: Bearer %s"\n' "$key" |
        curl --config - --fail-with-body --silent --show-error \
          --retry 3 --retry-delay 60 --retry-connrefused --max-time 60 \
          -H 'Content-Type: application/json' --data-binary @"$body" \
          "''${NIXDOCS_URL%/}/api/v1/telemetry"
      echo
    '';
  };
in
{
  options.services.nixdocs-reporter = {
    enable = mkEnableOption "reporting the modules this host uses to a nixdocs service";

    url = mkOption {
      type = types.strMatching "https?://.+";
      example = "https://nixdocs.example.org";
      description = ''
        Base URL of the nixdocs service; reports go to `<url>/api/v1/telemetry`. It must be
        `https://`: the API key travels as a bearer header with every report. An `http://` URL is
        refused unless `allowInsecure` is set.
      '';
    };

    allowInsecure = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Allow an `http://` URL. The API key is then sent in clear text; use it only for a service on
        the same host or a trusted network.
      '';
    };

    apiKeyFile = mkOption {
      # A string, not a path: a path would be copied into the world-readable Nix store.
      type = types.strMatching "/.+";
      example = "/run/secrets/nixdocs-telemetry-key";
      description = ''
        File holding the bearer key for the telemetry endpoint. It is read when the service runs,
        through systemd's `LoadCredential`, and never copied into the Nix store.
      '';
    };

    interval = mkOption {
      type = types.str;
      default = "daily";
      example = "hourly";
      description = ''
        When to report: a systemd `OnCalendar` expression (the server takes one report per host per
        minute). Each run is delayed by a random time of up to one hour (`RandomizedDelaySec`), so
        the hosts of a fleet do not all report at the same moment; a run missed while the host was
        off is made up at boot.
      '';
    };

    environment = mkOption {
      type = types.strMatching "[a-z0-9][a-z0-9._-]{0,31}";
      default = "production";
      description = "Label of this host's environment; usage is counted per environment.";
    };

    extraModules = mkOption {
      type = types.listOf (types.strMatching "[a-z0-9][a-z0-9-]{0,62}:.+");
      default = [ ];
      example = [ "home-manager:modules/programs/git.nix" ];
      description = "Module references (`namespace:path`) to report besides those found enabled.";
    };

    sources = mkOption {
      type = types.attrsOf (types.coercedTo types.path toString types.str);
      default = {
        nixos = pkgs.path;
      };
      defaultText = lib.literalExpression "{ nixos = pkgs.path; }";
      example = lib.literalExpression "{ nixos = pkgs.path; sops-nix = inputs.sops-nix; }";
      description = ''
        Namespace → source tree. An enabled option declared in a file under a source tree
        counts for the module `<namespace>:<file path below the tree>`.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.hasPrefix "https://" cfg.url || cfg.allowInsecure;
        message = "services.nixdocs-reporter.url is ${cfg.url}: over http:// the API key would travel in clear text. Use https://, or set services.nixdocs-reporter.allowInsecure = true for a trusted network.";
      }
    ];

    systemd.services.nixdocs-reporter = {
      description = "Report the modules this host uses to nixdocs";
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      environment = {
        NIXDOCS_URL = cfg.url;
        NIXDOCS_ENVIRONMENT = cfg.environment;
        NIXDOCS_SYSTEM = pkgs.stdenv.hostPlatform.system;
        NIXDOCS_MODULES = "${modulesFile}";
      };
      serviceConfig = {
        Type = "oneshot";
        ExecStart = lib.getExe report;
        LoadCredential = [ "api-key:${cfg.apiKeyFile}" ];
        DynamicUser = true;
        UMask = "0077";
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateUsers = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        ProtectHostname = true;
        ProtectClock = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectProc = "invisible";
        ProcSubset = "pid";
        NoNewPrivileges = true;
        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        # AF_UNIX for name resolution through nscd/systemd-resolved.
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
          "~@resources"
        ];
      };
    };

    systemd.timers.nixdocs-reporter = {
      description = "Report the modules this host uses to nixdocs";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.interval;
        # Spread the hosts of a fleet (up to an hour; see `interval`), and catch up a run missed while off.
        RandomizedDelaySec = "1h";
        Persistent = true;
      };
    };
  };
}

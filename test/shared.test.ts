/** Pure logic of src/shared, checked against every option name of the real data. */
import { describe, expect, it } from "vitest";
import { editDistance, NameVocabulary } from "../src/shared/fuzzy.ts";
import { groupIntoModules, INLINE_MODULE } from "../src/shared/group.ts";
import { parseOptionName, showOption } from "../src/shared/optionName.ts";
import { parseQuery } from "../src/shared/query.ts";
import { matchesPath, nameFeatures, placeholderBindings, snippet, termCover } from "../src/shared/rank.ts";
import { normalizeOptionsJson } from "../src/shared/schemas.ts";
import { nameWords, segmentWords } from "../src/shared/tokenize.ts";
import { dataFile } from "./helpers.ts";

const FILES = ["agenix", "disko", "home-manager", "impermanence", "nix-darwin", "nixvim", "sops-nix", "srvos"];

describe("option names of all 8 real collections", () => {
  it("showOption(loc) reproduces every key and parseOptionName(key) gives back its loc", async () => {
    let checked = 0;
    for (const f of FILES) {
      const file = (await dataFile(`${f}-options.json.gz`)) as Record<string, { loc: string[] }>;
      for (const [key, doc] of Object.entries(file)) {
        expect(showOption(doc.loc), key).toBe(key);
        expect(parseOptionName(key), key).toEqual(doc.loc);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(24_000);
  });

  it("groups an options.json by declaring file, inline submodule options under their ancestor's file", async () => {
    const result = normalizeOptionsJson(await dataFile("home-manager-options.json.gz"));
    if (!("options" in result)) throw new Error(JSON.stringify(result.issues));
    const modules = groupIntoModules(result.options);
    expect(modules.reduce((n, m) => n + m.options.length, 0)).toBe(result.options.length);
    const byOption = new Map(modules.flatMap((m) => m.options.map((o) => [o.name, m.path] as const)));
    expect(byOption.get("programs.git.enable")).toBe("modules/programs/git.nix");
    const undeclared = result.options.filter((o) => o.declarations.length === 0);
    expect(undeclared.length).toBeGreaterThan(100);
    const inline = modules.find((m) => m.path === INLINE_MODULE)?.options.length ?? 0;
    expect(inline).toBeLessThan(undeclared.length);
  });
});

describe("tokenizing names", () => {
  it("splits camelCase and acronyms and keeps the whole segment", () => {
    expect(segmentWords("allowedTCPPorts")).toEqual(["allowed", "tcp", "ports", "allowedtcpports"]);
    expect(segmentWords("virtualHosts")).toEqual(["virtual", "hosts", "virtualhosts"]);
    expect(segmentWords("com.apple.Safari")).toEqual(["com", "apple", "safari", "comapplesafari"]);
    expect(segmentWords("<name>")).toEqual([]);
    expect(nameWords(["services", "nginx", "enable"])).toEqual(["services", "nginx", "enable"]);
  });

  it("parses names with quotes, placeholders and escapes", () => {
    expect(parseOptionName('a."b.c".<name>.*.d')).toEqual(["a", "b.c", "<name>", "*", "d"]);
    expect(parseOptionName('a."x\\"y"')).toEqual(["a", 'x"y']);
    expect(parseOptionName('a."\\${x}"')).toEqual(["a", "${x}"]);
    expect(showOption(["a", "${x}"])).toBe('a."\\${x}"');
    for (const bad of ["", ".", "a.", ".a", 'a."b', "a.<b", "a..b"]) expect(parseOptionName(bad), bad).toBeNull();
  });
});

describe("queries and ranking helpers", () => {
  it("cuts user text into quoted-safe words", () => {
    expect(parseQuery('NEAR(a "b") c:d*').terms).toEqual(["near", "b", "c", "d"]);
    expect(parseQuery("install packages for my user").terms).toEqual(["install", "packages", "user"]);
    expect(parseQuery("to a").terms).toEqual(["to", "a"]);
    expect(parseQuery("services.nginx").dotted).toBe(true);
    expect(parseQuery("*").terms).toEqual([]);
    expect(() => parseQuery("  ")).toThrow(/empty/);
  });

  it("matches dotted queries against runs of segments, placeholders accepting any segment", () => {
    expect(matchesPath(["age", "secrets", "mysecret", "owner"], ["age", "secrets", "<name>", "owner"], true)).toBe(true);
    expect(matchesPath(["zsh", "enable"], ["programs", "zsh", "enable"], false)).toBe(true);
    expect(matchesPath(["zsh", "enable"], ["programs", "atuin", "enableZshIntegration"], false)).toBe(false);
    expect(matchesPath(["progra", ""], ["programs", "git"], true)).toBe(true);
    expect(matchesPath(["progra", ""], ["programs"], true)).toBe(false);
    expect(matchesPath(["a", "b", "c"], ["a"], true)).toBe(false);
    expect(matchesPath(["git", ""], ["programs", "git", "enable"], false)).toBe(true);
    expect(matchesPath(["git", ""], ["programs", "git"], false)).toBe(false);
  });

  it("offers runs of two or three long words as acronyms, never for dotted paths", () => {
    expect(parseQuery("automatic garbage collection").acronyms.map((a) => a.initials)).toEqual(["ag", "gc", "agc"]);
    expect(parseQuery("set up ssh").acronyms).toEqual([]);
    expect(parseQuery("nix.gc.automatic").acronyms).toEqual([]);
    expect(parseQuery("tap to click").words).toEqual(["tap", "to", "click"]);
  });

  it("covers a query word by a whole name word, its inflection, an acronym segment, or (half) a prefix", () => {
    const cover = (q: string, loc: string[]) => termCover(parseQuery(q), nameFeatures(loc));
    expect(cover("automatic garbage collection", ["nix", "gc", "automatic"])).toEqual([1, 1, 1]);
    expect(cover("garbage collection", ["services", "ipfs", "enableGarbageCollection"])).toEqual([1, 1]);
    expect(cover("tap click", ["system", "defaults", "trackpad", "Clicking"])).toEqual([0, 1]);
    expect(cover("package", ["home", "packages"])).toEqual([1]);
    // Not the other way round: `scrolling` is not every `scroll` option.
    expect(cover("natural scrolling", ["system", "defaults", "NSGlobalDomain", "AppleShowScrollBars"])).toEqual([0, 0]);
    expect(cover("git", ["programs", "gitui", "enable"])).toEqual([0.5]);
    expect(nameFeatures(["home", "sessionSearchVariables"]).parts).toEqual(["session", "search", "variables"]);
    // An acronym must be a whole segment, not a piece of a word.
    expect(cover("garbage collection", ["programs", "gcc", "enable"])).toEqual([0, 0]);
  });

  it("tells which concrete names of a dotted query fill which placeholders", () => {
    expect(placeholderBindings("age.secrets.MySecret.owner", ["age", "secrets", "<name>", "owner"])).toEqual([{ index: 2, placeholder: "<name>", value: "MySecret" }]);
    // A run inside the name, and two placeholders.
    expect(placeholderBindings("users.alice.files.notes.text", ["home", "users", "<name>", "files", "<name>", "text"])).toEqual([
      { index: 2, placeholder: "<name>", value: "alice" },
      { index: 4, placeholder: "<name>", value: "notes" },
    ]);
    // A declared ancestor binds what it covers (the rest is the freeform part).
    expect(placeholderBindings("services.nginx.virtualHosts.site.root", ["services", "nginx", "virtualHosts", "<name>"])).toEqual([{ index: 3, placeholder: "<name>", value: "site" }]);
    expect(placeholderBindings("programs.git.enable", ["programs", "git", "enable"])).toEqual([]);
  });

  it("escapes snippets and marks matched words", () => {
    expect(snippet("Use <b>Git</b> & more", ["git"])).toBe("Use &lt;b&gt;<mark>Git</mark>&lt;/b&gt; &amp; more");
    expect(snippet("See <https://github.com/x>.", ["git"])).toBe("See &lt;https://<mark>github</mark>.com/x&gt;.");
    expect(snippet("A declaration here", ["declarative"])).toBe("A <mark>declaration</mark> here");
  });
});

describe("typo tolerance", () => {
  it("measures edits with transpositions, capped", () => {
    expect(editDistance("synctihng", "syncthing", 2)).toBe(1);
    expect(editDistance("neovmi", "neovim", 1)).toBe(1);
    expect(editDistance("kitten", "sitting", 2)).toBe(3);
    expect(editDistance("abc", "abcdefgh", 2)).toBe(3);
  });

  it("suggests the nearest, most frequent name words and nothing for short words", () => {
    const vocab = new NameVocabulary(["syncthing", "syncthing", "synclient", "telescope", "enable", "git"]);
    expect(vocab.corrections("synctihng")).toEqual([{ word: "syncthing", distance: 1 }]);
    expect(vocab.corrections("telescpoe")[0]).toEqual({ word: "telescope", distance: 1 });
    expect(vocab.corrections("gti")).toEqual([]);
    expect(vocab.hasPrefix("sync")).toBe(true);
    expect(vocab.hasPrefix("syncz")).toBe(false);
  });
});

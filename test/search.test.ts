/**
 * Search on the real data, through the edge and the coordinator: ranking behaviours users
 * reported as broken elsewhere, safety of hostile input, pagination and partial answers.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { api, dataFile, enc, json, postBatch } from "./helpers.ts";

interface Hit {
  namespace: string;
  name: string;
  module: string;
  type: string;
  snippet: string;
  score: number;
  match: string;
  fuzzy?: true;
}

async function search(q: string, extra = ""): Promise<{ hits: Hit[]; total: number; partial: boolean; corrections: Record<string, string>; nextCursor: string | null; shards: { namespace: string; status: string }[]; facets: { namespace: Record<string, number> } }> {
  const res = await api(`/api/v1/search?q=${enc(q)}${extra}`);
  expect(res.status, `q=${q}: ${await res.clone().text()}`).toBe(200);
  return json(res);
}

async function names(q: string, extra = ""): Promise<string[]> {
  return (await search(q, extra)).hits.map((h) => h.name);
}

beforeAll(async () => {
  for (const ns of ["home-manager", "nix-darwin", "agenix", "sops-nix"]) {
    const res = await postBatch(ns, await dataFile(`${ns}-options.json.gz`));
    expect(res.status, await res.clone().text()).toBe(200);
  }
});

describe("ranking on the real data", () => {
  it("puts a programs.git.signing option in the top 3 for `programs git signing key`", async () => {
    const top = (await names("programs git signing key", "&namespace=home-manager")).slice(0, 3);
    expect(top.some((n) => n.startsWith("programs.git.signing."))).toBe(true);
  });

  it("answers a bare program name with its module's enable option", async () => {
    expect((await names("syncthing"))[0]).toBe("services.syncthing.enable");
    expect((await names("git", "&namespace=home-manager"))[0]).toBe("programs.git.enable");
  });

  it("ranks an exact dotted name first", async () => {
    expect((await names("home.stateVersion"))[0]).toBe("home.stateVersion");
    expect((await search("home.stateVersion")).hits[0]!.match).toBe("exact");
  });

  it("finds a camelCase word by its fragment, in either case (BR-03)", async () => {
    const lower = (await names("extradep", "&namespace=home-manager")).slice(0, 3);
    const camel = (await names("extraDep", "&namespace=home-manager")).slice(0, 3);
    expect(lower).toContain("home.extraDependencies");
    expect(camel).toEqual(lower);
  });

  it("puts the module's enable option first for a dotted module path (BR-07, BR-13)", async () => {
    expect((await names("programs.alot"))[0]).toBe("programs.alot.enable");
    expect((await names("programs.git"))[0]).toBe("programs.git.enable");
  });

  it("ranks programs.zsh.enable above integration flags for `zsh.enable` (BR-11)", async () => {
    const list = await names("zsh.enable", "&namespace=home-manager&limit=50");
    expect(list[0]).toBe("programs.zsh.enable");
  });

  it("reads `progra.` as a segment prefix followed by another segment (BR-13)", async () => {
    const list = await names("progra.", "&namespace=home-manager&limit=50");
    expect(list.length).toBeGreaterThan(0);
    for (const n of list.slice(0, 20)) expect(n).toMatch(/(^|\.)progra[^.]*\./i);
  });

  it("matches camelCase words written apart and together", async () => {
    const apart = (await names("remap caps lock control", "&namespace=nix-darwin")).slice(0, 3);
    const together = (await names("remapCapsLockToControl", "&namespace=nix-darwin")).slice(0, 3);
    expect(apart[0]).toBe("system.keyboard.remapCapsLockToControl");
    expect(together[0]).toBe("system.keyboard.remapCapsLockToControl");
  });

  it("resolves a concrete instance onto its `<name>` option", async () => {
    const r = await search("age.secrets.mySecret.owner");
    expect(r.hits[0]!.name).toBe("age.secrets.<name>.owner");
    expect(r.hits[0]!.match).toBe("prefix");
    // …and says which part of the query filled the placeholder, as typed.
    expect((r.hits[0] as Hit & { bindings?: unknown }).bindings).toEqual([{ index: 2, placeholder: "<name>", value: "mySecret" }]);
    const sops = await search("sops.secrets.db-password.owner");
    expect(sops.hits[0]!.name).toBe("sops.secrets.<name>.owner");
    expect((sops.hits[0] as Hit & { bindings?: unknown }).bindings).toEqual([{ index: 2, placeholder: "<name>", value: "db-password" }]);
  });

  it("answers an undeclared key under a freeform option with that option and the rest of the path (BR-09)", async () => {
    const r = await search("nix.settings.download-buffer-size", "&namespace=home-manager");
    expect(r.hits[0]).toMatchObject({ name: "nix.settings", match: "ancestor", rest: ["download-buffer-size"] });
  });

  it("finds `<name>` options by words around the placeholder (BR-17)", async () => {
    const list = await names("syncthing devices id", "&namespace=home-manager&limit=10");
    expect(list).toContain("services.syncthing.settings.devices.<name>.id");
  });

  it("returns every option of a narrower dotted query for the broader word too (BR-05)", async () => {
    async function everything(q: string): Promise<Set<string>> {
      const out = new Set<string>();
      let cursor: string | null = null;
      do {
        const page: Awaited<ReturnType<typeof search>> = await search(q, `&namespace=home-manager&limit=100${cursor ? `&cursor=${enc(cursor)}` : ""}`);
        for (const h of page.hits) out.add(h.name);
        cursor = page.nextCursor;
      } while (cursor);
      return out;
    }
    const narrow = [...(await everything("services.syncthing"))].filter((n) => n.includes("syncthing"));
    const broad = await everything("syncthing");
    expect(narrow.length).toBeGreaterThan(10);
    expect(narrow.filter((n) => !broad.has(n))).toEqual([]);
  });

  it("finds an option by a quoted segment that contains dots", async () => {
    const list = await names("com.apple.Safari", "&namespace=home-manager&limit=50");
    expect(list.some((n) => n.startsWith('targets.darwin.defaults."com.apple.Safari"'))).toBe(true);
  });

  it("marks matched words in an HTML-escaped snippet", async () => {
    const hit = (await search("declarative ssh matchBlocks", "&namespace=home-manager")).hits.find((h) => h.snippet.includes("<mark>"));
    expect(hit).toBeDefined();
    expect(hit!.snippet).not.toMatch(/<(?!\/?mark>)/);
  });

  it("merges all namespaces by default and reports facets per namespace", async () => {
    const r = await search("secrets");
    const spaces = new Set(r.hits.map((h) => h.namespace));
    expect(spaces.has("agenix") || spaces.has("sops-nix")).toBe(true);
    expect(Object.keys(r.facets.namespace).sort()).toEqual(["agenix", "home-manager", "nix-darwin", "sops-nix"]);
    expect(r.shards.every((s) => s.status === "ok")).toBe(true);
    expect(r.partial).toBe(false);
  });

  it("pages with a cursor without repeating or skipping hits", async () => {
    const first = await search("git", "&limit=10&namespace=home-manager");
    expect(first.nextCursor).not.toBeNull();
    const second = await search("git", `&limit=10&namespace=home-manager&cursor=${enc(first.nextCursor!)}`);
    const all = await names("git", "&limit=20&namespace=home-manager");
    expect([...first.hits, ...second.hits].map((h) => h.name)).toEqual(all);
    const wrong = await api(`/api/v1/search?q=zsh&cursor=${enc(first.nextCursor!)}`);
    expect(wrong.status).toBe(400);
    const otherScope = await api(`/api/v1/search?q=git&limit=10&cursor=${enc(first.nextCursor!)}`);
    expect(otherScope.status).toBe(400);
  });

  it("pages a multi-word query to the end with one stable ranking: no repeats, steady total, at most 1,000", async () => {
    const seen: string[] = [];
    const totals = new Set<number>();
    let last = Infinity;
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Awaited<ReturnType<typeof search>> = await search("programs git signing key", `&limit=100${cursor ? `&cursor=${enc(cursor)}` : ""}`);
      totals.add(page.total);
      for (const h of page.hits) {
        expect(h.score).toBeLessThanOrEqual(last);
        last = h.score;
        seen.push(`${h.namespace}:${h.name}`);
      }
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 20);
    expect(cursor).toBeNull();
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeLessThanOrEqual(1000);
    expect(totals.size).toBe(1);
    const deep = await api(`/api/v1/search?q=git&cursor=${enc(btoa(JSON.stringify({ o: 1000, q: "git" })).replace(/=+$/, ""))}`);
    expect(deep.status).toBe(400);
  });

  it("reads the initials of long words as a name segment: `automatic garbage collection` → nix.gc.automatic", async () => {
    expect((await names("automatic garbage collection"))[0]).toMatch(/^nix\.gc\.automatic$/);
  });

  it("prefers the description that holds the words as typed: `tap to click` → trackpad.Clicking", async () => {
    expect((await names("tap to click"))[0]).toBe("system.defaults.trackpad.Clicking");
  });

  it("prefers the name made of the words asked for over one with more words besides them", async () => {
    expect((await names("home session variables", "&namespace=home-manager"))[0]).toBe("home.sessionVariables");
    expect((await names("tmux", "&namespace=home-manager"))[0]).toBe("programs.tmux.enable");
  });

  it("puts the enable option of a hyphenated module first for its words", async () => {
    expect((await names("gpg agent", "&namespace=home-manager"))[0]).toBe("services.gpg-agent.enable");
    expect((await names("screen locker", "&namespace=home-manager"))[0]).toBe("services.screen-locker.enable");
  });

  it("ranks sibling options that share most words above unrelated ones", async () => {
    const top = (await names("programs git signing key", "&namespace=home-manager&limit=4")).sort();
    expect(top).toEqual(["programs.git.signing.format", "programs.git.signing.key", "programs.git.signing.signByDefault", "programs.git.signing.signer"]);
  });

  it("reads a misspelt word as its nearest name word, as a flagged fallback", async () => {
    const r = await search("synctihng");
    expect(r.hits.slice(0, 3).map((h) => h.name)).toContain("services.syncthing.enable");
    expect(r.hits[0]!.fuzzy).toBe(true);
    expect(r.corrections).toMatchObject({ synctihng: "syncthing" });
    expect((await names("hyprlnd", "&namespace=home-manager")).slice(0, 3)).toContain("wayland.windowManager.hyprland.enable");
    expect((await names("servcies.syncthing", "&namespace=home-manager"))[0]).toBe("services.syncthing.enable");
  });

  it("answers words that mean nothing with nothing, not with near-random neighbours", async () => {
    for (const q of ["zzzzqq xxxxqq", "qwertyuiop asdfghjkl"]) {
      const r = await search(q);
      expect(r.hits, q).toEqual([]);
    }
  });

  it("reports a correction only for words no namespace knows, and none for a placeholder value", async () => {
    expect((await search("services.syncthing")).corrections).toEqual({});
    expect((await search("age.secrets.mysecret.owner")).corrections).toEqual({});
  });

  it("does not correct words that occur as typed, in names or descriptions", async () => {
    for (const q of ["syncthing", "inactivity", "git"]) {
      const r = await search(q);
      expect(r.corrections, q).toEqual({});
      expect(r.hits.some((h) => h.fuzzy), q).toBe(false);
    }
  });

  it("answers 404 for an unknown namespace filter", async () => {
    const res = await api("/api/v1/search?q=git&namespace=nope");
    expect(res.status).toBe(404);
    expect((await json(res)).error.code).toBe("namespace_not_found");
  });
});

describe("hostile query strings", () => {
  const hostile = [
    '"', '""', "'", "*", "**", "a*", "*a", "^", "^foo", ":", "name:foo", "description:x", "-x", "-", "+",
    "(", ")", "((((((((((x))))))))))", "NEAR(a b)", "NEAR(", "a AND", "AND", "OR", "NOT", "a OR b NOT c",
    "foo\"", "{name}: x", "{a b}:", ".", "..", "...", "<", ">", "<name>", "home-manager.*.", "services.nginx.enable",
    "foo?", "%", "%00", "\\", "\\\\", "'; DROP TABLE options; --", "\u0000", "\u200b", "🙂", "🙂🙂 git", "ñandú",
    "日本語", "ä", "\u202e", "a".repeat(256), "x ".repeat(16), "$(rm -rf /)", "`id`", "${pkgs.hello}", "&&", "||",
    "/*", "*/", "[", "]", "{}", "@", "#", "~", "=", ",", ";", "\t\n",
  ];

  it(`never answers 5xx for ${hostile.length} hostile strings`, async () => {
    expect(hostile.length).toBeGreaterThanOrEqual(40);
    for (const q of hostile) {
      const res = await api(`/api/v1/search?q=${enc(q)}`);
      expect([200, 400], `q=${JSON.stringify(q)} → ${res.status}`).toContain(res.status);
      const body = await json(res);
      if (res.status === 400) {
        expect(typeof body.error.code).toBe("string");
        expect(body.error.message).not.toMatch(/fts5|sqlite|syntax error/i);
      } else {
        expect(Array.isArray(body.hits)).toBe(true);
        expect(body.partial, `q=${JSON.stringify(q)} made a shard fail`).toBe(false);
      }
    }
  });

  it("rejects empty, whitespace-only and over-long queries with 400", async () => {
    for (const q of ["", "   ", "\t", "a".repeat(257), "b".repeat(10_000), Array.from({ length: 17 }, (_, i) => `w${i}`).join(" ")]) {
      const res = await api(`/api/v1/search?q=${enc(q)}`);
      expect(res.status, JSON.stringify(q)).toBe(400);
      expect(["query_empty", "query_too_long"]).toContain((await json(res)).error.code);
    }
    expect((await api("/api/v1/search")).status).toBe(400);
  });

  it("answers punctuation-only queries with an empty list, not an error (BR-13)", async () => {
    for (const q of ["*", ".", "..", "<", '"']) {
      const r = await search(q);
      expect(Array.isArray(r.hits)).toBe(true);
    }
  });
});

describe("degraded shards", () => {
  it("flags a partial answer when one shard fails and another hangs", async () => {
    const coordinator = env.SEARCH_COORDINATOR.get(env.SEARCH_COORDINATOR.idFromName("global"));
    await coordinator.injectShardFault("agenix", "error");
    await coordinator.injectShardFault("sops-nix", "hang");
    try {
      const started = Date.now();
      const r = await search("secrets");
      expect(Date.now() - started).toBeLessThan(5000);
      expect(r.partial).toBe(true);
      const status = Object.fromEntries(r.shards.map((s) => [s.namespace, s.status]));
      expect(status).toEqual({ agenix: "error", "home-manager": "ok", "nix-darwin": "ok", "sops-nix": "timeout" });
      expect(r.hits.every((h) => h.namespace === "home-manager" || h.namespace === "nix-darwin")).toBe(true);
    } finally {
      await coordinator.injectShardFault("agenix", null);
      await coordinator.injectShardFault("sops-nix", null);
    }
  });
});

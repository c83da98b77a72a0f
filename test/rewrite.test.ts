/**
 * Query rewriting with Workers AI text generation, against a fake binding in the shape Cloudflare
 * documents (`ai.run(model, { messages, … })` → `{ response }`): the request, the parsing of
 * untrusted model output, the fusion of rewrites into the answer, the cache that keeps pages of
 * one query consistent, and the fallback to the original query on timeout, error or a bad answer.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it, vi } from "vitest";
import type { SearchCoordinator, SearchResponse } from "../src/objects/SearchCoordinator.ts";
import { fuseRanked } from "../src/shared/fusion.ts";
import { parseRewriteOutput, QueryRewriter, rewriteRequest } from "../src/shared/rewrite.ts";
import type { SearchHit } from "../src/shared/types.ts";
import { InvalidResponseError } from "../src/shared/vectors/errors.ts";
import { api, dataFile, enc, json, postBatch } from "./helpers.ts";

const SERVICE = "Workers AI (test)";

function hit(namespace: string, name: string, score: number): SearchHit {
  return { namespace, name, loc: name.split("."), module: "m", type: "boolean", snippet: "", score, match: "text" };
}

describe("the Workers AI text-generation adapter", () => {
  it("asks with a system and a user message, deterministically, for JSON", async () => {
    const run = vi.fn(async () => ({ response: '{"queries": ["persistence directories"]}', usage: { prompt_tokens: 90 } }));
    const queries = await new QueryRewriter({ run }, "@cf/meta/llama-3.1-8b-instruct-fp8").rewrite("keep directories across reboots");
    expect(queries).toEqual(["persistence directories"]);
    expect(run).toHaveBeenCalledTimes(1);
    const [model, inputs] = run.mock.calls[0] as unknown as [string, ReturnType<typeof rewriteRequest>];
    expect(model).toBe("@cf/meta/llama-3.1-8b-instruct-fp8");
    expect(inputs.messages.map((m) => m.role)).toEqual(["system", "user"]);
    expect(inputs.messages[1]!.content).toBe("keep directories across reboots");
    expect(inputs.temperature).toBe(0);
    expect(inputs.response_format?.type).toBe("json_schema");
  });

  it("reads JSON given as an object, as a string, or wrapped in prose", () => {
    expect(parseRewriteOutput("q one", { response: { queries: ["a b"] } }, SERVICE)).toEqual(["a b"]);
    expect(parseRewriteOutput("q one", { response: 'Sure!\n```json\n{"queries": ["nix gc"]}\n```' }, SERVICE)).toEqual(["nix gc"]);
  });

  it("keeps at most three short, distinct, searchable queries that differ from the original", () => {
    const out = parseRewriteOutput("Keep dirs", { response: { queries: ["keep dirs", "  persist   dirs ", "persist dirs", "", "***", "x".repeat(200), "a b", "c d", "e f"] } }, SERVICE);
    expect(out).toEqual(["persist dirs", "a b", "c d"]);
  });

  it("rejects output without the documented shape", () => {
    for (const bad of [null, "text", { result: "x" }, { response: "no json here" }, { response: "{not json}" }, { response: { queries: "a" } }, { response: { queries: [1, 2] } }]) {
      expect(() => parseRewriteOutput("q one", bad, SERVICE), JSON.stringify(bad)).toThrow(InvalidResponseError);
    }
  });
});

describe("reciprocal rank fusion", () => {
  it("orders by the weighted sum of 1/(60 + rank), agreement between lists winning", () => {
    const original = [hit("a", "x", 9), hit("a", "y", 8), hit("a", "z", 7)];
    const rewrite = [hit("a", "z", 5), hit("b", "w", 4)];
    const fused = fuseRanked([{ hits: original, weight: 1 }, { hits: rewrite, weight: 0.5 }]);
    expect(fused.map((h) => h.name)).toEqual(["z", "x", "y", "w"]);
    expect(fused[0]!.score).toBeCloseTo((1 / 63 + 0.5 / 61) * 1000, 3);
  });
});

describe("rewriting in the coordinator", () => {
  beforeAll(async () => {
    for (const ns of ["impermanence", "home-manager"]) {
      const res = await postBatch(ns, await dataFile(`${ns}-options.json.gz`));
      expect(res.status, await res.clone().text()).toBe(200);
    }
  });

  /** Run a search in the coordinator with `vars` and an `AI` binding in its environment. */
  async function searchWith(ai: { run: (...args: any[]) => Promise<unknown> }, q: string, vars: Record<string, string> = {}, cursor?: string): Promise<SearchResponse> {
    const stub = env.SEARCH_COORDINATOR.get(env.SEARCH_COORDINATOR.idFromName("global"));
    return runInDurableObject(stub, async (instance: SearchCoordinator) => {
      const self = instance as unknown as { env: Record<string, unknown> };
      const saved = self.env;
      self.env = { ...saved, AI: ai, QUERY_REWRITE: "on", ...vars };
      try {
        const r = await instance.search({ q, limit: 10, ...(cursor ? { cursor } : {}) });
        if (!r.ok) throw new Error(JSON.stringify(r.error));
        return r.value;
      } finally {
        self.env = saved;
      }
    });
  }

  it("is off without an AI binding", async () => {
    const body = await json<SearchResponse>(await api(`/api/v1/search?q=${enc("keep directories across reboots")}`));
    expect(body.rewrite).toEqual({ status: "off", queries: [] });
  });

  it("fuses the model's keyword queries into a plain-language answer, and caches them for the next pages", async () => {
    const q = "keep directories across reboots";
    const plain = await json<SearchResponse>(await api(`/api/v1/search?q=${enc(q)}`));
    expect(plain.hits[0]!.name).not.toBe("environment.persistence.<name>.directories");
    const run = vi.fn(async () => ({ response: { queries: ["persistence directories"] } }));
    const first = await searchWith({ run }, q);
    expect(first.rewrite).toEqual({ status: "ok", queries: ["persistence directories"] });
    expect(`${first.hits[0]!.namespace}:${first.hits[0]!.name}`).toBe("impermanence:environment.persistence.<name>.directories");
    expect(first.partial).toBe(false);
    // The next page comes from the same fused ranking: the model is not asked again.
    const second = await searchWith({ run }, q, {}, first.nextCursor!);
    expect(run).toHaveBeenCalledTimes(1);
    const page1 = first.hits.map((h) => `${h.namespace}:${h.name}`);
    expect(second.hits.some((h) => page1.includes(`${h.namespace}:${h.name}`))).toBe(false);
  });

  it("does not ask the model when the words already match option names", async () => {
    const run = vi.fn(async () => ({ response: { queries: ["something else"] } }));
    const r = await searchWith({ run }, "git signing key");
    expect(r.rewrite.status).toBe("skipped");
    expect(r.hits[0]!.name.startsWith("programs.git.signing.")).toBe(true);
  });

  it("answers with the original query when the model is slow, fails or talks nonsense", async () => {
    const q = "remember my shell history forever";
    const plain = await json<SearchResponse>(await api(`/api/v1/search?q=${enc(q)}&limit=10`));
    const names = plain.hits.map((h) => h.name);
    const slow = await searchWith({ run: () => new Promise(() => {}) }, q, { QUERY_REWRITE_TIMEOUT_MS: "50" });
    expect(slow.rewrite.status).toBe("timeout");
    expect(slow.hits.map((h) => h.name)).toEqual(names);
    const failing = await searchWith({ run: async () => { throw new Error("AI down"); } }, q);
    expect(failing.rewrite.status).toBe("error");
    expect(failing.hits.map((h) => h.name)).toEqual(names);
    const nonsense = await searchWith({ run: async () => ({ response: "I cannot help with that." }) }, q);
    expect(nonsense.rewrite.status).toBe("error");
    expect(nonsense.hits.map((h) => h.name)).toEqual(names);
    expect([slow, failing, nonsense].every((r) => r.partial === false)).toBe(true);
  });
});

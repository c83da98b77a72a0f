/**
 * Paging a re-ranked search: `boost=usage` re-ranks one fixed depth of hits, so every page is cut
 * from the same ranking (no repeats, no gaps), however small the pages.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, api, enc, json, postBatch } from "./helpers.ts";

const COUNT = 30;

beforeAll(async () => {
  const modules = Array.from({ length: COUNT }, (_, i) => ({
    path: `m${String(i).padStart(2, "0")}.nix`,
    options: { [`x${String(i).padStart(2, "0")}.theme`]: { loc: [`x${String(i).padStart(2, "0")}`, "theme"], type: "string", description: "The theme." } },
  }));
  expect((await postBatch("boostpage", { modules })).status).toBe(200);
  // One host uses the module of the last option by name: the boost lifts it from the last place.
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode("boost-paging.example.org"));
  const host = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const res = await api("/api/v1/telemetry", {
    method: "POST",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ host, environment: "production", system: "x86_64-linux", reportedAt: Math.floor(Date.now() / 1000), modules: ["boostpage:m29.nix"] }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
});

describe("boost=usage paging", () => {
  it("pages one ranking: the boosted hit first, every hit once", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { hits: { name: string }[]; nextCursor: string | null } = await json(
        await api(`/api/v1/search?q=theme&namespace=boostpage&limit=2&boost=usage${cursor ? `&cursor=${enc(cursor)}` : ""}`),
      );
      seen.push(...page.hits.map((h) => h.name));
      cursor = page.nextCursor;
    } while (cursor && seen.length <= COUNT);
    expect(seen[0]).toBe("x29.theme");
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toHaveLength(COUNT);
  });
});

/**
 * Every match is ranked: an option with a weak full-text score but the strongest ranking signal
 * comes first even when hundreds of options score better on bm25 alone, and `total` counts
 * every match.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, enc, json, postBatch } from "./helpers.ts";

const FILLERS = 600;

function option(loc: string[], description: string) {
  return { loc, type: "boolean", description, declarations: [`modules/${loc[1]}.nix`], readOnly: false };
}

beforeAll(async () => {
  const doc: Record<string, unknown> = {};
  // Descriptions dense in both words: the best bm25 scores of the namespace.
  for (let i = 0; i < FILLERS; i++) {
    doc[`gadgets.filler${i}.level`] = option(["gadgets", `filler${i}`, "level"], "Frobnicate gizmo. Frobnicate gizmo frobnicate gizmo.");
  }
  // One module entry point whose long description holds each word once: the weakest bm25.
  doc["services.wombat.enable"] = option(
    ["services", "wombat", "enable"],
    "Whether to enable the wombat daemon, which will frobnicate the configured gizmo once a day after the machine has been idle for a long while and the network is reachable.",
  );
  const res = await postBatch("depth", doc);
  expect(res.status, await res.clone().text()).toBe(200);
});

describe("no cut-off before ranking", () => {
  it("ranks a module's enable first among description matches, whatever its bm25", async () => {
    const res = await api(`/api/v1/search?q=${enc("frobnicate gizmo")}&namespace=depth&limit=5`);
    expect(res.status).toBe(200);
    const body = await json<{ hits: { name: string }[]; total: number }>(res);
    expect(body.hits[0]!.name).toBe("services.wombat.enable");
    expect(body.total).toBe(FILLERS + 1);
  });
});

import { describe, expect, it } from "vitest";
import { api, json, postBatch } from "./helpers.ts";

describe("smoke", () => {
  it("ingests a tiny options.json and reads it back", async () => {
    const res = await postBatch("tiny", {
      "programs.git.enable": { declarations: ["modules/programs/git.nix"], description: "Whether to enable Git.", loc: ["programs", "git", "enable"], readOnly: false, type: "boolean", default: { _type: "literalExpression", text: "false" } },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const opt = await api("/api/v1/namespaces/tiny/options/programs.git.enable");
    expect(opt.status).toBe(200);
    expect((await json(opt)).default).toEqual({ kind: "expression", text: "false" });
    const s = await json(await api("/api/v1/search?q=git"));
    expect(s.hits[0].name).toBe("programs.git.enable");
  });
});

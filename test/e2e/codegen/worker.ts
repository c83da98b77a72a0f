/**
 * A probe worker for test/e2e/codegen.test.ts, run by a real `wrangler dev` at the project's
 * compatibility date and flags (no unsafe-eval binding, unlike the vitest pool). It exercises the
 * project's own codec and schemas during requests, and a library default they avoid, so the test
 * can show both that code generation is forbidden and that our configuration does not need it.
 *
 * Failing is not the only sign of code generation: a library may try `new Function`, catch the
 * error and fall back (msgpackr's default build does since 2.x). So each probe also counts the
 * attempts, through spies put in place of the global `Function` and `eval` for its duration, and
 * answers `{ ok: true, value, codegenAttempts }` or `{ ok: false, error, codegenAttempts }`.
 * (Code reaching the constructor another way, e.g. `(() => {}).constructor`, is not counted; the
 * runtime still refuses it, so it can only go unseen where a library swallows the refusal.)
 * `/health` touches nothing.
 */
import { Packr } from "msgpackr";
import { pack, unpack } from "../../../src/shared/codec.ts";
import { normalizeOptionsJson } from "../../../src/shared/schemas.ts";
import { z } from "../../../src/shared/zod.ts";

const records = Array.from({ length: 50 }, (_, i) => ({ name: `opt${i}`, loc: ["a", String(i)], readOnly: i % 2 === 0 }));

/** Runs `fn` with counting spies as the global `Function` and `eval`, and reports its outcome. */
function attempt(fn: () => unknown): Response {
  const realFunction = globalThis.Function;
  const realEval = globalThis.eval;
  let codegenAttempts = 0;
  globalThis.Function = new Proxy(realFunction, {
    construct(target, args) {
      codegenAttempts++;
      return Reflect.construct(target, args);
    },
    apply(target, self, args) {
      codegenAttempts++;
      return Reflect.apply(target, self, args);
    },
  });
  Reflect.set(globalThis, "eval", new Proxy(realEval, {
    apply(target, self, args) {
      codegenAttempts++;
      return Reflect.apply(target, self, args);
    },
  }));
  try {
    const value = fn();
    return Response.json({ ok: true, value, codegenAttempts });
  } catch (err) {
    return Response.json({ ok: false, error: String(err), codegenAttempts });
  } finally {
    globalThis.Function = realFunction;
    Reflect.set(globalThis, "eval", realEval);
  }
}

export default {
  async fetch(request: Request): Promise<Response> {
    switch (new URL(request.url).pathname) {
      case "/health":
        return Response.json({ ok: true });
      case "/new-function":
        // The control: shows that this runtime forbids code generation during a request.
        return attempt(() => new Function("return 1")());
      case "/msgpackr-default":
        // msgpackr's default build compiles record readers with new Function after a few records
        // (once per isolate: after a refusal it stops trying, so only the first request shows it).
        return attempt(() => {
          const p = new Packr();
          for (let i = 0; i < 5; i++) p.unpack(p.pack(records));
          return "decoded";
        });
      case "/codec":
        return attempt(() => {
          for (let i = 0; i < 5; i++) if (JSON.stringify(unpack(pack(records))) !== JSON.stringify(records)) throw new Error("mismatch");
          return "decoded";
        });
      case "/zod-object-parse":
        // An object schema built and parsed during the request. zod's configuration is global, so
        // src/shared/zod.ts's `jitless` holds for every zod import in the bundle, not just this one.
        return attempt(() => z.object({ a: z.string(), b: z.number() }).parse({ a: "x", b: 1 }));
      case "/schemas":
        return attempt(() => {
          const out = normalizeOptionsJson({
            "programs.git.enable": { declarations: ["modules/programs/git.nix"], description: "Whether to enable Git.", loc: ["programs", "git", "enable"], readOnly: false, type: "boolean" },
          });
          if (!("options" in out)) throw new Error(JSON.stringify(out.issues));
          return out.options.length;
        });
      default:
        return new Response("not found", { status: 404 });
    }
  },
};

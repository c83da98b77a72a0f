/**
 * Query rewriting with a Workers AI text-generation model, for plain-language searches
 * (`keep directories across reboots`) whose words are not the words of option names
 * (`environment.persistence.<name>.directories`). The model proposes a few short keyword
 * queries; the coordinator searches them beside the original and fuses the lists. Everything
 * the model says is untrusted input: it is parsed, bounded and re-parsed as a query, and any
 * failure, timeout or odd answer leaves the original query alone.
 * @module
 */
import { parseQuery } from "./query.ts";
import { InvalidResponseError } from "./vectors/errors.ts";
import { z } from "./zod.ts";

/** The part of the Workers AI binding used for text generation (tests pass a plain object). */
export interface TextGenerationRunner {
  run(model: string, inputs: TextGenerationInput): Promise<unknown>;
}

export interface TextGenerationInput {
  messages: { role: "system" | "user"; content: string }[];
  max_tokens: number;
  temperature: number;
  response_format?: { type: "json_schema"; json_schema: unknown };
}

export const DEFAULT_REWRITE_MODEL = "@cf/meta/llama-3.1-8b-instruct-fp8";
/** Keyword queries kept from one answer. */
export const MAX_REWRITES = 3;
const MAX_REWRITE_CHARS = 80;

const SYSTEM_PROMPT = [
  "You turn a search for NixOS, Home Manager, nix-darwin or Neovim (nixvim) configuration options into keyword queries.",
  "Option names are dotted paths such as services.openssh.enable, nix.gc.automatic, programs.git.signing.key,",
  "environment.persistence.<name>.directories, system.defaults.trackpad.Clicking.",
  `Answer with up to ${MAX_REWRITES} short queries of 1 to 4 words that would appear in the names or descriptions of the options the user wants.`,
  'Answer only with JSON: {"queries": ["...", "..."]}.',
].join(" ");

const RESPONSE_JSON_SCHEMA = {
  type: "object",
  properties: { queries: { type: "array", items: { type: "string" }, maxItems: MAX_REWRITES } },
  required: ["queries"],
};

const answerSchema = z.object({ queries: z.array(z.string()) });
const outputSchema = z.object({ response: z.union([z.string(), z.record(z.string(), z.unknown())]) });

/** The request sent to the model for `q` (exported so the adapter test can check its shape). */
export function rewriteRequest(q: string): TextGenerationInput {
  return {
    messages: [
      { role: "system", content: SYSTEM_PROMPT },
      { role: "user", content: q },
    ],
    max_tokens: 96,
    // Deterministic: pages of one query must be cut from one ranking (the answer is also cached).
    temperature: 0,
    response_format: { type: "json_schema", json_schema: RESPONSE_JSON_SCHEMA },
  };
}

/**
 * The keyword queries in a model's output: at most `MAX_REWRITES`, each a valid, short,
 * non-dotted query different from the original. Throws `InvalidResponseError` when the output
 * does not have the documented shape (`{ response: string | object }`).
 */
export function parseRewriteOutput(original: string, output: unknown, service: string): string[] {
  const shape = outputSchema.safeParse(output);
  if (!shape.success) throw new InvalidResponseError(service, "expected { response }");
  let answer: unknown = shape.data.response;
  if (typeof answer === "string") {
    // Models sometimes wrap the JSON in prose or a code fence: take the outermost object.
    const start = answer.indexOf("{");
    const end = answer.lastIndexOf("}");
    if (start < 0 || end <= start) throw new InvalidResponseError(service, "no JSON object in the response");
    try {
      answer = JSON.parse(answer.slice(start, end + 1));
    } catch {
      throw new InvalidResponseError(service, "the response is not valid JSON");
    }
  }
  const parsed = answerSchema.safeParse(answer);
  if (!parsed.success) throw new InvalidResponseError(service, "expected { queries: string[] }");
  const seen = new Set([original.trim().toLowerCase()]);
  const out: string[] = [];
  for (const raw of parsed.data.queries) {
    const text = raw.replace(/\s+/g, " ").trim();
    if (!text || text.length > MAX_REWRITE_CHARS || seen.has(text.toLowerCase())) continue;
    try {
      if (parseQuery(text).terms.length === 0) continue;
    } catch {
      continue;
    }
    seen.add(text.toLowerCase());
    out.push(text);
    if (out.length === MAX_REWRITES) break;
  }
  return out;
}

export class QueryRewriter {
  readonly model: string;
  readonly #ai: TextGenerationRunner;

  constructor(ai: TextGenerationRunner, model = DEFAULT_REWRITE_MODEL) {
    this.#ai = ai;
    this.model = model;
  }

  async rewrite(q: string): Promise<string[]> {
    const output = await this.#ai.run(this.model, rewriteRequest(q));
    return parseRewriteOutput(q, output, `Workers AI (${this.model})`);
  }
}

/** Whether a query is the plain-language kind worth rewriting: several words, not a path. */
export function wantsRewrite(q: string): boolean {
  const query = parseQuery(q);
  return !query.dotted && query.terms.length >= 2;
}

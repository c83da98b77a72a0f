/**
 * `WorkersAiEmbedder`: text embeddings from a Workers AI model (bge-base-en-v1.5 by default).
 * One `ai.run(model, { text: [...] })` per 100 texts, the most the embedding models take per
 * request. The answer comes from the network and is checked against the documented shape
 * (`{ shape: [n, dims], data: number[][] }`): the right count and dimensions, finite numbers.
 * @module
 */
import { z } from "../zod.ts";
import type { Embedder } from "./embedder.ts";
import { InvalidResponseError } from "./errors.ts";

/**
 * The part of the Workers AI binding used here. The `Ai` binding satisfies it; tests pass a
 * plain object. (Typed structurally so this module also type-checks outside workerd.)
 */
export interface AiRunner {
  run(model: string, inputs: { text: string[]; pooling?: "mean" | "cls" }): Promise<unknown>;
}

/** Texts per `ai.run` call (Workers AI's batch limit for its text embedding models). */
export const WORKERS_AI_BATCH = 100;

/** Output dimensions of the embedding models this is meant for. */
const KNOWN_DIMENSIONS: Record<string, number> = {
  "@cf/baai/bge-small-en-v1.5": 384,
  "@cf/baai/bge-base-en-v1.5": 768,
  "@cf/baai/bge-large-en-v1.5": 1024,
  "@cf/baai/bge-m3": 1024,
};

export interface WorkersAiEmbedderOptions {
  /** Required for models not in the built-in table. */
  dimensions?: number;
  /**
   * Pooling of the bge models. Sent only when set; `cls` vectors are not comparable with the
   * default `mean` ones, so it is part of the id.
   */
  pooling?: "mean" | "cls";
}

const responseSchema = z.object({
  shape: z.array(z.number().int().nonnegative()).length(2),
  data: z.array(z.array(z.number())),
  pooling: z.enum(["mean", "cls"]).optional(),
});

export class WorkersAiEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  readonly model: string;
  readonly #ai: AiRunner;
  readonly #service: string;
  readonly #pooling: "mean" | "cls" | undefined;

  constructor(ai: AiRunner, model = "@cf/baai/bge-base-en-v1.5", options: WorkersAiEmbedderOptions = {}) {
    this.#ai = ai;
    this.model = model;
    const dimensions = options.dimensions ?? KNOWN_DIMENSIONS[model];
    if (dimensions === undefined) throw new RangeError(`unknown embedding model ${model}: pass its dimensions`);
    this.dimensions = dimensions;
    this.#pooling = options.pooling;
    this.id = `workers-ai:${model}${options.pooling ? `:${options.pooling}` : ""}`;
    this.#service = `Workers AI (${model})`;
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += WORKERS_AI_BATCH) {
      const batch = texts.slice(start, start + WORKERS_AI_BATCH);
      const inputs = this.#pooling ? { text: batch, pooling: this.#pooling } : { text: batch };
      out.push(...this.#vectors(await this.#ai.run(this.model, inputs), batch.length));
    }
    return out;
  }

  /** The batch's vectors, or an `InvalidResponseError` saying what is wrong with the answer. */
  #vectors(response: unknown, count: number): Float32Array[] {
    const bad = (detail: string) => new InvalidResponseError(this.#service, detail);
    if (response !== null && typeof response === "object" && "request_id" in response && !("data" in response)) {
      throw bad("an asynchronous request id instead of embeddings");
    }
    const parsed = responseSchema.safeParse(response);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw bad(`${issue.path.join(".") || "response"}: ${issue.message}`);
    }
    const { shape, data, pooling } = parsed.data;
    if (shape[0] !== count || data.length !== count) throw bad(`${data.length} vectors (shape [${shape.join(", ")}]) for ${count} texts`);
    if (shape[1] !== this.dimensions) throw bad(`${shape[1]}-dimensional vectors (shape); expected ${this.dimensions}`);
    if (this.#pooling && pooling && pooling !== this.#pooling) throw bad(`${pooling} pooling; asked for ${this.#pooling}`);
    return data.map((row, i) => {
      if (row.length !== this.dimensions) throw bad(`vector ${i} has ${row.length} dimensions; expected ${this.dimensions}`);
      const v = Float32Array.from(row);
      // Finite doubles beyond float32's range would become Infinity.
      if (!v.every(Number.isFinite)) throw bad(`vector ${i} has components outside the float32 range`);
      return v;
    });
  }
}

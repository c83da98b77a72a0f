/** The one interface every engine of the relevance benchmark implements. @module */
import type { Doc } from "../docs.ts";

export interface Engine {
  /** Short name for tables (≤ 10 characters). */
  readonly name: string;
  /** How it is configured, one line for the report. */
  readonly description: string;
  /** Index the documents (timed by the runner as the engine's build time). */
  build(docs: readonly Doc[]): Promise<void>;
  /** Ranked ids (`namespace:name`), best first, at most `limit`; only `namespace`'s when given. */
  search(q: string, namespace: string | undefined, limit: number): Promise<string[]>;
  /** Free what build() made (servers, databases). */
  close(): Promise<void>;
}

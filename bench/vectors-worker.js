// Worker for bench/embed.ts (run by `wrangler dev`): one Durable Object with the shard's migrations and a
// SqliteVectorStore, so local embedding and exact top-k run inside real workerd. Plain JS because the bench scripts are type-checked against Node's types, not workerd's.
// Timing happens on the Node side: workerd's clock does not advance while code runs.
import { DurableObject } from "cloudflare:workers";
import { applyMigrations } from "../src/objects/migrations.ts";
import { SHARD_MIGRATIONS } from "../src/objects/NamespaceShard/schema.ts";
import { SqliteVectorStore } from "../src/objects/NamespaceShard/vectorStore.ts";
import { LocalEmbedder } from "../src/shared/vectors/local.ts";

export class BenchShard extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.embedder = new LocalEmbedder();
    this.store = null;
    void ctx.blockConcurrencyWhile(async () => applyMigrations(ctx.storage, SHARD_MIGRATIONS));
  }

  vectorStore() {
    this.store ??= new SqliteVectorStore(this.ctx.storage, { embedderId: this.embedder.id, dimensions: this.embedder.dimensions });
    return this.store;
  }

  async fetch(request) {
    const path = new URL(request.url).pathname;
    const body = request.method === "POST" ? await request.json() : {};
    switch (path) {
      case "/echo":
        return Response.json({ n: body.texts?.length ?? 0 });
      case "/embed": {
        let n = 0;
        for (const t of body.texts) n += this.embedder.embedOne(t).length;
        return Response.json({ n });
      }
      case "/load": {
        const store = this.vectorStore();
        const rows = body.texts.map((t, i) => ({ optionId: i + 1, contentHash: "0".repeat(64), values: this.embedder.embedOne(t) }));
        store.put(rows);
        return Response.json({ count: store.count(), bytes: this.ctx.storage.sql.databaseSize });
      }
      case "/query": {
        const store = this.vectorStore();
        let hits = 0;
        for (let r = 0; r < body.repeat; r++) for (const q of body.queries) hits += store.search(this.embedder.embedOne(q), body.k).length;
        return Response.json({ hits });
      }
      case "/cold": {
        // A fresh store has no decoded copy: this query reads and decodes every row first.
        this.store = null;
        return Response.json({ hits: this.vectorStore().search(this.embedder.embedOne(body.q), body.k).length });
      }
      default:
        return Response.json({});
    }
  }
}

export default {
  fetch(request, env) {
    if (new URL(request.url).pathname === "/health") return Response.json({ ok: true });
    return env.SHARD.get(env.SHARD.idFromName("bench")).fetch(request);
  },
};

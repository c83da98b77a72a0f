/**
 * `NamespaceShard`: one Durable Object per namespace (a module collection such as
 * `home-manager`), reached with `idFromName(namespace)`. Its SQLite database holds the modules,
 * their version history, the options, import edges and the FTS5 index; it answers reads and
 * keyword search for its namespace. RPC methods validate their input and leave the logic to
 * `src/shared`; all SQL is in `store.ts`.
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import { packCompressed, unpackCompressed } from "../../shared/codec.ts";
import { contentHash } from "../../shared/canonical.ts";
import { decodeCursor, encodeCursor } from "../../shared/cursor.ts";
import { diffModules, optionFieldChanges } from "../../shared/diff.ts";
import { applyOptionPatch, optionPatch, type OptionPatch } from "../../shared/edit.ts";
import { ApiError, rpcResult as rpc, type RpcResult } from "../../shared/errors.ts";
import { LIMITS } from "../../shared/limits.ts";
import { COORDINATOR_NAME } from "../../shared/objectNames.ts";
import { isPlaceholder, locKey, parseOptionName } from "../../shared/optionName.ts";
import { NameVocabulary } from "../../shared/fuzzy.ts";
import { liveEventType, roomName, type LiveEvent } from "../../shared/live.ts";
import { correctQuery, ftsAcronym, ftsAll, ftsAny, ftsPhrase, parseQuery, type ParsedQuery } from "../../shared/query.ts";
import { nameFeatures, placeholderBindings, score, snippet, type NameFeatures } from "../../shared/rank.ts";
import { modulePath, namespaceName, zodIssues } from "../../shared/schemas.ts";
import { ingestRequestSchema, liveSyncRequestSchema, moduleRecordSchema, type LiveSyncRequest } from "../../shared/shardSchemas.ts";
import type { ChangeList, IngestRequest, IngestSummary, ModuleRecord, SearchHit, ShardCounts, ShardSearchResult, ShardVectorInput } from "../../shared/types.ts";
import type { DiffView, FieldChange, ModuleSummary, ModuleView, OptionView, Page, VersionView } from "../../shared/views.ts";
import { optionEmbeddingText } from "../../shared/vectors/embedder.ts";
import { LocalEmbedder } from "../../shared/vectors/local.ts";
import { planEmbeddings } from "../../shared/vectors/plan.ts";
import { optionVectorKey } from "../../shared/vectors/index.ts";
import { remoteVectors, type RemoteVectorBindings, type RemoteVectors } from "../../shared/vectors/remote.ts";
import { WORKERS_AI_BATCH } from "../../shared/vectors/workersAi.ts";
import { applyMigrations } from "../migrations.ts";
import { SqliteVectorStore } from "./vectorStore.ts";
import * as vectorRows from "./vectors.ts";
import { embeddingSources, liveOptionHashes } from "./vectors.ts";
import { SHARD_MIGRATIONS } from "./schema.ts";
import * as store from "./store.ts";
import { z } from "../../shared/zod.ts";

/** A batch of `existingModules`: the usage top list asks for a little more than a page. */
const existingModulesInput = z.array(modulePath).max(4 * LIMITS.maxPageSize);

/** How far a hit found through a typo correction ranks below one found as typed (half a tier). */
const FUZZY_PENALTY = 500;

/** Nearest options by embedding that a search considers (exact cosine over the shard's vectors). */
const VECTOR_TOP_K = 50;
/**
 * Vectors join a search of several words only when no option holds them all in its name, and
 * when the keyword sources found fewer candidates than this (a scan is not worth it otherwise).
 */
const VECTOR_WHEN_CANDIDATES_BELOW = 60;
/** Nearest options less similar than this are noise (random words share a few hashed trigrams). */
const VECTOR_MIN_SIMILARITY = 0.3;
/** Options embedded per transaction when vectors are brought up to date. */
const EMBED_BATCH = 2_000;

/**
 * Live publishing: the alarm that guarantees delivery fires this long after a commit (publishing
 * right after the commit normally makes it unnecessary), and retries back off from here.
 */
const LIVE_RETRY_MS = 2_000;
const LIVE_RETRY_MAX_MS = 5 * 60_000;

/** What an edit (PUT module, PATCH option) did: the module's version after it. */
export interface EditResult {
  namespace: string;
  module: string;
  version: number;
  /** False when the edit changed nothing (no version was created). */
  changed: boolean;
  summary: IngestSummary;
}

/** A page of live events for a room: events after the asked `seq`, and the latest `seq`. */
export interface LiveSyncResult {
  events: LiveEvent[];
  latest: number;
  epoch: string;
}

/**
 * A search candidate: its name and path (JSON), its best bm25 (null: found by name lookup),
 * whether only a partial match found it, and its embedding similarity to the query when it is
 * among the nearest.
 */
interface CandidateInfo {
  name: string;
  loc: string;
  bm25: number | null;
  anyOnly: boolean;
  vector?: number;
  phrase?: boolean;
}

/** A candidate's place in the ranking, before its row is read for the page. */
interface RankedCandidate {
  id: number;
  name: string;
  loc: string[];
  score: number;
  match: SearchHit["match"];
  rest?: string[];
  fuzzy?: boolean;
}

function rateCandidate(asked: ParsedQuery, info: CandidateInfo, features: NameFeatures, penalty: number): Omit<RankedCandidate, "id"> {
  const loc = features.loc;
  const s = score(asked, { name: info.name, loc, features, bm25: info.bm25, anyOnly: info.anyOnly, vector: info.vector ?? 0, phrase: info.phrase === true });
  const out: Omit<RankedCandidate, "id"> = { name: info.name, loc: [...loc], score: s.score - penalty, match: s.match };
  if (s.match === "ancestor") out.rest = asked.lower.split(".").slice(loc.length);
  return out;
}

/**
 * A multi-batch `replace` import that sends nothing for this long is abandoned: it no longer
 * blocks other replace imports, and its bookkeeping is dropped.
 */
const IMPORT_SESSION_TTL_MS = 60 * 60 * 1000;

interface PlannedModule {
  record: ModuleRecord;
  hash: string;
  optionHashes: Map<string, string>;
  existing: store.ModuleRow | null;
  previous: ModuleRecord | null;
  changes: ChangeList;
  snapshot: Uint8Array;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

export class NamespaceShard extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  /** Writes are serialized: each awaits hashing and compression before its one transaction. */
  #writeQueue: Promise<unknown> = Promise.resolve();
  /** The running drain of unpublished live events (one at a time), and whether to run it again. */
  #draining: Promise<boolean> | null = null;
  #drainAgain = false;
  #liveRetries = 0;
  /** Name words for typo correction; dropped when an ingest commits, rebuilt on demand. */
  #vocabulary: NameVocabulary | null = null;
  /** Name words of options ranked since the last ingest, by option id (ranking reads them for every match). */
  readonly #features = new Map<number, NameFeatures>();
  /** The local embedder of options and queries (no network, no weights; see local.ts). */
  readonly #embedder = new LocalEmbedder();
  #vectorStore: SqliteVectorStore | null = null;
  /** Whether this instance has checked that every live option has a current vector. */
  #vectorsSynced = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, SHARD_MIGRATIONS);
      // Versions committed but not yet published (the process died in between) get their alarm.
      if (this.#unpublished() && (await ctx.storage.getAlarm()) === null) await ctx.storage.setAlarm(Date.now());
    });
  }

  /** Run a write after every earlier one has finished (edits read the state an ingest leaves). */
  #serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#writeQueue.then(fn);
    this.#writeQueue = run.catch(() => undefined);
    return run;
  }

  #namespace(): string | null {
    return store.getMeta(this.#sql, "namespace");
  }

  /** The namespace this shard holds; reads of a shard that never received data are 404s. */
  #requireNamespace(namespace: string): string {
    const stored = this.#namespace();
    if (stored === null) throw new ApiError(404, "namespace_not_found", `namespace ${namespace} does not exist`);
    return stored;
  }

  #requireModule(namespace: string, path: string): store.ModuleRow {
    this.#requireNamespace(namespace);
    const row = store.moduleByPath(this.#sql, path);
    if (!row) throw new ApiError(404, "module_not_found", `module ${path} does not exist in namespace ${namespace}`);
    return row;
  }

  // ---- writes -----------------------------------------------------------------------------------

  /** Apply one batch, all or nothing. Unchanged modules (same content hash) create no version. */
  ingest(namespace: string, request: IngestRequest): Promise<RpcResult<IngestSummary>> {
    return rpc(() => {
      const ns = namespaceName.safeParse(namespace);
      if (!ns.success) throw new ApiError(400, "validation_failed", "invalid namespace name");
      const parsed = ingestRequestSchema.safeParse(request);
      if (!parsed.success) throw new ApiError(400, "validation_failed", "invalid ingest request; nothing was written", { issues: zodIssues(parsed.error) });
      return this.#serialized(() => this.#ingest(ns.data, parsed.data as IngestRequest));
    });
  }

  async #ingest(namespace: string, req: IngestRequest): Promise<IngestSummary> {
    const stored = this.#namespace();
    if (stored !== null && stored !== namespace) {
      throw new ApiError(400, "bad_request", `this shard holds namespace ${stored}, not ${namespace}`);
    }
    if (req.mode === "replace") {
      // Two replace imports at once would each sweep what the other delivered.
      const other = store.otherOpenImport(this.#sql, req.importId ?? null, Date.now() - IMPORT_SESSION_TTL_MS);
      if (other) {
        throw new ApiError(409, "conflict", `another replace import (${other.importId}) of namespace ${namespace} is in progress; retry when it has sent its final batch`, {
          importId: other.importId,
          lastActivity: other.lastActivity,
          abandonedAfterMs: IMPORT_SESSION_TTL_MS,
        });
      }
    }
    const summary: IngestSummary = {
      namespace,
      modules: { added: 0, changed: 0, unchanged: 0, removed: 0 },
      options: { added: 0, changed: 0, removed: 0 },
      versionsCreated: 0,
    };

    // Everything asynchronous (hashing, decompressing old snapshots, compressing new ones) happens
    // before the single synchronous transaction that writes the batch.
    const planned: PlannedModule[] = [];
    for (const record of req.modules) {
      const hash = await contentHash(record);
      const existing = store.moduleByPath(this.#sql, record.path);
      if (existing && existing.deleted_at === null && existing.content_hash === hash) {
        summary.modules.unchanged++;
        continue;
      }
      const prevBytes = existing ? store.latestSnapshot(this.#sql, existing.id) : null;
      const previous = existing && existing.deleted_at === null && prevBytes ? await unpackCompressed<ModuleRecord>(prevBytes) : null;
      const changes = diffModules(previous, record);
      if (existing?.deleted_at != null) changes.restored = true;
      const optionHashes = new Map<string, string>();
      for (const o of record.options) optionHashes.set(o.name, await contentHash(o));
      planned.push({ record, hash, optionHashes, existing, previous, changes, snapshot: await packCompressed(record) });
    }

    const sweep: { row: store.ModuleRow; previous: ModuleRecord | null }[] = [];
    const seen = new Set(req.modules.map((m) => m.path));
    if (req.mode === "replace" && req.final) {
      if (req.importId) for (const p of store.importSeenPaths(this.#sql, req.importId)) seen.add(p);
      for (const path of store.liveModulePaths(this.#sql)) {
        if (seen.has(path)) continue;
        const row = store.moduleByPath(this.#sql, path)!;
        const bytes = store.latestSnapshot(this.#sql, row.id);
        sweep.push({ row, previous: bytes ? await unpackCompressed<ModuleRecord>(bytes) : null });
      }
    }
    // A module this batch removes records its moved options in its removal version instead.
    const newOwner = new Map<string, string>();
    for (const m of req.modules) for (const o of m.options) newOwner.set(locKey(o.loc), m.path);
    let moved = await this.#planMoves(req.modules, newOwner, planned, new Set(sweep.map((x) => x.row.id)));

    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      if (stored === null) store.setMeta(this.#sql, "namespace", namespace);
      // Options this batch assigns to some module: such an option is not "removed" from the
      // module that used to own it, it moved.
      const claimed = new Set(req.modules.flatMap((m) => m.options.map((o) => locKey(o.loc))));
      for (const p of planned) this.#writeModule(p, claimed, now, summary);
      for (const { row, previous } of sweep) moved += this.#removeModule(row, previous, newOwner, now, summary);
      if (req.importId) {
        if (req.final) store.forgetImport(this.#sql, req.importId, now - IMPORT_SESSION_TTL_MS);
        else store.markImportSeen(this.#sql, req.importId, [...seen], now);
      }
    });
    // The new versions are the live outbox. The alarm is set in the same turn as the commit (no
    // await in between), so both are written together: if this object dies before publishing
    // below, the alarm publishes them.
    if (summary.versionsCreated > 0) void this.ctx.storage.setAlarm(Date.now() + LIVE_RETRY_MS);
    this.#vocabulary = null;
    this.#features.clear();
    // Subscribers first: embedding and the registry report can wait, the live event should not.
    if (summary.versionsCreated > 0) await this.#publishLive();
    if (summary.versionsCreated > 0) {
      const remote = remoteVectors(this.env as RemoteVectorBindings);
      if (remote) await this.syncRemoteVectors(remote);
      else this.#syncVectors();
    }
    // A moved option left one module and joined another: for the namespace it changed, it was
    // neither added nor removed.
    summary.options.added -= moved;
    summary.options.removed -= moved;
    summary.options.changed += moved;
    if (summary.versionsCreated > 0 || stored === null) await this.#reportToCoordinator();
    return summary;
  }

  // ---- edits ------------------------------------------------------------------------------------

  /** Replace one module (its options and fields) with `record`: an ingest of that one module. */
  editModule(namespace: string, record: ModuleRecord): Promise<RpcResult<EditResult>> {
    return rpc(() => {
      const parsed = moduleRecordSchema.safeParse(record);
      if (!parsed.success) throw new ApiError(400, "validation_failed", "invalid module record; nothing was written", { issues: zodIssues(parsed.error) });
      return this.#serialized(async () => {
        const ns = this.#requireNamespace(namespace);
        return this.#editResult(ns, parsed.data.path, await this.#ingest(ns, { modules: [parsed.data as ModuleRecord], mode: "merge", final: true }));
      });
    });
  }

  /** Change an option's description, default or example text: a new version of its module. */
  editOption(namespace: string, name: string, patch: OptionPatch): Promise<RpcResult<EditResult>> {
    return rpc(() => {
      const parsed = optionPatch.safeParse(patch);
      if (!parsed.success) throw new ApiError(400, "validation_failed", "invalid option edit; nothing was written", { issues: zodIssues(parsed.error) });
      return this.#serialized(async () => {
        const ns = this.#requireNamespace(namespace);
        const row = this.#findLiveOption(ns, name);
        const module = store.moduleById(this.#sql, row.module_id)!;
        const bytes = store.latestSnapshot(this.#sql, module.id)!;
        const record = applyOptionPatch(await unpackCompressed<ModuleRecord>(bytes), row.name, parsed.data);
        return this.#editResult(ns, module.path, await this.#ingest(ns, { modules: [record], mode: "merge", final: true }));
      });
    });
  }

  #editResult(namespace: string, path: string, summary: IngestSummary): EditResult {
    const row = store.moduleByPath(this.#sql, path)!;
    return { namespace, module: path, version: row.version, changed: summary.versionsCreated > 0, summary };
  }

  /**
   * Delete this namespace entirely (all tables, the alarm), leaving an empty shard: used when a
   * preview namespace expires. Answers which module rooms had subscribers.
   */
  destroy(namespace: string): Promise<RpcResult<{ deleted: boolean; watchedModules: string[] }>> {
    return rpc(() =>
      this.#serialized(async () => {
        if (this.#namespace() !== namespace) return { deleted: false, watchedModules: [] };
        // The module rooms with subscribers, for the caller to close along with the namespace room.
        const watchedModules = [...store.watchedModules(this.#sql)];
        await this.ctx.storage.deleteAll();
        applyMigrations(this.ctx.storage, SHARD_MIGRATIONS);
        this.#vocabulary = null;
        this.#features.clear();
        this.#vectorStore = null;
        this.#vectorsSynced = false;
        return { deleted: true, watchedModules };
      }),
    );
  }

  // ---- live events ------------------------------------------------------------------------------

  #unpublished(): boolean {
    return store.latestSeq(this.#sql) > Number(store.getMeta(this.#sql, "live_published") ?? 0);
  }

  #toLiveEvent(namespace: string, r: store.EventRow): LiveEvent {
    const changes = JSON.parse(r.changes) as ChangeList;
    return { type: liveEventType(r.version, changes), namespace, module: r.path, version: r.version, seq: r.seq, changes, at: r.created_at };
  }

  /**
   * Publish every committed version not yet published, in `seq` order, to the namespace room
   * and to the rooms of watched modules. The watermark advances only after every room of a page
   * took it, so a failure re-sends the page (rooms drop what they already have, by `seq`).
   * One drain runs at a time; a request during a drain makes it look again. True when all is out.
   */
  #publishLive(): Promise<boolean> {
    if (this.#draining) {
      this.#drainAgain = true;
      return this.#draining;
    }
    const run = async (): Promise<boolean> => {
      try {
        do {
          this.#drainAgain = false;
          await this.#drainOnce();
        } while (this.#drainAgain);
        this.#liveRetries = 0;
        return true;
      } catch (err) {
        console.error("namespace-shard: live publish failed; the alarm retries", this.#namespace(), String(err));
        return false;
      } finally {
        this.#draining = null;
      }
    };
    this.#draining = run();
    return this.#draining;
  }

  async #drainOnce(): Promise<void> {
    const namespace = this.#namespace();
    if (namespace === null) return;
    const epoch = store.getMeta(this.#sql, "live_epoch")!;
    for (;;) {
      const published = Number(store.getMeta(this.#sql, "live_published") ?? 0);
      const rows = store.versionsAfter(this.#sql, published, LIMITS.liveEventPage, null);
      if (!rows.length) break;
      const events = rows.map((r) => this.#toLiveEvent(namespace, r));
      const watched = store.watchedModules(this.#sql);
      const byRoom = new Map<string, LiveEvent[]>([[roomName({ kind: "namespace", namespace }), events]]);
      for (const e of events) {
        if (!watched.has(e.module)) continue;
        const room = roomName({ kind: "module", namespace, module: e.module });
        byRoom.set(room, [...(byRoom.get(room) ?? []), e]);
      }
      await Promise.all([...byRoom].map(([room, list]) => this.env.LIVE_ROOM.get(this.env.LIVE_ROOM.idFromName(room)).publish(epoch, list)));
      store.setMeta(this.#sql, "live_published", String(rows[rows.length - 1]!.seq));
    }
    // Nothing is pending (checked in this same turn): the safety alarm is not needed.
    await this.ctx.storage.deleteAlarm();
  }

  /** The alarm publishes what a commit could not (crash, room unreachable), with backoff. */
  override async alarm(): Promise<void> {
    if (await this.#publishLive()) return;
    this.#liveRetries++;
    await this.ctx.storage.setAlarm(Date.now() + Math.min(LIVE_RETRY_MS * 2 ** this.#liveRetries, LIVE_RETRY_MAX_MS));
  }

  /**
   * For a live room: the events after `seq` `after` (all modules, or one), and the latest `seq`.
   * `after: null` asks only for the latest `seq` (a subscriber without `since`). A module room
   * with `watch` registers its module, so the module's next events are published to it too.
   */
  liveSync(namespace: string, request: LiveSyncRequest): Promise<RpcResult<LiveSyncResult>> {
    return rpc(() => {
      const ns = this.#requireNamespace(namespace);
      const req = liveSyncRequestSchema.parse(request);
      // Registered before reading: an event committed after this read is published to the room.
      if (req.watch && req.module !== null) store.watchModule(this.#sql, req.module, Date.now());
      const latest = store.latestSeq(this.#sql);
      const events = req.after === null ? [] : store.versionsAfter(this.#sql, req.after, req.limit, req.module).map((r) => this.#toLiveEvent(ns, r));
      return { events, latest, epoch: store.getMeta(this.#sql, "live_epoch")! };
    });
  }

  /** A module room lost its last subscriber: stop publishing the module's events to it. */
  unwatchModule(namespace: string, path: string): Promise<RpcResult<void>> {
    return rpc(() => {
      this.#requireNamespace(namespace);
      store.unwatchModule(this.#sql, path);
    });
  }

  /**
   * Options this batch gives to a module other than the one that holds them now: the module that
   * loses them (when the batch does not carry it) gets a new version without them, recording where
   * they went, so every module's options, count and history stay true. Returns how many moved.
   */
  async #planMoves(modules: readonly ModuleRecord[], newOwner: ReadonlyMap<string, string>, planned: PlannedModule[], removed: ReadonlySet<number>): Promise<number> {
    const batchPaths = new Set(modules.map((m) => m.path));
    const current = store.optionIdsByLoc(this.#sql, [...newOwner.keys()]);
    const leaving = new Map<number, Map<string, string>>(); // owner module id → loc key → new module path
    for (const [key, row] of current) {
      if (row.deleted) continue;
      const ownerPath = store.moduleById(this.#sql, row.moduleId)?.path;
      if (ownerPath === undefined || ownerPath === newOwner.get(key) || batchPaths.has(ownerPath) || removed.has(row.moduleId)) continue;
      let keys = leaving.get(row.moduleId);
      if (!keys) leaving.set(row.moduleId, (keys = new Map()));
      keys.set(key, newOwner.get(key)!);
    }
    let count = 0;
    for (const [moduleId, keys] of leaving) {
      const existing = store.moduleById(this.#sql, moduleId)!;
      const bytes = store.latestSnapshot(this.#sql, moduleId);
      if (existing.deleted_at !== null || !bytes) continue;
      const previous = await unpackCompressed<ModuleRecord>(bytes);
      const record: ModuleRecord = { ...previous, options: previous.options.filter((o) => !keys.has(locKey(o.loc))) };
      const changes = diffModules(previous, record);
      changes.moved = previous.options.filter((o) => keys.has(locKey(o.loc))).map((o) => ({ name: o.name, to: keys.get(locKey(o.loc))! }));
      count += changes.moved.length;
      const optionHashes = new Map<string, string>();
      for (const o of record.options) optionHashes.set(o.name, await contentHash(o));
      planned.push({ record, hash: await contentHash(record), optionHashes, existing, previous, changes, snapshot: await packCompressed(record) });
    }
    return count;
  }

  #writeModule(p: PlannedModule, claimed: Set<string>, now: number, summary: IngestSummary): void {
    const { record, existing } = p;
    const version = existing ? existing.version + 1 : 1;
    const meta = JSON.stringify(record.meta);
    let moduleId: number;
    if (existing) {
      moduleId = existing.id;
      store.updateModule(this.#sql, moduleId, { name: record.name, description: record.description, hash: p.hash, version, meta, optionCount: record.options.length, now, deleted: false });
      // A module that returns after removal is new to readers of the live set.
      if (existing.deleted_at !== null) summary.modules.added++;
      else summary.modules.changed++;
    } else {
      moduleId = store.insertModule(this.#sql, { path: record.path, name: record.name, description: record.description, hash: p.hash, meta, optionCount: record.options.length, now });
      summary.modules.added++;
    }
    store.replaceImports(this.#sql, moduleId, record.imports);

    const keys = record.options.map((o) => locKey(o.loc));
    const current = store.optionIdsByLoc(this.#sql, keys);
    const before = new Map((p.previous?.options ?? []).map((o) => [o.name, o]));
    for (const o of record.options) {
      const key = locKey(o.loc);
      const row = current.get(key);
      const old = before.get(o.name);
      const unchanged = row && !row.deleted && row.moduleId === moduleId && old && optionFieldChanges(old, o).length === 0;
      if (unchanged) continue;
      store.upsertOption(this.#sql, row?.id ?? null, o, moduleId, record.path, p.optionHashes.get(o.name)!, now);
    }
    const keep = new Set(keys);
    for (const o of store.liveOptionsOfModule(this.#sql, moduleId)) {
      if (!keep.has(o.loc_key) && !claimed.has(o.loc_key)) store.softDeleteOption(this.#sql, o.id, now);
    }
    store.insertVersion(this.#sql, moduleId, version, p.hash, p.snapshot, p.changes, now);
    summary.versionsCreated++;
    summary.options.added += p.changes.added.length;
    summary.options.changed += p.changes.changed.length;
    summary.options.removed += p.changes.removed.length;
  }

  /** Soft-delete a module and its options; returns how many of its options moved to modules of the batch. */
  #removeModule(row: store.ModuleRow, previous: ModuleRecord | null, newOwner: ReadonlyMap<string, string>, now: number, summary: IngestSummary): number {
    const changes = diffModules(previous, null);
    changes.deleted = true;
    const moved = (previous?.options ?? []).filter((o) => newOwner.has(locKey(o.loc))).map((o) => ({ name: o.name, to: newOwner.get(locKey(o.loc))! }));
    if (moved.length) changes.moved = moved;
    const version = row.version + 1;
    for (const o of store.liveOptionsOfModule(this.#sql, row.id)) store.softDeleteOption(this.#sql, o.id, now);
    store.updateModule(this.#sql, row.id, { name: row.name, description: row.description, hash: row.content_hash, version, meta: row.meta, optionCount: 0, now, deleted: true });
    store.insertVersion(this.#sql, row.id, version, null, null, changes, now);
    summary.modules.removed++;
    summary.options.removed += changes.removed.length;
    summary.versionsCreated++;
    return moved.length;
  }

  async #reportToCoordinator(): Promise<void> {
    const namespace = this.#namespace();
    if (!namespace) return;
    const counts = store.counts(this.#sql, namespace);
    const coordinator = this.env.SEARCH_COORDINATOR.get(this.env.SEARCH_COORDINATOR.idFromName(COORDINATOR_NAME));
    // A failed report must not fail a committed ingest; the next ingest (or `counts`) repairs it.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await coordinator.reportShard(counts);
        return;
      } catch (err) {
        console.error("namespace-shard: registry report failed", namespace, String(err));
      }
    }
  }

  // ---- reads ------------------------------------------------------------------------------------

  counts(namespace: string): Promise<RpcResult<ShardCounts>> {
    return rpc(() => store.counts(this.#sql, this.#requireNamespace(namespace)));
  }

  /**
   * Which of `paths` are modules of this namespace: usage reads show only those (hosts may report
   * any path). One query for the whole batch.
   */
  existingModules(namespace: string, paths: string[]): Promise<RpcResult<string[]>> {
    return rpc(() => {
      this.#requireNamespace(namespace);
      const parsed = existingModulesInput.safeParse(paths);
      if (!parsed.success) throw new ApiError(400, "validation_failed", "invalid module paths", { issues: zodIssues(parsed.error, ["paths"]) });
      return store.existingModulePaths(this.#sql, parsed.data);
    });
  }

  listModules(namespace: string, cursor: string | null, limit: number, includeDeleted = false): Promise<RpcResult<Page<ModuleSummary>>> {
    return rpc(() => {
      this.#requireNamespace(namespace);
      const after = cursor === null ? null : decodeCursor(cursor).after;
      if (after !== null && typeof after !== "string") throw new ApiError(400, "bad_request", "the cursor is not one this API issued");
      const size = Math.min(Math.max(1, Math.trunc(limit)), LIMITS.maxPageSize);
      const rows = store.listModules(this.#sql, after, size, includeDeleted);
      const items = rows.slice(0, size).map(store.toModuleSummary);
      const last = items[items.length - 1];
      return { items, nextCursor: rows.length > size && last ? encodeCursor({ after: last.path }) : null };
    });
  }

  getModule(namespace: string, path: string): Promise<RpcResult<ModuleView>> {
    return rpc(() => {
      const row = this.#requireModule(namespace, path);
      const ns = this.#namespace()!;
      return {
        ...store.toModuleSummary(row),
        namespace: ns,
        meta: JSON.parse(row.meta) as Record<string, unknown>,
        imports: store.importsOf(this.#sql, row.id),
        importedBy: store.importersOf(this.#sql, row.path),
        options: row.deleted_at === null ? store.optionsOfModule(this.#sql, row.id).map((o) => store.toOptionView(ns, o)) : [],
      };
    });
  }

  listVersions(namespace: string, path: string): Promise<RpcResult<VersionView[]>> {
    return rpc(() => store.listVersions(this.#sql, this.#requireModule(namespace, path).id));
  }

  /** The module as it was at `version` (null options for a version that records removal). */
  getVersion(namespace: string, path: string, version: number): Promise<RpcResult<{ version: number; module: ModuleRecord | null }>> {
    return rpc(async () => {
      const row = this.#requireModule(namespace, path);
      return { version, module: await this.#snapshotAt(row, version, path) };
    });
  }

  async #snapshotAt(row: store.ModuleRow, version: number, path: string): Promise<ModuleRecord | null> {
    const v = store.versionSnapshot(this.#sql, row.id, version);
    if (!v.found) throw new ApiError(404, "version_not_found", `module ${path} has no version ${version}`, { latest: row.version });
    return v.snapshot ? unpackCompressed<ModuleRecord>(v.snapshot) : null;
  }

  diff(namespace: string, path: string, from: number, to: number): Promise<RpcResult<DiffView>> {
    return rpc(async () => {
      const row = this.#requireModule(namespace, path);
      const before = await this.#snapshotAt(row, from, path);
      const after = await this.#snapshotAt(row, to, path);
      const changes = diffModules(before, after);
      if (before && !after) changes.deleted = true;
      if (!before && after && from > 0) changes.restored = true;
      // Where removed options went is known only from the versions in between.
      const removed = new Set(changes.removed);
      const moved = store
        .listVersions(this.#sql, row.id)
        .filter((v) => v.version > Math.min(from, to) && v.version <= Math.max(from, to))
        .flatMap((v) => v.changes.moved ?? [])
        .filter((m) => removed.has(m.name));
      if (moved.length) changes.moved = moved;
      const prev = new Map((before?.options ?? []).map((o) => [o.name, o]));
      const next = new Map((after?.options ?? []).map((o) => [o.name, o]));
      const details: Record<string, Record<string, FieldChange>> = {};
      for (const c of changes.changed) {
        const b = prev.get(c.name) as unknown as Record<string, unknown>;
        const a = next.get(c.name) as unknown as Record<string, unknown>;
        details[c.name] = Object.fromEntries(c.fields.map((f) => [f, { before: b[f] ?? null, after: a[f] ?? null }]));
      }
      return { namespace: this.#namespace()!, module: path, from, to, changes, details };
    });
  }

  /**
   * An option by its display name. The exact stored name wins; otherwise the name is parsed into
   * its `loc` (so differently quoted input still resolves), then compared case-insensitively.
   */
  getOption(namespace: string, name: string): Promise<RpcResult<OptionView>> {
    return rpc(() => {
      const ns = this.#requireNamespace(namespace);
      return store.toOptionView(ns, this.#findLiveOption(ns, name));
    });
  }

  /** A live option by display name: exact, then parsed into its loc, then case-insensitive. */
  #findLiveOption(ns: string, name: string): store.OptionRow {
    let row = store.optionByName(this.#sql, name);
    if (!row) {
      const loc = parseOptionName(name);
      if (loc) row = store.optionByLocKey(this.#sql, locKey(loc));
    }
    if (!row) {
      const ci = store.optionsByLowerName(this.#sql, name.toLowerCase(), 2);
      if (ci.length === 1) row = ci[0]!;
    }
    if (!row) throw new ApiError(404, "option_not_found", `option ${name} does not exist in namespace ${ns}`);
    if (row.deleted_at !== null) {
      throw new ApiError(404, "option_not_found", `option ${name} was removed from namespace ${ns}`, { removedAt: row.deleted_at, module: row.module_path });
    }
    return row;
  }

  // ---- search -----------------------------------------------------------------------------------

  /**
   * Candidates for a dotted query that is not itself a name prefix: the options under its longest
   * stored prefix (so `age.secrets.mysecret.owner` reaches `age.secrets.<name>.owner`) and that
   * prefix's own option when it is one (a freeform `nix.settings` for `nix.settings.foo-bar`).
   */
  #dottedCandidates(segs: string[]): store.RankRow[] {
    for (let k = segs.length - 1; k >= 1; k--) {
      const prefix = segs.slice(0, k).join(".");
      const found = store.matchOptions(this.#sql, [{ kind: "exact", lower: prefix }, { kind: "prefix", prefix: prefix + "." }]);
      if (found.length) return found;
    }
    return [];
  }

  /**
   * Ranked hits for `q`, best first, at most `window` of them. Candidates come from an exact-name
   * lookup, a path-prefix scan, a name-only FTS match, an all-columns FTS match and, when those
   * find too little, an any-word FTS match; `rank.ts` orders them. `vectorHits` (option name →
   * similarity, or `"deferred"`) come from the coordinator when Workers AI and Vectorize are
   * bound; without them the shard asks its own embedded index.
   */
  search(namespace: string, q: string, window: number, vectorHits?: ShardVectorInput): Promise<RpcResult<ShardSearchResult>> {
    return rpc(() => {
      const ns = this.#namespace();
      if (ns === null || ns !== namespace) return { namespace, hits: [], total: 0 };
      const query = parseQuery(q);
      const want = Math.min(Math.max(1, Math.trunc(window)), LIMITS.maxSearchDepth + 1);
      const candidates = this.#candidates(query);
      // When no option holds all the words of a several-word query in its name (a description
      // of what the user wants), options near the query by embedding join the candidates and
      // their similarity becomes a ranking signal. Name queries do not pay for the vector scan.
      let needsVectors = false;
      if (
        !query.dotted && query.terms.length >= 2 && candidates.size < VECTOR_WHEN_CANDIDATES_BELOW &&
        !store.ftsHasMatch(this.#sql, ftsAll(query.terms, "name"))
      ) {
        if (vectorHits === "deferred") needsVectors = true;
        else {
          // Embedded from the folded words, so `extraDep` and `extradep` are the same query.
          const near = vectorHits ? this.#idsOfNamed(vectorHits) : this.#nearest(query.terms.join(" "));
          const close = [...near].filter(([, similarity]) => similarity >= VECTOR_MIN_SIMILARITY);
          const found = new Map(store.rankRowsByIds(this.#sql, close.filter(([id]) => !candidates.has(id)).map(([id]) => id)).map((r) => [r.id, r]));
          for (const [id, similarity] of close) {
            const c = candidates.get(id);
            if (c) c.vector = similarity;
            else if (found.has(id)) candidates.set(id, { name: found.get(id)!.name, loc: found.get(id)!.loc, bm25: null, anyOnly: true, vector: similarity });
          }
        }
      }
      // Words that match nothing as typed are read as their nearest name words, as a weak
      // fallback: those hits rank half a tier lower and are flagged `fuzzy`.
      // A dotted query that reached its path has nothing to correct (`age.secrets.mysecret.owner`).
      const { corrections, unknown } = query.dotted && candidates.size > 0 ? { corrections: new Map<string, string>(), unknown: [] } : this.#typoCorrections(query);
      const corrected = corrections.size ? parseQuery(correctQuery(query.raw, corrections)) : null;
      const fuzzy = corrected ? this.#candidates(corrected) : new Map<number, CandidateInfo>();

      // Every match is ranked (no cut-off before ranking); only the page's rows are read whole.
      // An option found both ways keeps whichever reading ranks it higher.
      const ranked: RankedCandidate[] = [];
      for (const id of new Set([...candidates.keys(), ...fuzzy.keys()])) {
        const typed = candidates.get(id);
        const viaFix = fuzzy.get(id);
        const features = this.#nameFeatures(id, (typed ?? viaFix)!.loc);
        const asTyped = typed ? rateCandidate(query, typed, features, 0) : null;
        const asCorrected = viaFix ? rateCandidate(corrected!, viaFix, features, FUZZY_PENALTY) : null;
        const best = asTyped && (!asCorrected || asTyped.score >= asCorrected.score) ? asTyped : { ...asCorrected!, fuzzy: true };
        ranked.push({ id, ...best });
      }
      ranked.sort((a, b) => b.score - a.score || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const page = ranked.slice(0, want);
      const rows = new Map(store.optionsByIds(this.#sql, page.map((h) => h.id)).map((r) => [r.id, r]));
      const marked = corrected ? [...new Set([...query.terms, ...corrected.terms])] : query.terms;
      const hits: SearchHit[] = [];
      for (const h of page) {
        const r = rows.get(h.id);
        if (!r) continue;
        const hit: SearchHit = { namespace: ns, name: r.name, loc: h.loc, module: r.module_path, type: r.type, snippet: snippet(r.description, marked), score: h.score, match: h.match };
        if (h.rest) hit.rest = h.rest;
        if (query.dotted && (h.match === "prefix" || h.match === "ancestor") && h.loc.some(isPlaceholder)) {
          const bindings = placeholderBindings(query.raw, h.loc);
          if (bindings.length) hit.bindings = bindings;
        }
        if (h.fuzzy) hit.fuzzy = true;
        hits.push(hit);
      }
      const result: ShardSearchResult = { namespace: ns, hits, total: ranked.length };
      if (corrections.size) result.corrections = Object.fromEntries(corrections);
      if (unknown.length) result.unknownWords = unknown;
      if (needsVectors) result.needsVectors = true;
      return result;
    });
  }

  #vectors(): SqliteVectorStore {
    this.#vectorStore ??= new SqliteVectorStore(this.ctx.storage, { embedderId: this.#embedder.id, dimensions: this.#embedder.dimensions });
    return this.#vectorStore;
  }

  /**
   * Bring the embedded vectors up to date: only options whose content hash changed since their
   * vector was made are embedded again, and vectors of removed options are dropped.
   */
  #syncVectors(): void {
    const store = this.#vectors();
    const plan = planEmbeddings(liveOptionHashes(this.#sql), store.hashes());
    store.remove(plan.remove);
    for (let i = 0; i < plan.embed.length; i += EMBED_BATCH) {
      const sources = embeddingSources(this.#sql, plan.embed.slice(i, i + EMBED_BATCH));
      store.put(sources.map((o) => ({ optionId: o.id, contentHash: o.contentHash, values: this.#embedder.embedOne(optionEmbeddingText(o)) })));
    }
    this.#vectorsSynced = true;
  }

  /**
   * Bring the Vectorize index up to date for this namespace: embed (Workers AI) and upsert the
   * options whose content changed since their vector was pushed, delete the vectors of removed
   * options. A failure is logged and repaired by the next sync, which plans from what was recorded.
   * Public so tests can run it with fake bindings inside the object.
   */
  async syncRemoteVectors(remote: RemoteVectors): Promise<{ embedded: number; removed: number }> {
    const namespace = this.#namespace();
    if (!namespace) return { embedded: 0, removed: 0 };
    try {
      const rows = vectorRows.remoteVectorRows(this.#sql);
      const plan = planEmbeddings(liveOptionHashes(this.#sql), new Map([...rows].map(([id, r]) => [id, r.hash])));
      if (plan.remove.length) {
        await remote.index.deleteByIds(plan.remove.map((id) => rows.get(id)!.key));
        vectorRows.deleteRemoteVectorRows(this.#sql, plan.remove);
      }
      for (let i = 0; i < plan.embed.length; i += WORKERS_AI_BATCH) {
        const sources = embeddingSources(this.#sql, plan.embed.slice(i, i + WORKERS_AI_BATCH));
        const values = await remote.embedder.embed(sources.map((o) => optionEmbeddingText(o)));
        const items = sources.map((o, j) => ({ id: optionVectorKey(namespace, o.name), values: values[j]!, metadata: { namespace, module: o.module, option: o.name }, contentHash: o.contentHash }));
        await remote.index.upsert(items);
        vectorRows.putRemoteVectorRows(this.#sql, sources.map((o, j) => ({ optionId: o.id, contentHash: o.contentHash, key: items[j]!.id })));
      }
      return { embedded: plan.embed.length, removed: plan.remove.length };
    } catch (err) {
      console.error("namespace-shard: Vectorize sync failed; the next ingest retries", namespace, String(err));
      return { embedded: 0, removed: 0 };
    }
  }

  /** Option id → similarity, for similarities given by option name (from Vectorize). */
  #idsOfNamed(hits: Record<string, number>): Map<number, number> {
    const out = new Map<number, number>();
    for (const [name, similarity] of Object.entries(hits)) {
      const row = store.optionByName(this.#sql, name);
      if (row && row.deleted_at === null && Number.isFinite(similarity)) out.set(row.id, similarity);
    }
    return out;
  }

  /** Option id → cosine similarity of the options nearest to the query text. */
  #nearest(text: string): Map<number, number> {
    if (!this.#vectorsSynced) this.#syncVectors();
    const query = this.#embedder.embedOne(text);
    return new Map(this.#vectors().search(query, VECTOR_TOP_K).map((r) => [r.id, r.score]));
  }

  /**
   * Query words of four or more letters that occur nowhere in this namespace (not as a name-word
   * prefix, not in any description), each with its nearest name word.
   */
  #typoCorrections(query: ParsedQuery): { corrections: Map<string, string>; unknown: string[] } {
    const corrections = new Map<string, string>();
    const unknown: string[] = [];
    for (const term of query.terms) {
      if (term.length < 4 || this.#nameVocabulary().hasPrefix(term)) continue;
      if (store.ftsCount(this.#sql, ftsAll([term])) > 0) continue;
      unknown.push(term);
      const best = this.#nameVocabulary().corrections(term, 1)[0];
      if (best) corrections.set(term, best.word);
    }
    return { corrections, unknown };
  }

  #nameFeatures(id: number, locJson: string): NameFeatures {
    let f = this.#features.get(id);
    if (!f) this.#features.set(id, (f = nameFeatures(JSON.parse(locJson) as string[])));
    return f;
  }

  /** The name words of this namespace, built on first use after each ingest (kept in memory only). */
  #nameVocabulary(): NameVocabulary {
    this.#vocabulary ??= new NameVocabulary(store.nameWordsOfLiveOptions(this.#sql));
    return this.#vocabulary;
  }

  /**
   * Every option that matches the query, with its best bm25 and whether only a partial match
   * found it. The rules do not depend
   * on the page asked for, so every page of a query is cut from the same ranking: no repeats,
   * no gaps, one total.
   */
  #candidates(query: ParsedQuery): Map<number, CandidateInfo> {
    const byName: store.MatchSource = /\s/.test(query.lower) ? { kind: "exact", lower: query.lower } : { kind: "prefix", prefix: query.lower };
    let rows: store.RankRow[] = [];
    if (query.dotted) {
      // A dotted query that reaches its path is answered from the path index; full-text
      // matches of its words would only rank below the path matches.
      rows = store.matchOptions(this.#sql, [byName]);
      if (!rows.length) rows = this.#dottedCandidates(query.lower.split("."));
    }
    if (!rows.length && query.terms.length) {
      // Every word anywhere, or an acronym of some words in the name and the others
      // (`automatic garbage collection` → `nix.gc.automatic`).
      const every = [ftsAll(query.terms), ...query.acronyms.map((a) => ftsAcronym(query.terms, a))];
      const sources: store.MatchSource[] = [byName, { kind: "fts", match: every.map((m) => `(${m})`).join(" OR "), partial: false }];
      // Names holding all words but one (`programs.git.signing.format` for `programs git signing
      // key`): an OR of one AND per left-out word, not an OR over common words.
      if (query.terms.length >= 3 && query.terms.length <= 6) {
        const allButOne = query.terms.map((_, i) => `(${ftsAll(query.terms.filter((_, j) => j !== i), "name")})`);
        sources.push({ kind: "fts", match: allButOne.join(" OR "), partial: true });
      }
      rows = store.matchOptions(this.#sql, sources);
      // Any-word matching is the last resort of a free-text query that nothing else matched (it
      // reads every row holding any of the words); a dotted path is not free text.
      if (!rows.length && query.terms.length > 1 && !query.dotted) rows = store.matchOptions(this.#sql, [{ kind: "fts", match: ftsAny(query.terms), partial: true }]);
    } else if (!rows.length) {
      rows = store.matchOptions(this.#sql, [byName]);
    }
    const candidates = new Map<number, CandidateInfo>();
    for (const r of rows) candidates.set(r.id, { name: r.name, loc: r.loc, bm25: r.bm25, anyOnly: r.partial === 1 });
    if (query.words.length >= 2 && !query.dotted && candidates.size) {
      for (const id of store.ftsIds(this.#sql, ftsPhrase(query.words))) {
        const c = candidates.get(id);
        if (c) c.phrase = true;
      }
    }
    return candidates;
  }
}

/**
 * Live rooms: every committed change reaches the namespace room (and a watched module's room)
 * exactly once and in order; `since` replays what a subscriber missed; frames come as JSON or
 * MessagePack; bad frames are answered, floods are closed with 1008; a publish that fails is
 * delivered by the shard's alarm.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { NamespaceShard } from "../src/objects/NamespaceShard/index.ts";
import { SHARD_MIGRATIONS } from "../src/objects/NamespaceShard/schema.ts";
import { applyMigrations } from "../src/objects/migrations.ts";
import { LIMITS } from "../src/shared/limits.ts";
import { pack } from "../src/shared/msgpack.ts";
import { LiveClient } from "../src/shared/liveClient.ts";
import { roomName, type LiveEvent } from "../src/shared/live.ts";
import { ADMIN, api, dataFile, enc, json, postBatch } from "./helpers.ts";
import { FetchWebSocket, isEvent, isReady, subscribe, type Subscriber } from "./live-helpers.ts";

const NS = "live-sops";
const shardStub = () => env.NAMESPACE_SHARD.get(env.NAMESPACE_SHARD.idFromName(NS));
let file: Record<string, any>;
let revision = 0;

/** Change the description of `count` options (one per module): one new version per module. */
async function changeOptions(names: string[]): Promise<void> {
  revision++;
  const changed = structuredClone(file);
  for (const n of names) changed[n].description = `${changed[n].description} (revision ${revision})`;
  const res = await postBatch(NS, changed);
  expect(res.status).toBe(200);
  expect((await json(res)).versionsCreated).toBe(names.length);
  file = changed;
}

/** Every frame sent before this call has arrived once the pong is back. */
async function settle(s: Subscriber): Promise<void> {
  const id = crypto.randomUUID();
  s.send(JSON.stringify({ type: "ping", id }));
  await s.waitFor((f) => f.type === "pong" && f.id === id);
}

async function latestSeq(): Promise<number> {
  const s = await subscribe(`ns:${NS}`);
  const [ready] = (await s.waitFor(isReady)).filter(isReady);
  s.close();
  return ready.seq;
}

let modules: string[];
let optionOf: Map<string, string>;

beforeAll(async () => {
  file = await dataFile("sops-nix-options.json.gz");
  expect((await postBatch(NS, file)).status).toBe(200);
  const list = await json(await api(`/api/v1/namespaces/${NS}/modules?limit=100`));
  modules = list.items.map((m: { path: string }) => m.path);
  optionOf = new Map();
  for (const [name, doc] of Object.entries(file)) {
    const path = (await json(await api(`/api/v1/namespaces/${NS}/options/${enc(name)}`))).module;
    if (!optionOf.has(path)) optionOf.set(path, name);
    void doc;
  }
  expect(modules.length).toBeGreaterThan(1);
});

describe("delivery", () => {
  it("gives a namespace subscriber exactly one event per committed version, in seq order", async () => {
    const s = await subscribe(`ns:${NS}`);
    const [ready] = (await s.waitFor(isReady)).filter(isReady);
    expect(ready.replayed).toBe(0);
    const [a, b] = [...optionOf.values()];
    await changeOptions([a!, b!]);
    await changeOptions([a!]);
    await settle(s);
    const events: LiveEvent[] = s.frames.filter(isEvent);
    expect(events.map((e) => e.seq)).toEqual([ready.seq + 1, ready.seq + 2, ready.seq + 3]);
    for (const e of events) {
      expect(e).toMatchObject({ type: "module.changed", namespace: NS });
      expect(e.changes.changed.length).toBe(1);
      expect(typeof e.at).toBe("number");
      // The event is the version the history holds.
      const history = await json(await api(`/api/v1/namespaces/${NS}/modules/${enc(e.module)}/versions`));
      expect(history.items.find((v: { version: number }) => v.version === e.version).changes).toEqual(e.changes);
    }
    s.close();
  });

  it("gives a module room only its module's events, and no event when nothing changed", async () => {
    const [path, option] = [...optionOf][0]!;
    const other = [...optionOf.values()][1]!;
    const room = roomName({ kind: "module", namespace: NS, module: path });
    const s = await subscribe(room);
    await s.waitFor(isReady);
    await changeOptions([option, other]);
    expect((await json(await postBatch(NS, file))).versionsCreated).toBe(0);
    await settle(s);
    const events = s.frames.filter(isEvent);
    expect(events).toHaveLength(1);
    expect(events[0].module).toBe(path);
    // A module room replays only its module's history.
    const history = (await json(await api(`/api/v1/namespaces/${NS}/modules/${enc(path)}/versions`))).items;
    const replay = await subscribe(room, "since=0");
    const replayed = (await replay.waitFor(isReady)).filter(isEvent);
    expect(replayed.map((e) => [e.module, e.version])).toEqual(history.map((v: { version: number }) => [path, v.version]));
    replay.close();
    // The shard publishes to a module room only while it has subscribers.
    const watched = () => runInDurableObject(shardStub(), (_i: NamespaceShard, state) => state.storage.sql.exec<{ path: string }>("SELECT path FROM live_watched_modules").toArray().map((r) => r.path));
    expect(await watched()).toEqual([path]);
    s.close();
    await s.closed();
    for (let i = 0; i < 100 && (await watched()).length; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await watched()).toEqual([]);
  });

  it("delivers a version whose publish failed after the commit exactly once, after a restart, from the shard's alarm", async () => {
    const s = await subscribe(`ns:${NS}`);
    const [ready] = (await s.waitFor(isReady)).filter(isReady);
    // The rooms are unreachable while this change commits.
    await runInDurableObject(shardStub(), (instance: NamespaceShard) => {
      const real = (instance as any).env;
      (instance as any).env = { ...real, LIVE_ROOM: { idFromName: () => ({}), get: () => ({ publish: () => Promise.reject(new Error("room unreachable")) }) } };
    });
    const [option] = [...optionOf.values()];
    await changeOptions([option!]);
    await settle(s);
    expect(s.frames.filter(isEvent)).toHaveLength(0);
    // The object dies before its alarm: a new instance finds the unpublished version (the
    // outbox) and schedules the alarm again, which publishes it.
    await runInDurableObject(shardStub(), (_i: NamespaceShard, state) => state.storage.deleteAlarm());
    await evictDurableObject(shardStub());
    expect((await api(`/api/v1/namespaces/${NS}`)).status).toBe(200);
    expect(await runDurableObjectAlarm(shardStub())).toBe(true);
    await s.waitFor(isEvent);
    // A repeated publish (a retry after a lost acknowledgement) is dropped by the room.
    await runInDurableObject(shardStub(), async (_i: NamespaceShard, state) => {
      state.storage.sql.exec("UPDATE meta SET value = ? WHERE key = 'live_published'", String(ready.seq));
    });
    await runDurableObjectAlarm(shardStub());
    await settle(s);
    expect(s.frames.filter(isEvent).map((e) => e.seq)).toEqual([ready.seq + 1]);
    s.close();
  });
});

describe("schema", () => {
  it("numbers the versions a shard held before live events existed in commit order, as already published", async () => {
    const ns = "live-migrated";
    const stub = env.NAMESPACE_SHARD.get(env.NAMESPACE_SHARD.idFromName(ns));
    const data = await dataFile("srvos-options.json.gz");
    expect((await postBatch(ns, data)).status).toBe(200);
    const result = await runInDurableObject(stub, (_i: NamespaceShard, state) => {
      const sql = state.storage.sql;
      const count = sql.exec<{ n: number }>("SELECT count(*) AS n FROM module_versions").one().n;
      // Back to schema version 4, with the versions' commit times spread out.
      sql.exec("DROP INDEX module_versions_seq");
      sql.exec("ALTER TABLE module_versions DROP COLUMN seq");
      sql.exec("DROP TABLE live_watched_modules");
      sql.exec("DELETE FROM meta WHERE key IN ('live_published', 'live_epoch')");
      sql.exec("DELETE FROM _schema_migrations WHERE version = 5");
      sql.exec("UPDATE module_versions SET created_at = 1000 + (module_id * 7919) % 1000");
      applyMigrations(state.storage, SHARD_MIGRATIONS);
      const rows = sql.exec<{ seq: number; created_at: number }>("SELECT seq, created_at FROM module_versions ORDER BY seq").toArray();
      return { count, rows, published: sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'live_published'").one().value };
    });
    expect(result.rows.map((r) => r.seq)).toEqual(Array.from({ length: result.count }, (_, i) => i + 1));
    const times = result.rows.map((r) => r.created_at);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(Number(result.published)).toBe(result.count);
    // New versions continue the numbering.
    const s = await subscribe(`ns:${ns}`);
    const [ready] = (await s.waitFor(isReady)).filter(isReady);
    expect(ready.seq).toBe(result.count);
    s.close();
  });
});

describe("hibernation", () => {
  it("keeps each subscriber's format and position when the room is evicted with its sockets hibernated", async () => {
    const plain = await subscribe(`ns:${NS}`);
    const packed = await subscribe(`ns:${NS}`, "format=msgpack");
    const [ready] = (await plain.waitFor(isReady)).filter(isReady);
    await packed.waitFor(isReady);
    await evictDurableObject(env.LIVE_ROOM.get(env.LIVE_ROOM.idFromName(`ns:${NS}`)));
    await changeOptions([[...optionOf.values()][0]!]);
    await settle(plain);
    await settle(packed);
    expect(plain.frames.filter(isEvent).map((e) => e.seq)).toEqual([ready.seq + 1]);
    expect(packed.frames.filter(isEvent).map((e) => e.seq)).toEqual([ready.seq + 1]);
    expect(packed.binary.every(Boolean)).toBe(true);
    plain.close();
    packed.close();
  });
});

describe("replay with since", () => {
  it("replays the changes missed while disconnected, then continues live, without gap or repeat", async () => {
    const first = await subscribe(`ns:${NS}`);
    const [ready] = (await first.waitFor(isReady)).filter(isReady);
    first.close();
    const names = [...optionOf.values()];
    await changeOptions([names[0]!, names[1]!]);
    await changeOptions([names[0]!]);

    const again = await subscribe(`ns:${NS}`, `since=${ready.seq}`);
    const [resumed] = (await again.waitFor(isReady)).filter(isReady);
    expect(resumed.replayed).toBe(3);
    expect(resumed.seq).toBe(ready.seq + 3);
    await changeOptions([names[1]!]);
    await settle(again);
    expect(again.frames.filter(isEvent).map((e) => e.seq)).toEqual([1, 2, 3, 4].map((i) => ready.seq + i));
    // Replayed events come before `ready`, live ones after.
    expect(again.frames.findIndex(isReady)).toBe(3);
    again.close();
  });

  it("replays the whole history from since=0 in pages, while changes keep committing", async () => {
    const latest = await latestSeq();
    expect(latest).toBeGreaterThan(0);
    const names = [...optionOf.values()];
    const writes = (async () => {
      for (let i = 0; i < 4; i++) await changeOptions([names[i % names.length]!]);
    })();
    const s = await subscribe(`ns:${NS}`, "since=0");
    await writes;
    const final = latest + 4;
    await s.waitFor((f) => isEvent(f) && f.seq === final);
    await settle(s);
    expect(s.frames.filter(isEvent).map((e) => e.seq)).toEqual(Array.from({ length: final }, (_, i) => i + 1));
    s.close();
  });

  it("replays a history longer than one page (Home Manager, every module) in seq order", async () => {
    expect((await postBatch("live-hm", await dataFile("home-manager-options.json.gz"))).status).toBe(200);
    const { versions } = await json(await api("/api/v1/namespaces/live-hm"));
    expect(versions).toBeGreaterThan(LIMITS.liveEventPage);
    const s = await subscribe("ns:live-hm", "since=0&format=msgpack");
    const [ready] = (await s.waitFor(isReady)).filter(isReady);
    expect(ready).toMatchObject({ replayed: versions, seq: versions });
    const events = s.frames.filter(isEvent);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: versions }, (_, i) => i + 1));
    expect(new Set(events.map((e) => e.module)).size).toBe(versions);
    expect(events.every((e) => e.type === "module.added" && e.version === 1)).toBe(true);
    s.close();
  });

  it("resumes through the typed client: partysocket reconnects with the last seq it saw", async () => {
    const client = new LiveClient({ host: "nixdocs.test", protocol: "ws", room: { kind: "namespace", namespace: NS }, WebSocket: FetchWebSocket });
    const seen: number[] = [];
    client.onEvent = (e) => seen.push(e.seq);
    const readies: number[] = [];
    let onReady = () => {};
    client.onReady = (r) => {
      readies.push(r.seq);
      onReady();
    };
    const nextReady = () => new Promise<void>((resolve) => (onReady = resolve));
    await nextReady();
    const start = client.since!;
    client.socket.close();
    const names = [...optionOf.values()];
    await changeOptions([names[0]!]);
    await changeOptions([names[1]!]);
    const resumed = nextReady();
    client.socket.reconnect();
    await resumed;
    expect(seen).toEqual([start + 1, start + 2]);
    expect(client.since).toBe(start + 2);
    client.close();
  });
});

describe("frames", () => {
  it("sends the same frames as MessagePack binary to subscribers who ask for it", async () => {
    const plain = await subscribe(`ns:${NS}`);
    const packed = await subscribe(`ns:${NS}`, "format=msgpack");
    await plain.waitFor(isReady);
    await packed.waitFor(isReady);
    await changeOptions([[...optionOf.values()][0]!]);
    await settle(plain);
    await settle(packed);
    expect(packed.binary.every(Boolean)).toBe(true);
    expect(plain.binary.some(Boolean)).toBe(false);
    expect(packed.frames.filter(isEvent)).toEqual(plain.frames.filter(isEvent));
    expect(packed.frames.filter(isEvent)).toHaveLength(1);
    plain.close();
    packed.close();
  });

  it("answers invalid messages with an error frame and keeps the connection open", async () => {
    const s = await subscribe(`ns:${NS}`);
    await s.waitFor(isReady);
    const bad: (string | Uint8Array)[] = ["not json", '{"type":"subscribe"}', "[1,2]", '{"type":"ping","extra":1}', new Uint8Array([0xc1, 0xff]), "x".repeat(LIMITS.maxLiveMessageBytes + 1)];
    for (const b of bad) s.send(b);
    await s.waitFor((f) => f.type === "error", bad.length);
    const errors = s.frames.filter((f) => f.type === "error");
    expect(errors.map((e) => e.code)).toEqual(["invalid_message", "invalid_message", "invalid_message", "invalid_message", "invalid_message", "message_too_large"]);
    await settle(s);
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
    // A MessagePack ping is as good as a JSON one.
    s.send(pack({ type: "ping", id: "binary" }));
    await s.waitFor((f) => f.type === "pong" && f.id === "binary");
    s.close();
  });

  it("closes a connection that floods the room with 1008 (policy violation)", async () => {
    const s = await subscribe(`ns:${NS}`);
    await s.waitFor(isReady);
    for (let i = 0; i < LIMITS.liveMessagesPerWindow * 3; i++) s.send(JSON.stringify({ type: "ping" }));
    const closed = await s.closed();
    expect(closed.code).toBe(1008);
    expect(s.frames.filter((f) => f.type === "pong").length).toBe(LIMITS.liveMessagesPerWindow);
    // Others in the room are not affected.
    const other = await subscribe(`ns:${NS}`);
    await other.waitFor(isReady);
    await settle(other);
    other.close();
  });
});

describe("admission", () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

  it("refuses bad room names, unknown namespaces, bad or unknown query parameters, other parties and plain HTTP, in the API's envelope with a request id", async () => {
    const cases: [string, number, string][] = [
      ["/parties/live-room/home-manager", 400, "bad_request"],
      ["/parties/live-room/ns:NotAName", 400, "bad_request"],
      [`/parties/live-room/module:${NS}:a/b.nix`, 400, "bad_request"],
      [`/parties/live-room/ns:${NS}/extra`, 400, "bad_request"],
      ["/parties/live-room/ns:never-ingested", 404, "namespace_not_found"],
      [`/parties/live-room/ns:${NS}?format=xml`, 400, "validation_failed"],
      [`/parties/live-room/ns:${NS}?since=-1`, 400, "validation_failed"],
      [`/parties/live-room/ns:${NS}?bogus=1`, 400, "validation_failed"],
      [`/parties/live-room/ns:${NS}?format=json&_pk=abc&sinse=3`, 400, "validation_failed"],
      [`/parties/namespace-shard/${NS}`, 404, "not_found"],
      ["/parties/search-coordinator/global", 404, "not_found"],
      ["/parties/other/x", 404, "not_found"],
      ["/parties/live-room", 404, "not_found"],
    ];
    for (const upgrade of [true, false]) {
      for (const [path, status, code] of cases) {
        const res = await api(path, upgrade ? { headers: { Upgrade: "websocket" } } : {});
        // Without Upgrade, a live-room path is refused as plain HTTP before anything else.
        const want = !upgrade && path.startsWith("/parties/live-room/") ? [426, "upgrade_required"] : [status, code];
        expect(res.status, path).toBe(want[0]);
        expect(res.headers.get("content-type"), path).toMatch(/^application\/json/);
        expect(res.headers.get("x-request-id"), path).toMatch(UUID);
        const body = await json(res);
        expect(body.error.code, path).toBe(want[1]);
        if (upgrade && path.includes("bogus")) expect(body.error.details.issues[0].message).toMatch(/bogus/);
      }
    }
    const plain = await api(`/parties/live-room/ns:${NS}`);
    expect(plain.headers.get("upgrade")).toBe("websocket");
    void ADMIN;
  });

  it("gives every refusal its own request id, never the client's", async () => {
    const ids = new Set<string | null>();
    for (let i = 0; i < 3; i++) {
      const res = await api(`/parties/live-room/ns:${NS}?bogus=${i}`, { headers: { Upgrade: "websocket", "X-Request-Id": "client-chosen" } });
      expect(res.status).toBe(400);
      ids.add(res.headers.get("x-request-id"));
    }
    expect(ids.size).toBe(3);
    expect(ids.has("client-chosen")).toBe(false);
  });

  it("accepts the parameters it knows, and partysocket's connection id", async () => {
    const subscriber = await subscribe(`ns:${NS}`, "format=msgpack&since=0&_pk=3f1c2a9e-1111-4222-8333-444455556666");
    subscriber.close();
  });
});

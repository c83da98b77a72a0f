/**
 * Preview namespaces (`preview-pr-<N>`): created by ingesting into them, listed apart, searched
 * only when named, and deleted entirely (shard storage, usage counts and registry entry) by the
 * coordinator's alarm once `PREVIEW_TTL_HOURS` have passed since their last change.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { NamespaceShard } from "../src/objects/NamespaceShard/index.ts";
import type { LiveRoom } from "../src/objects/LiveRoom.ts";
import type { SearchCoordinator } from "../src/objects/SearchCoordinator.ts";
import type { UsageAggregate } from "../src/objects/UsageAggregate.ts";
import { keyedHostHash } from "../src/shared/telemetry.ts";
import { ADMIN, api, dataFile, json, postBatch } from "./helpers.ts";
import { isEvent, isReady, subscribe } from "./live-helpers.ts";

const PREVIEW = "preview-pr-42";
const coordinator = () => env.SEARCH_COORDINATOR.get(env.SEARCH_COORDINATOR.idFromName("global"));
const shard = (ns: string) => env.NAMESPACE_SHARD.get(env.NAMESPACE_SHARD.idFromName(ns));
const names = (items: { namespace: string }[]) => items.map((i) => i.namespace);

// Usage telemetry of the preview: one host reporting one of its modules.
const HOST = "ab".repeat(32); // a host's SHA-256 of its hostname
const HASH_KEY = "test-telemetry-hash-key"; // vitest.config.ts binds it as TELEMETRY_HASH_KEY
const MODULE = "modules/age.nix";
const usagePath = `/api/v1/namespaces/${PREVIEW}/modules/${MODULE}/usage`;
let reportedAt = Math.floor(Date.now() / 1000) - 3600;

/** The host reports the preview's module, a minute after its previous report (its clock is moved back). */
async function reportUsage(): Promise<{ applied: boolean; ignoredNamespaces: string[] }> {
  const host = env.HOST_USAGE.get(env.HOST_USAGE.idFromName(await keyedHostHash(HASH_KEY, HOST)));
  await runInDurableObject(host, (_h, state) => {
    if (state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'host'").toArray().length) {
      state.storage.sql.exec("UPDATE host SET last_accepted_at = last_accepted_at - 61000");
    }
  });
  const body = { host: HOST, environment: "ci", system: "x86_64-linux", reportedAt: ++reportedAt, modules: [`${PREVIEW}:${MODULE}`, `agenix:${MODULE}`] };
  const res = await api("/api/v1/telemetry", { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(200);
  return json(res);
}

/** What the preview's UsageAggregate stores: nothing at all once the preview is deleted. */
function aggregateRows(): Promise<number> {
  const aggregate = env.USAGE_AGGREGATE.get(env.USAGE_AGGREGATE.idFromName(PREVIEW));
  return runInDurableObject(aggregate, (_a: UsageAggregate, state) =>
    ["module_hosts", "daily_hosts", "host_versions"].reduce((n, t) => n + state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${t}`).one().n, 0),
  );
}

let agenix: Record<string, unknown>;

beforeAll(async () => {
  agenix = await dataFile("agenix-options.json.gz");
  expect((await postBatch("agenix", agenix)).status).toBe(200);
  expect((await postBatch(PREVIEW, agenix)).status).toBe(200);
});

describe("preview namespaces", () => {
  it("are listed apart, with when they expire", async () => {
    const standard = await json(await api("/api/v1/namespaces"));
    expect(names(standard.items)).toEqual(["agenix"]);
    const previews = await json(await api("/api/v1/namespaces?kind=preview"));
    expect(names(previews.items)).toEqual([PREVIEW]);
    const [entry] = previews.items;
    expect(entry.preview).toBe(true);
    // PREVIEW_TTL_HOURS is 72 in wrangler.jsonc.
    expect(entry.expiresAt - entry.reportedAt).toBe(72 * 3_600_000);
    expect(names((await json(await api("/api/v1/namespaces?kind=all"))).items)).toEqual(["agenix", PREVIEW]);
    expect((await api("/api/v1/namespaces?kind=other")).status).toBe(400);
    expect((await json(await api("/api/v1/stats"))).namespaces).toBe(1);
  });

  it("are searched only when named", async () => {
    const all = await json(await api("/api/v1/search?q=age+secrets"));
    expect(all.total).toBeGreaterThan(0);
    expect(new Set(all.hits.map((h: { namespace: string }) => h.namespace))).toEqual(new Set(["agenix"]));
    const named = await json(await api(`/api/v1/search?q=age+secrets&namespace=${PREVIEW},agenix`));
    expect(new Set(named.hits.map((h: { namespace: string }) => h.namespace))).toEqual(new Set(["agenix", PREVIEW]));
  });

  it("survive an alarm before their expiry and are deleted entirely after it", async () => {
    // The alarm is set for the expiry; running it early deletes nothing.
    const alarmAt = await runInDurableObject(coordinator(), (_c: SearchCoordinator, state) => state.storage.getAlarm());
    const { expiresAt } = (await json(await api("/api/v1/namespaces?kind=preview"))).items[0];
    expect(alarmAt).toBe(expiresAt);
    await runDurableObjectAlarm(coordinator());
    expect((await api(`/api/v1/namespaces/${PREVIEW}`)).status).toBe(200);

    // A host uses one of the preview's modules.
    expect((await reportUsage()).ignoredNamespaces).toEqual([]);
    expect((await json(await api(usagePath))).hosts).toBe(1);
    expect((await json(await api(`/api/v1/stats/usage?namespace=${PREVIEW}`))).items).toMatchObject([{ module: MODULE, hosts: 1 }]);

    const live = await subscribe(`ns:${PREVIEW}`);
    const [ready] = (await live.waitFor(isReady)).filter(isReady);
    expect(ready.seq).toBeGreaterThan(0);

    // Time passes: the preview's expiry is now.
    await runInDurableObject(coordinator(), async (_c: SearchCoordinator, state) => {
      state.storage.sql.exec("UPDATE namespaces SET expires_at = ? WHERE name = ?", Date.now() - 1, PREVIEW);
      await state.storage.setAlarm(Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(coordinator())).toBe(true);

    // Its subscribers are told and disconnected with 4404; its room keeps nothing.
    await live.waitFor((f) => f.type === "namespace.deleted");
    expect((await live.closed()).code).toBe(4404);
    const room = env.LIVE_ROOM.get(env.LIVE_ROOM.idFromName(`ns:${PREVIEW}`));
    expect(await runInDurableObject(room, (_r: LiveRoom, state) => [...state.storage.kv.list()])).toEqual([]);

    expect(names((await json(await api("/api/v1/namespaces?kind=all"))).items)).toEqual(["agenix"]);
    const gone = await api(`/api/v1/namespaces/${PREVIEW}/modules`);
    expect(gone.status).toBe(404);
    expect((await json(gone)).error.code).toBe("namespace_not_found");
    const storage = await runInDurableObject(shard(PREVIEW), async (_s: NamespaceShard, state) => ({
      modules: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM modules").one().n,
      versions: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM module_versions").one().n,
      options: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM options").one().n,
      namespace: state.storage.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'namespace'").toArray(),
      alarm: await state.storage.getAlarm(),
    }));
    expect(storage).toEqual({ modules: 0, versions: 0, options: 0, namespace: [], alarm: null });
    // No other preview is pending: the coordinator has no alarm left.
    expect(await runInDurableObject(coordinator(), (_c: SearchCoordinator, state) => state.storage.getAlarm())).toBeNull();

    // Its usage is deleted with it: reads are 404s, and nothing is left in its UsageAggregate.
    expect(await aggregateRows()).toBe(0);
    for (const path of [usagePath, `/api/v1/stats/usage?namespace=${PREVIEW}`]) {
      const res = await api(path);
      expect(res.status, path).toBe(404);
      expect((await json(res)).error.code, path).toBe("namespace_not_found");
    }
    expect(names((await json(await api("/api/v1/stats/usage"))).items)).not.toContain(PREVIEW);
    // A host naming it again is not counted, and deltas still on their way are dropped.
    expect((await reportUsage()).ignoredNamespaces).toEqual([PREVIEW]);
    const aggregate = env.USAGE_AGGREGATE.get(env.USAGE_AGGREGATE.idFromName(PREVIEW));
    const late = { version: 99, changes: [{ module: MODULE, environment: "ci", delta: 1 as const }], seen: { day: new Date().toISOString().slice(0, 10), modules: [MODULE] } };
    expect(await aggregate.applyDeltas(PREVIEW, "cd".repeat(32), [late])).toBeNull();
    expect(await aggregateRows()).toBe(0);

    // A subscriber arriving now is refused: the namespace is gone.
    const refused = await subscribe(`ns:${PREVIEW}`).catch((err: Error) => err);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toContain("404");

    // Posting to the name again starts a new preview from version 1, without the old usage.
    expect((await postBatch(PREVIEW, agenix)).status).toBe(200);
    expect((await json(await api(usagePath))).hosts).toBe(0);
    expect((await json(await api(`/api/v1/stats/usage?namespace=${PREVIEW}`))).items).toEqual([]);
    // The host's next report counts it afresh.
    expect((await reportUsage()).ignoredNamespaces).toEqual([]);
    expect((await json(await api(usagePath))).hosts).toBe(1);
    const counts = await json(await api(`/api/v1/namespaces/${PREVIEW}`));
    expect(counts.versions).toBe(counts.modules);
    const again = await subscribe(`ns:${PREVIEW}`, "since=0");
    const events = (await again.waitFor(isReady)).filter(isEvent);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: counts.versions }, (_, i) => i + 1));
    again.close();
  });
});

/**
 * Host usage telemetry, end to end inside workerd: reports through the edge, the per-host
 * `HostUsage` objects and the per-namespace `UsageAggregate`s, on the real collections' modules.
 *
 * Time is moved by rewinding a host's stored clocks (`last_accepted_at`, `last_seen`) with
 * `runInDurableObject`, which is what a minute or a month passing looks like to the object.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createApp } from "../src/edge/app.ts";
import { boostByUsage, usageBonus } from "../src/shared/usageBoost.ts";
import { diffHostModules, keyedHostHash } from "../src/shared/telemetry.ts";
import type { SearchHit } from "../src/shared/types.ts";
import { ADMIN, api, dataFile, enc, json, postBatch } from "./helpers.ts";

const HASH_KEY = "test-telemetry-hash-key"; // vitest.config.ts binds it as TELEMETRY_HASH_KEY
const DAY_MS = 86_400_000;

// Real module paths of the collections loaded below.
const AGE = "agenix:modules/age.nix";
const SOPS = "sops-nix:modules/sops";
const SOPS_TEMPLATES = "sops-nix:modules/sops/templates";
const PROMETHEUS = "srvos:nixos/roles/prometheus";
const POSTGRES = "nix-darwin:modules/services/postgresql";

beforeAll(async () => {
  for (const ns of ["agenix", "sops-nix", "srvos", "nix-darwin"]) {
    const res = await postBatch(ns, await dataFile(`${ns}-options.json.gz`));
    expect(res.status, await res.clone().text()).toBe(200);
  }
});

/** The SHA-256 hex of a hostname, as a host computes it before reporting. */
async function hostOf(hostname: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(hostname));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function hostStub(host: string) {
  return env.HOST_USAGE.get(env.HOST_USAGE.idFromName(await keyedHostHash(HASH_KEY, host)));
}

/** Moves the host's stored clocks back, as if `ms` had passed since its last report. */
async function timePasses(host: string, ms: number): Promise<void> {
  await runInDurableObject(await hostStub(host), (_instance, state) => {
    state.storage.sql.exec("UPDATE host SET last_accepted_at = last_accepted_at - ?, last_seen = last_seen - ?", ms, ms);
  });
}

interface Report {
  host: string;
  environment: string;
  system: string;
  reportedAt: number;
  modules: string[];
}

function postReport(body: unknown, headers: Record<string, string> = ADMIN): Promise<Response> {
  return api("/api/v1/telemetry", {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** A report sent a minute or more after the host's previous one (so the rate limit does not apply). */
async function reportLater(r: Report): Promise<any> {
  await timePasses(r.host, 61_000);
  const res = await postReport(r);
  expect(res.status, await res.clone().text()).toBe(200);
  return json(res);
}

async function usage(ref: string): Promise<{ hosts: number; byEnvironment: Record<string, number>; daily: { day: string; hosts: number }[] }> {
  const [ns, path] = [ref.slice(0, ref.indexOf(":")), ref.slice(ref.indexOf(":") + 1)];
  const res = await api(`/api/v1/namespaces/${ns}/modules/${path}/usage`);
  expect(res.status, await res.clone().text()).toBe(200);
  return json(res);
}

async function usageSnapshot(refs: readonly string[]): Promise<Record<string, unknown>> {
  return Object.fromEntries(await Promise.all(refs.map(async (r) => [r, await usage(r)] as const)));
}

/** Deterministic shuffle (mulberry32), so a failure can be replayed. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const ALL = [AGE, SOPS, SOPS_TEMPLATES, PROMETHEUS];

describe("counts", () => {
  it("are exact after 3 hosts report, change and repeat reports in shuffled order", async () => {
    const [a, b, c] = await Promise.all(["alpha.example.org", "bravo.example.org", "charlie.example.org"].map(hostOf));
    const t = Math.floor(Date.now() / 1000) - 3600;
    const reports: Report[] = [
      { host: a!, environment: "production", system: "x86_64-linux", reportedAt: t + 1, modules: [AGE, SOPS] },
      { host: a!, environment: "production", system: "x86_64-linux", reportedAt: t + 2, modules: [AGE] },
      { host: a!, environment: "production", system: "x86_64-linux", reportedAt: t + 3, modules: [AGE, PROMETHEUS] },
      { host: b!, environment: "production", system: "aarch64-linux", reportedAt: t + 1, modules: [SOPS] },
      { host: b!, environment: "staging", system: "aarch64-linux", reportedAt: t + 5, modules: [SOPS, SOPS_TEMPLATES, AGE] },
      { host: c!, environment: "dev", system: "x86_64-linux", reportedAt: t + 1, modules: [AGE] },
      { host: c!, environment: "dev", system: "x86_64-linux", reportedAt: t + 2, modules: [AGE] },
      { host: c!, environment: "dev", system: "x86_64-linux", reportedAt: t + 4, modules: [AGE, SOPS, SOPS] },
    ];
    // Every report twice (a retried POST), in an order that puts some older reports after newer ones.
    const sent = shuffled([...reports, ...reports], 5);
    const latest = new Map<string, number>();
    const applied = new Map<string, number>(); // host → reports applied (stale ones are not counted)
    const seenToday = new Map<string, Set<string>>(); // module → hosts whose applied reports named it
    for (const r of sent) {
      const outcome = await reportLater(r);
      const newer = r.reportedAt > (latest.get(r.host) ?? -1);
      expect(outcome.applied, `report ${r.host.slice(0, 6)}@${r.reportedAt - t}`).toBe(newer);
      if (newer) {
        latest.set(r.host, r.reportedAt);
        applied.set(r.host, (applied.get(r.host) ?? 0) + 1);
        for (const m of r.modules) seenToday.set(m, (seenToday.get(m) ?? new Set()).add(r.host));
      }
    }
    expect(sent.some((r, i) => sent.slice(i + 1).some((s) => s.host === r.host && s.reportedAt < r.reportedAt))).toBe(true);

    // The expected counts come from each host's newest report only.
    const today = new Date().toISOString().slice(0, 10);
    const finals = reports.filter((r) => r.reportedAt === latest.get(r.host));
    for (const ref of ALL) {
      const using = finals.filter((r) => r.modules.includes(ref));
      const byEnvironment: Record<string, number> = {};
      for (const r of using) byEnvironment[r.environment] = (byEnvironment[r.environment] ?? 0) + 1;
      const u = await usage(ref);
      expect({ ref, hosts: u.hosts, byEnvironment: u.byEnvironment }).toEqual({ ref, hosts: using.length, byEnvironment });
      expect(u.daily).toHaveLength(30);
      expect(u.daily.at(-1)).toEqual({ day: today, hosts: seenToday.get(ref)?.size ?? 0 });
    }
    // Concretely: agenix on all three (production, staging, dev), sops on b and c, templates on b.
    expect((await usage(AGE)).byEnvironment).toEqual({ dev: 1, production: 1, staging: 1 });
    expect((await usage(SOPS)).hosts).toBe(2);

    const state = await (await hostStub(c!)).state();
    expect(applied.get(c!)).toBeLessThan(6); // the shuffle sent some of c's reports stale
    expect(state).toMatchObject({ reportCount: applied.get(c!), reportedAt: t + 4, environment: "dev", modules: [{ namespace: "agenix", path: "modules/age.nix" }, { namespace: "sops-nix", path: "modules/sops" }], pendingDeltas: 0 });

    const top = await json(await api("/api/v1/stats/usage?limit=3"));
    expect(top.items.map((i: any) => [`${i.namespace}:${i.module}`, i.hosts])).toEqual([[AGE, 3], [SOPS, 2], [SOPS_TEMPLATES, 1]]);
    const sops = await json(await api("/api/v1/stats/usage?namespace=sops-nix"));
    expect(sops.items).toEqual([
      { namespace: "sops-nix", module: "modules/sops", hosts: 2, byEnvironment: { dev: 1, staging: 1 } },
      { namespace: "sops-nix", module: "modules/sops/templates", hosts: 1, byEnvironment: { staging: 1 } },
    ]);
  });

  it("are removed when a silent host is aged out by its alarm, and come back when it reports", async () => {
    const [d, e] = await Promise.all(["delta.example.org", "echo.example.org"].map(hostOf));
    const before = await usageSnapshot(ALL);
    const t = Math.floor(Date.now() / 1000);
    await reportLater({ host: d!, environment: "production", system: "x86_64-linux", reportedAt: t, modules: [PROMETHEUS, SOPS_TEMPLATES] });
    await reportLater({ host: e!, environment: "production", system: "x86_64-linux", reportedAt: t, modules: [PROMETHEUS] });
    expect((await usage(PROMETHEUS)).hosts).toBe((before[PROMETHEUS] as any).hosts + 2);

    // 29 days of silence: the alarm runs, but the host is not old enough (TELEMETRY_AGE_OUT_DAYS = 30).
    await timePasses(d!, 29 * DAY_MS);
    expect(await runDurableObjectAlarm(await hostStub(d!))).toBe(true);
    expect((await usage(PROMETHEUS)).hosts).toBe((before[PROMETHEUS] as any).hosts + 2);

    await timePasses(d!, 1 * DAY_MS + 1000);
    expect(await runDurableObjectAlarm(await hostStub(d!))).toBe(true);
    expect((await usage(PROMETHEUS)).hosts).toBe((before[PROMETHEUS] as any).hosts + 1);
    expect((await usage(SOPS_TEMPLATES)).hosts).toBe((before[SOPS_TEMPLATES] as any).hosts);
    const aged = await (await hostStub(d!)).state();
    expect(aged).toMatchObject({ modules: [], environment: null, pendingDeltas: 0 });
    expect(aged!.agedOutAt).toBeTypeOf("number");
    // Running the alarm again changes nothing (alarms are delivered at least once).
    await runDurableObjectAlarm(await hostStub(d!));
    expect((await usage(PROMETHEUS)).hosts).toBe((before[PROMETHEUS] as any).hosts + 1);

    await reportLater({ host: d!, environment: "production", system: "x86_64-linux", reportedAt: t + 60, modules: [PROMETHEUS] });
    expect((await usage(PROMETHEUS)).hosts).toBe((before[PROMETHEUS] as any).hosts + 2);
  });

  it("survive a crash between delivery and acknowledgement: the redelivered delta is not counted again", async () => {
    const host = await hostOf("lima.example.org");
    await reportLater({ host, environment: "production", system: "x86_64-linux", reportedAt: Math.floor(Date.now() / 1000), modules: [PROMETHEUS] });
    const after = await usage(PROMETHEUS);
    const stub = await hostStub(host);
    const { version } = (await stub.state())!;
    // The state a crash right after the aggregate applied the delta, before the outbox row was deleted, leaves.
    await runInDurableObject(stub, (_instance, state) => {
      const delta = { version, changes: [{ module: "nixos/roles/prometheus", environment: "production", delta: 1 }] };
      state.storage.sql.exec("INSERT INTO outbox (version, namespace, payload) VALUES (?, 'srvos', ?)", version, JSON.stringify(delta));
    });
    expect((await stub.state())!.pendingDeltas).toBe(1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await stub.state())!.pendingDeltas).toBe(0);
    expect(await usage(PROMETHEUS)).toEqual(after);
  });

  it("survive eviction of the host's and the aggregate's objects (state and the age-out alarm are in storage)", async () => {
    const host = await hostOf("oscar.example.org");
    const t = Math.floor(Date.now() / 1000);
    await reportLater({ host, environment: "production", system: "x86_64-linux", reportedAt: t, modules: [PROMETHEUS] });
    const after = await usage(PROMETHEUS);
    const stub = await hostStub(host);
    const before = await stub.state();
    await evictDurableObject(stub);
    await evictDurableObject(env.USAGE_AGGREGATE.get(env.USAGE_AGGREGATE.idFromName("srvos")));
    expect(await (await hostStub(host)).state()).toEqual(before);
    expect(await usage(PROMETHEUS)).toEqual(after);
    // The next report diffs against the stored state; the alarm set before eviction still ages the host out.
    await reportLater({ host, environment: "production", system: "x86_64-linux", reportedAt: t + 60, modules: [] });
    expect((await usage(PROMETHEUS)).hosts).toBe(after.hosts - 1);
    await reportLater({ host, environment: "production", system: "x86_64-linux", reportedAt: t + 120, modules: [PROMETHEUS] });
    await evictDurableObject(await hostStub(host));
    await timePasses(host, 31 * DAY_MS);
    expect(await runDurableObjectAlarm(await hostStub(host))).toBe(true);
    expect(await usage(PROMETHEUS)).toEqual({ ...after, hosts: after.hosts - 1, byEnvironment: { ...after.byEnvironment, production: after.byEnvironment.production! - 1 } });
  });

  it("apply a repeated delta delivery once (a retry after a crash does not double count)", async () => {
    const host = await hostOf("foxtrot.example.org");
    const hash = await keyedHostHash(HASH_KEY, host);
    const aggregate = env.USAGE_AGGREGATE.get(env.USAGE_AGGREGATE.idFromName("srvos"));
    const before = (await usage(PROMETHEUS)).hosts;
    const delta = { version: 1, changes: [{ module: "nixos/roles/prometheus", environment: "production", delta: 1 as const }] };
    expect(await aggregate.applyDeltas("srvos", hash, [delta])).toBe(1);
    expect(await aggregate.applyDeltas("srvos", hash, [delta])).toBe(0);
    // A batch holding the old version and a new one applies only the new one.
    expect(await aggregate.applyDeltas("srvos", hash, [delta, { version: 2, changes: [{ ...delta.changes[0]!, delta: -1 as const }] }])).toBe(1);
    expect((await usage(PROMETHEUS)).hosts).toBe(before);
  });
});

describe("report order", () => {
  it("refuses a reportedAt more than 5 minutes ahead of the server clock, so one bad clock cannot lock its host out", async () => {
    const host = await hostOf("skew.example.org");
    const now = Math.floor(Date.now() / 1000);
    const report = { host, environment: "production", system: "x86_64-linux", modules: [AGE] };
    for (const ahead of [23 * 3600, 301 + 5]) {
      const res = await postReport({ ...report, reportedAt: now + ahead });
      expect(res.status, `now + ${ahead} s`).toBe(400);
      const issue = (await json(res)).error.details.issues.find((i: { path: unknown[] }) => i.path[1] === "reportedAt");
      expect(issue.message).toContain("at most 5 minutes (300 s) ahead of the server clock");
    }
    expect(await (await hostStub(host)).state()).toBeNull();
    // A little skew is fine, and the host's true reports after it are applied once its clock passes it.
    expect((await json(await postReport({ ...report, reportedAt: now + 240 }))).applied).toBe(true);
    expect((await reportLater({ ...report, reportedAt: now + 241 })).applied).toBe(true);
  });

  it("acknowledges a stale report (not newer than the latest) with applied: false and changes nothing at all", async () => {
    const host = await hostOf("stale.example.org");
    const t = Math.floor(Date.now() / 1000);
    await reportLater({ host, environment: "production", system: "x86_64-linux", reportedAt: t, modules: [AGE] });
    await timePasses(host, 61_000);
    const before = await (await hostStub(host)).state();
    const counts = await usageSnapshot(ALL);
    for (const reportedAt of [t, t - 60]) {
      const outcome = await json(await postReport({ host, environment: "staging", system: "x86_64-linux", reportedAt, modules: [SOPS] }));
      expect(outcome).toMatchObject({ applied: false, reason: "stale", reportCount: before!.reportCount, lastSeen: before!.lastSeen });
      // Not even last seen or the report count move (they would delay the host's age-out).
      expect(await (await hostStub(host)).state()).toEqual(before);
      expect(await usageSnapshot(ALL)).toEqual(counts);
    }
  });

  it("counts a host once per UTC day in the daily series, also when it ages out and reports again that day", async () => {
    const host = await hostOf("sameday.example.org");
    const t = Math.floor(Date.now() / 1000);
    const dailyToday = async () => (await usage(SOPS_TEMPLATES)).daily.at(-1)!.hosts;
    const before = await dailyToday();
    await reportLater({ host, environment: "production", system: "x86_64-linux", reportedAt: t, modules: [SOPS_TEMPLATES] });
    expect(await dailyToday(), "first report").toBe(before + 1);
    // Aged out by its alarm (its clocks moved back), it reports again on the same UTC day.
    await runInDurableObject(await hostStub(host), (_instance, state) => {
      state.storage.sql.exec("UPDATE host SET last_seen = last_seen - ?", 31 * DAY_MS);
    });
    expect(await runDurableObjectAlarm(await hostStub(host))).toBe(true);
    expect((await (await hostStub(host)).state())!.agedOutAt).toBeTypeOf("number");
    await reportLater({ host, environment: "production", system: "x86_64-linux", reportedAt: t + 60, modules: [SOPS_TEMPLATES] });
    expect(await dailyToday(), "after age-out").toBe(before + 1);
  });
});

describe("modules a namespace does not have", () => {
  const JUNK = "agenix:modules/does/not/exist.nix";

  it("are never shown by usage reads, however many hosts report them", async () => {
    const hosts = await Promise.all(Array.from({ length: 5 }, (_, i) => hostOf(`junk-${i}.example.org`)));
    const t = Math.floor(Date.now() / 1000);
    for (const host of hosts) await reportLater({ host, environment: "production", system: "x86_64-linux", reportedAt: t, modules: [JUNK, AGE] });
    // They are counted (the module may appear later) ...
    expect((await (await hostStub(hosts[0]!)).state())!.modules).toContainEqual({ namespace: "agenix", path: "modules/does/not/exist.nix" });
    // ... but neither the top list nor the module's usage shows them.
    for (const query of ["", "?namespace=agenix", "?limit=1", "?namespace=agenix&limit=1"]) {
      const top = await json(await api(`/api/v1/stats/usage${query}`));
      expect(top.items.length, query).toBeGreaterThan(0);
      expect(top.items.map((i: any) => `${i.namespace}:${i.module}`), query).not.toContain(JUNK);
    }
    expect((await json(await api("/api/v1/stats/usage?namespace=agenix&limit=1"))).items[0].module).toBe("modules/age.nix");
    const res = await api("/api/v1/namespaces/agenix/modules/modules/does/not/exist.nix/usage");
    expect(res.status).toBe(404);
    expect((await json(res)).error.code).toBe("module_not_found");
    expect((await api("/api/v1/namespaces/agenix/modules/modules/age.nix/usage")).status).toBe(200);
  });
});

describe("rate limit", () => {
  it("answers a second report within a minute with 429, Retry-After and the error envelope, changing nothing", async () => {
    const host = await hostOf("golf.example.org");
    const t = Math.floor(Date.now() / 1000);
    expect((await postReport({ host, environment: "ci", system: "x86_64-linux", reportedAt: t, modules: [AGE] })).status).toBe(200);
    const before = await usageSnapshot(ALL);
    const res = await postReport({ host, environment: "ci", system: "x86_64-linux", reportedAt: t + 1, modules: [SOPS] });
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await json(res)).toMatchObject({ error: { code: "rate_limited", details: { retryAfterSeconds: retryAfter } } });
    expect(await usageSnapshot(ALL)).toEqual(before);
    expect(await (await hostStub(host)).state()).toMatchObject({ reportCount: 1, reportedAt: t });
    // A minute later the same report is accepted.
    await timePasses(host, 60_000);
    expect((await postReport({ host, environment: "ci", system: "x86_64-linux", reportedAt: t + 1, modules: [SOPS] })).status).toBe(200);
  });
});

describe("privacy", () => {
  afterEach(() => vi.restoreAllMocks());

  it("never stores or logs the host value it received, only its keyed hash", async () => {
    const logged: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(" ")));
    }
    const host = await hostOf("hotel.private.example.org");
    const res = await postReport({ host, environment: "production", system: "x86_64-linux", reportedAt: Math.floor(Date.now() / 1000), modules: [AGE, SOPS, "unknown-ns:modules/x.nix"] });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).not.toContain(host);
    expect(JSON.parse(body).ignoredNamespaces).toEqual(["unknown-ns"]);

    const keyed = await keyedHostHash(HASH_KEY, host);
    expect(keyed).not.toBe(host);
    const dump = async (stub: DurableObjectStub) =>
      runInDurableObject(stub, async (_instance, state) => {
        const tables = state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'").toArray();
        const rows = tables.map((t) => JSON.stringify(state.storage.sql.exec(`SELECT * FROM "${t.name}"`).toArray()));
        return rows.join("\n") + JSON.stringify([...(await state.storage.list())]);
      });
    const stored = [await dump(await hostStub(host)), await dump(env.USAGE_AGGREGATE.get(env.USAGE_AGGREGATE.idFromName("agenix"))), await dump(env.USAGE_AGGREGATE.get(env.USAGE_AGGREGATE.idFromName("sops-nix")))];
    for (const text of stored) expect(text).not.toContain(host);
    // What is stored is the keyed hash (so the check above looked at the right rows).
    expect(stored[0]).toContain(keyed);
    expect(stored[1]).toContain(keyed);
    for (const line of logged) expect(line).not.toContain(host);
  });

  it("refuses reports with 503 while the TELEMETRY_HASH_KEY secret is not configured", async () => {
    const host = await hostOf("mike.example.org");
    const res = await createApp().request(
      "/api/v1/telemetry",
      { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify({ host, environment: "production", system: "x86_64-linux", reportedAt: 1, modules: [AGE] }) },
      { ...env, TELEMETRY_HASH_KEY: "" },
    );
    expect(res.status).toBe(503);
    expect((await json(res)).error.code).toBe("unavailable");
  });

  it("takes a `telemetry` API key, which can do nothing else; read keys and namespace-scoped keys are refused", async () => {
    const key = async (body: object) => {
      const res = await api("/api/v1/admin/keys", { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify(body) });
      expect(res.status, await res.clone().text()).toBe(201);
      return { authorization: `Bearer ${(await json(res)).key}` };
    };
    const telemetryKey = await key({ name: "fleet telemetry", role: "telemetry" });
    // A telemetry key limited to namespaces could never report (a report names any namespace's modules).
    const scopedTelemetry = await api("/api/v1/admin/keys", {
      method: "POST",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ name: "agenix fleet", role: "telemetry", namespaces: ["agenix"] }),
    });
    expect(scopedTelemetry.status).toBe(400);
    expect(JSON.stringify(await json(scopedTelemetry))).toContain("telemetry keys cannot be limited to namespaces");
    const readKey = await key({ name: "reader", role: "read" });
    const scopedWrite = await key({ name: "agenix ci", role: "write", namespaces: ["agenix"] });
    const host = await hostOf("november.example.org");
    const report = { host, environment: "production", system: "x86_64-linux", reportedAt: Math.floor(Date.now() / 1000), modules: [AGE] };
    expect((await postReport(report, readKey)).status).toBe(403);
    expect((await postReport(report, scopedWrite)).status).toBe(403);
    expect((await postReport(report, telemetryKey)).status).toBe(200);
    // The same key cannot ingest.
    const ingest = await api("/api/v1/namespaces/agenix/modules/batch", { method: "POST", headers: { ...telemetryKey, "content-type": "application/json" }, body: JSON.stringify({ modules: [] }) });
    expect(ingest.status).toBe(403);
  });

  it("needs a bearer credential", async () => {
    const host = await hostOf("india.example.org");
    const body = { host, environment: "production", system: "x86_64-linux", reportedAt: 1, modules: [] };
    expect((await postReport(body, {})).status).toBe(401);
    expect((await postReport(body, { authorization: "Bearer wrong" })).status).toBe(401);
    expect(await (await hostStub(host)).state()).toBeNull();
  });
});

describe("bad reports", () => {
  it("are refused with 400 naming the field, and nothing is written", async () => {
    const host = await hostOf("juliet.example.org");
    const now = Math.floor(Date.now() / 1000);
    const good = { host, environment: "production", system: "x86_64-linux", reportedAt: now, modules: [AGE] };
    const before = await usageSnapshot(ALL);
    const cases: [string, unknown, string][] = [
      ["host in upper case", { ...good, host: host.toUpperCase() }, "host"],
      ["host too short", { ...good, host: host.slice(1) }, "host"],
      ["hostname instead of its hash", { ...good, host: "juliet.example.org" }, "host"],
      ["missing modules", { ...good, modules: undefined }, "modules"],
      ["module without namespace", { ...good, modules: ["modules/age.nix"] }, "modules"],
      ["module path with ..", { ...good, modules: ["agenix:../etc/passwd"] }, "modules"],
      ["module path ending in /usage", { ...good, modules: ["agenix:modules/usage"] }, "modules"],
      ["too many modules", { ...good, modules: Array.from({ length: 2001 }, (_, i) => `agenix:m${i}.nix`) }, "modules"],
      ["reportedAt in milliseconds", { ...good, reportedAt: Date.now() }, "reportedAt"],
      ["reportedAt not a whole number", { ...good, reportedAt: now + 0.5 }, "reportedAt"],
      ["long environment", { ...good, environment: "x".repeat(33) }, "environment"],
      ["system with spaces", { ...good, system: "x86 64 linux" }, "system"],
      ["unknown field", { ...good, hostname: "juliet" }, ""],
      ["not an object", [good], ""],
    ];
    for (const [why, body, field] of cases) {
      const res = await postReport(body);
      expect(res.status, why).toBe(400);
      const err = (await json(res)).error;
      expect(err.code, why).toBe("validation_failed");
      if (field) expect(err.details.issues.some((i: { path: unknown[] }) => i.path[1] === field), `${why}: ${JSON.stringify(err.details)}`).toBe(true);
    }
    expect((await postReport("{not json")).status).toBe(400);
    expect((await api("/api/v1/telemetry", { method: "POST", headers: ADMIN, body: JSON.stringify(good) })).status).toBe(415);
    const tooLarge = await postReport("x".repeat(1024 * 1024 + 1));
    expect(tooLarge.status).toBe(413);
    const { message } = (await json(tooLarge)).error;
    expect(message).toContain("a report lists at most 2000 modules");
    expect(message).not.toContain("ingest");
    expect(await (await hostStub(host)).state()).toBeNull();
    expect(await usageSnapshot(ALL)).toEqual(before);
  });

  it("usage reads check their namespace and query", async () => {
    expect((await api("/api/v1/namespaces/nope/modules/x.nix/usage")).status).toBe(404);
    expect((await api("/api/v1/namespaces/agenix/modules/modules/age.nix/usage?days=0")).status).toBe(400);
    expect((await api("/api/v1/namespaces/agenix/modules/modules/age.nix/usage?days=91")).status).toBe(400);
    expect((await json(await api("/api/v1/namespaces/agenix/modules/modules%2Fage.nix/usage?days=7"))).daily).toHaveLength(7);
    expect((await api("/api/v1/stats/usage?namespace=nope")).status).toBe(404);
    expect((await api("/api/v1/stats/usage?limit=0")).status).toBe(400);
  });
});

describe("boost=usage", () => {
  it("reorders a near-tie by hosts using the modules, and never lifts a text match over a name match", async () => {
    // `mode`: sops.secrets.<name>.mode and age.secrets.<name>.mode are name matches a few points apart.
    const plain = (await json(await api(`/api/v1/search?q=mode&limit=20`))).hits as SearchHit[];
    const ageAt = plain.findIndex((h) => h.name === "age.secrets.<name>.mode");
    const sopsAt = plain.findIndex((h) => h.name === "sops.secrets.<name>.mode");
    expect(sopsAt).toBeLessThan(ageAt);
    expect(plain[sopsAt]!.score - plain[ageAt]!.score).toBeLessThan(10);

    // 20 more hosts use agenix, and these use nix-darwin's postgresql module too.
    const now = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 20; i++) {
      await reportLater({ host: await hostOf(`kilo-${i}.example.org`), environment: "production", system: "aarch64-darwin", reportedAt: now, modules: [AGE, POSTGRES] });
    }
    const [ageHosts, sopsHosts] = [(await usage(AGE)).hosts, (await usage(SOPS)).hosts];
    expect(usageBonus(ageHosts) - usageBonus(sopsHosts)).toBeGreaterThan(plain[sopsAt]!.score - plain[ageAt]!.score);

    const res = await json(await api(`/api/v1/search?q=mode&limit=20&boost=usage`));
    expect(res.usage).toBe("ok");
    const boosted = res.hits as SearchHit[];
    expect(boosted.findIndex((h) => h.name === "age.secrets.<name>.mode")).toBeLessThan(boosted.findIndex((h) => h.name === "sops.secrets.<name>.mode"));
    expect(boosted.find((h) => h.name === "age.secrets.<name>.mode")!.usageHosts).toBe(ageHosts);
    // The default ranking is untouched.
    expect((await json(await api(`/api/v1/search?q=mode&limit=20`))).hits).toEqual(plain);
    // `owner`: the used postgresql module's description match (services.postgresql.dataDir) stays below every name match.
    const owner = (await json(await api(`/api/v1/search?q=owner&limit=20&boost=usage`))).hits as SearchHit[];
    const pg = owner.findIndex((h) => h.module === "modules/services/postgresql");
    expect(owner[pg]!.usageHosts).toBe(20);
    expect(pg).toBeGreaterThan(owner.findLastIndex((h) => h.match === "name"));
    // An exact name stays first however much another module is used.
    expect((await json(await api(`/api/v1/search?q=sops.secrets&boost=usage`))).hits[0].name).toBe("sops.secrets");
  });

  it("keeps paging within one ranking: a boosted cursor is refused for an unboosted query", async () => {
    const first = await json(await api(`/api/v1/search?q=secret&limit=2&boost=usage`));
    expect(first.nextCursor).toBeTruthy();
    expect((await api(`/api/v1/search?q=secret&limit=2&boost=usage&cursor=${enc(first.nextCursor)}`)).status).toBe(200);
    expect((await api(`/api/v1/search?q=secret&limit=2&cursor=${enc(first.nextCursor)}`)).status).toBe(400);
    expect((await api(`/api/v1/search?q=secret&boost=popular`)).status).toBe(400);
  });
});

describe("pure parts", () => {
  it("diffs two reports into per-namespace increments and decrements", () => {
    const m = (s: string) => ({ namespace: s.slice(0, s.indexOf(":")), path: s.slice(s.indexOf(":") + 1) });
    const d = diffHostModules({ environment: "prod", modules: [m(AGE), m(SOPS)] }, { environment: "prod", modules: [m(AGE), m(PROMETHEUS)] });
    expect(Object.fromEntries(d)).toEqual({
      "sops-nix": [{ module: "modules/sops", environment: "prod", delta: -1 }],
      srvos: [{ module: "nixos/roles/prometheus", environment: "prod", delta: 1 }],
    });
    // Moving environment moves every module; the same report again changes nothing.
    expect(diffHostModules({ environment: "prod", modules: [m(AGE)] }, { environment: "dev", modules: [m(AGE)] }).get("agenix")).toEqual([
      { module: "modules/age.nix", environment: "prod", delta: -1 },
      { module: "modules/age.nix", environment: "dev", delta: 1 },
    ]);
    expect(diffHostModules({ environment: "prod", modules: [m(AGE)] }, { environment: "prod", modules: [m(AGE)] }).size).toBe(0);
  });

  it("caps the usage bonus below the next score tier", () => {
    const hit = (name: string, score: number): SearchHit => ({ namespace: "n", name, loc: [name], module: name, type: "t", snippet: "", score, match: score >= 3000 ? "name" : "text" });
    const out = boostByUsage([hit("exact-ish", 3000.5), hit("text", 2990)], (h) => (h.name === "text" ? 1_000_000 : 0));
    expect(out.map((h) => h.name)).toEqual(["exact-ish", "text"]);
    expect(out[1]!.score).toBeLessThan(3000);
    expect(usageBonus(0)).toBe(0);
    expect(usageBonus(1000)).toBeCloseTo(60, 0);
  });
});

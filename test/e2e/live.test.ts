/**
 * Live updates against a real `wrangler dev`, across a crash: a subscriber (the typed client, on
 * partysocket and Node's WebSocket) sees every change exactly once, in order, when the server is
 * SIGKILLed and restarted on the same storage between two changes: partysocket reconnects with
 * `since`, and the room replays what was committed while it was away.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, killAllGroups, killGroup, sleep, startWranglerDev, waitGroupGone, type WranglerDev } from "../../src/cli/processes.ts";
import { LiveClient } from "../../src/shared/liveClient.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DATA_DIR = process.env.NIXDOCS_DATA_DIR ?? path.resolve(ROOT, "../shared/data");
const NS = "sops-nix";
const OPTION = "sops.age.keyFile";
const TOKEN = randomBytes(16).toString("hex");

const temps: string[] = [];
afterAll(async () => {
  await killAllGroups();
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("live updates on wrangler dev", () => {
  it("delivers every change exactly once across a SIGKILL and restart of the server", async () => {
    const persistDir = await mkdtemp(path.join(os.tmpdir(), "nixdocs-e2e-live-"));
    temps.push(persistDir);
    const envFile = path.join(persistDir, "secrets.env");
    await writeFile(envFile, `ADMIN_TOKEN=${TOKEN}\n`, { mode: 0o600 });
    const port = await freePort();
    const start = () => startWranglerDev({ cwd: ROOT, port, persistDir: path.join(persistDir, "state"), envFile, vars: { ADMIN_TOKEN: TOKEN }, logLevel: "warn" });
    const edit = async (server: WranglerDev, round: number) => {
      const res = await fetch(`${server.url}/api/v1/namespaces/${NS}/options/${encodeURIComponent(OPTION)}`, {
        method: "PATCH",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ description: `Edited in round ${round}.` }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(((await res.json()) as { changed: boolean }).changed).toBe(true);
    };

    let server = await start();
    const body = readFileSync(path.join(DATA_DIR, `${NS}-options.json.gz`));
    const ingest = await fetch(`${server.url}/api/v1/namespaces/${NS}/modules/batch`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: gunzipSync(body),
    });
    expect(ingest.status).toBe(200);

    const client = new LiveClient({ host: `127.0.0.1:${port}`, protocol: "ws", room: { kind: "namespace", namespace: NS }, format: "msgpack" });
    const seen: number[] = [];
    client.onEvent = (e) => seen.push(e.seq);
    try {
      await until("the first ready frame", () => client.since !== undefined);
      const start0 = client.since!;

      await edit(server, 1);
      await until("the first event", () => seen.length === 1);

      // Crash: the whole process tree at once, nothing flushed on the way out.
      killGroup(server.pgid, "SIGKILL");
      expect(await waitGroupGone(server.pgid, 10_000)).toBe(true);
      server = await start();
      // Committed while the subscriber is disconnected: it must come as a replay.
      await edit(server, 2);
      await until("the replayed event", () => seen.length === 2);
      await edit(server, 3);
      await until("the live event after the replay", () => seen.length === 3);
      await sleep(300);
      expect(seen).toEqual([start0 + 1, start0 + 2, start0 + 3]);
    } finally {
      client.close();
      await server.stop();
    }
  });
});

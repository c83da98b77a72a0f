/** WebSocket helpers of the workerd suite: subscribers that wait deterministically, each wait with its own timeout. */
import { exports } from "cloudflare:workers";
import { decodeFrame } from "../src/shared/live.ts";

const WAIT_MS = 10_000;

function withTimeout<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

export interface Subscriber {
  ws: WebSocket;
  /** Every decoded frame so far, in arrival order, and whether it came as binary. */
  frames: any[];
  binary: boolean[];
  /** Resolves when `count` frames matching `match` have arrived (with all frames so far). */
  waitFor(match: (frame: any) => boolean, count?: number): Promise<any[]>;
  closed(): Promise<{ code: number; reason: string }>;
  send(data: string | ArrayBuffer | Uint8Array): void;
  close(): void;
}

/** Open `/parties/live-room/<room>?<query>` through the Worker; throws with the body on a refusal. */
export async function subscribe(room: string, query = ""): Promise<Subscriber> {
  const res = await exports.default.fetch(`http://nixdocs.test/parties/live-room/${room}${query ? `?${query}` : ""}`, { headers: { Upgrade: "websocket" } });
  if (!res.webSocket) throw new Error(`no WebSocket: ${res.status} ${await res.text()}`);
  const ws = res.webSocket;
  const frames: any[] = [];
  const binary: boolean[] = [];
  let waiters: (() => void)[] = [];
  let resolveClosed!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r));
  ws.addEventListener("message", (ev) => {
    binary.push(typeof ev.data !== "string");
    frames.push(decodeFrame(ev.data as string | ArrayBuffer));
    for (const w of waiters) w();
  });
  ws.addEventListener("close", (ev) => resolveClosed({ code: ev.code, reason: ev.reason }));
  // workerd hands binary messages over as Blobs unless told otherwise.
  ws.binaryType = "arraybuffer";
  ws.accept();
  return {
    ws,
    frames,
    binary,
    closed: () => withTimeout(closed, "the socket to close"),
    waitFor(match, count = 1) {
      const done = () => frames.filter(match).length >= count;
      if (done()) return Promise.resolve(frames);
      return withTimeout(
        new Promise<any[]>((resolve) => {
          const check = () => {
            if (!done()) return;
            waiters = waiters.filter((w) => w !== check);
            resolve(frames);
          };
          waiters.push(check);
        }),
        `${count} matching frame(s); got ${JSON.stringify(frames).slice(0, 500)}`,
      );
    },
    send: (data) => ws.send(data),
    close: () => ws.close(1000, "done"),
  };
}

export const isEvent = (f: any) => typeof f.type === "string" && f.type.startsWith("module.");
export const isReady = (f: any) => f.type === "ready";

/**
 * A WebSocket constructor for partysocket inside workerd: `new FetchWebSocket(url)` upgrades
 * through the Worker's own fetch handler (there is no network listener in the test pool).
 */
export class FetchWebSocket extends EventTarget {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;
  readyState = 0;
  binaryType = "arraybuffer";
  bufferedAmount = 0;
  extensions = "";
  protocol = "";
  readonly url: string;
  #ws: WebSocket | null = null;

  constructor(url: string) {
    super();
    this.url = url;
    void exports.default.fetch(url.replace(/^ws/, "http"), { headers: { Upgrade: "websocket" } }).then((res) => {
      const ws = res.webSocket;
      if (!ws) {
        this.readyState = 3;
        this.dispatchEvent(new Event("error"));
        this.dispatchEvent(new CloseEvent("close", { code: 1006, reason: `HTTP ${res.status}` }));
        return;
      }
      this.#ws = ws;
      ws.addEventListener("message", (ev) => this.dispatchEvent(new MessageEvent("message", { data: ev.data })));
      ws.addEventListener("close", (ev) => {
        this.readyState = 3;
        this.dispatchEvent(new CloseEvent("close", { code: ev.code, reason: ev.reason, wasClean: ev.wasClean }));
      });
      ws.binaryType = "arraybuffer";
      ws.accept();
      this.readyState = 1;
      this.dispatchEvent(new Event("open"));
    });
  }

  send(data: string | ArrayBuffer): void {
    this.#ws?.send(data);
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.#ws?.close(code, reason);
  }
}

/**
 * A typed client of the live rooms, on partysocket (which reconnects with backoff). It decodes
 * and validates every frame, remembers the latest `seq` it has seen, and reconnects with
 * `since=<that seq>`, so a dropped connection resumes where it stopped: the room replays the gap.
 *
 * ```ts
 * const live = new LiveClient({ host: "localhost:8787", room: { kind: "namespace", namespace: "home-manager" } });
 * live.onEvent = (e) => console.log(e.seq, e.type, e.module, e.version);
 * ```
 * @module
 */
import { PartySocket } from "partysocket";
import {
  CLOSE_NAMESPACE_GONE,
  decodeFrame,
  LIVE_PARTY,
  roomName,
  serverFrameSchema,
  type ErrorFrame,
  type FrameFormat,
  type LiveEvent,
  type NamespaceDeletedFrame,
  type ReadyFrame,
  type RoomName,
} from "./live.ts";

export interface LiveClientOptions {
  /** `host[:port]` of the service (no scheme). */
  host: string;
  room: RoomName;
  format?: FrameFormat;
  /** Resume after this `seq` (events with a larger one are replayed first). */
  since?: number;
  protocol?: "ws" | "wss";
  /** A WebSocket constructor where the global one does not fit (tests inside workerd). */
  WebSocket?: unknown;
  /** Passed to partysocket; `0` turns reconnecting off. */
  maxRetries?: number;
}

export class LiveClient {
  readonly socket: PartySocket;
  onEvent: (event: LiveEvent) => void = () => {};
  onReady: (frame: ReadyFrame) => void = () => {};
  onError: (frame: ErrorFrame) => void = () => {};
  onPong: (id: string | undefined) => void = () => {};
  /** The namespace was deleted; the client stops reconnecting. */
  onDeleted: (frame: NamespaceDeletedFrame) => void = () => {};
  /** Frames that failed validation (a server newer than this client, or a bug). */
  onInvalid: (data: unknown) => void = () => {};
  #since: number | undefined;

  constructor(options: LiveClientOptions) {
    this.#since = options.since;
    const format = options.format ?? "json";
    this.socket = new PartySocket({
      host: options.host,
      party: LIVE_PARTY,
      room: roomName(options.room),
      protocol: options.protocol,
      WebSocket: options.WebSocket,
      maxRetries: options.maxRetries,
      // A room of a namespace that does not exist (any more) closes with 4404: do not retry.
      shouldReconnectOnClose: (event: CloseEvent) => event.code !== CLOSE_NAMESPACE_GONE,
      // Asked again on every (re)connect: resume after the last seq seen.
      query: () => (this.#since === undefined ? { format } : { format, since: String(this.#since) }),
    });
    this.socket.binaryType = "arraybuffer";
    this.socket.addEventListener("message", (ev: MessageEvent) => this.#receive(ev.data));
  }

  /** The `seq` this client would resume after (undefined before the first `ready`). */
  get since(): number | undefined {
    return this.#since;
  }

  #receive(data: unknown): void {
    let frame;
    try {
      frame = serverFrameSchema.parse(decodeFrame(data as string | ArrayBuffer));
    } catch {
      this.onInvalid(data);
      return;
    }
    switch (frame.type) {
      case "ready":
        this.#since = Math.max(this.#since ?? 0, frame.seq);
        return this.onReady(frame);
      case "error":
        return this.onError(frame);
      case "pong":
        return this.onPong(frame.id);
      case "namespace.deleted":
        return this.onDeleted(frame);
      default:
        this.#since = Math.max(this.#since ?? 0, frame.seq);
        return this.onEvent(frame);
    }
  }

  ping(id?: string): void {
    this.socket.send(JSON.stringify(id === undefined ? { type: "ping" } : { type: "ping", id }));
  }

  /** Drop the connection and open a new one (resuming with `since`). */
  reconnect(): void {
    this.socket.reconnect();
  }

  close(): void {
    this.socket.close();
  }
}

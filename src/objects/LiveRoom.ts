/**
 * `LiveRoom`: a partyserver room that pushes committed changes to WebSocket subscribers. One room
 * per namespace (`ns:<namespace>`) and one per module for editors
 * (`module:<namespace>:<encoded path>`), at `/parties/live-room/<room>`. Hibernation is on: an
 * idle room costs nothing while its sockets stay open.
 *
 * The room stores nothing but the last `seq` it delivered (to drop the repeats an at-least-once
 * publisher sends); missed events are replayed from the shard's history. A subscriber that
 * connects with `since=<seq>` gets every event after that `seq` from the shard, then the live
 * ones: events published while its replay is in flight wait in memory (the room is awake
 * meanwhile) and are sent after it, minus those the replay already held. So no gap, no repeat.
 * @module
 */
import { Server, type Connection, type ConnectionContext, type WSMessage } from "partyserver";
import { ApiError, unwrap } from "../shared/errors.ts";
import { LIMITS } from "../shared/limits.ts";
import {
  CLOSE_NAMESPACE_GONE,
  CLOSE_POLICY_VIOLATION,
  connectQuery,
  countMessage,
  encodeFrame,
  liveEventSchema,
  parseClientMessage,
  parseRoomName,
  type FrameFormat,
  type LiveEvent,
  type MessageWindow,
  type RoomName,
  type ServerFrame,
} from "../shared/live.ts";
import { z } from "../shared/zod.ts";

/** What a connection keeps across hibernation (its socket attachment). */
interface SubscriberState {
  format: FrameFormat;
  /** Events up to this `seq` were sent by the replay; live events at or below it are repeats. */
  through: number;
  window: MessageWindow | null;
}

const publishRequest = z.object({ epoch: z.string().min(1).max(64), events: z.array(liveEventSchema).max(LIMITS.liveEventPage) });

const DEDUPE_KEY = "live:last";

// Cloudflare.Env: partyserver requires it (tests add bindings to it that the generated `Env` lacks).
export class LiveRoom extends Server<Cloudflare.Env> {
  static override options = { hibernate: true };

  /** Connections whose replay is running, with the live events that arrived meanwhile. */
  readonly #replaying = new Map<string, LiveEvent[]>();

  #room(): RoomName {
    const room = parseRoomName(this.name);
    if (!room) throw new Error(`live-room: ${this.name} is not a room name (the edge admits only valid names)`);
    return room;
  }

  #shard(namespace: string) {
    return this.env.NAMESPACE_SHARD.get(this.env.NAMESPACE_SHARD.idFromName(namespace));
  }

  #send(connection: Connection, frame: ServerFrame, format: FrameFormat): void {
    connection.send(encodeFrame(frame, format));
  }

  override async onConnect(connection: Connection<SubscriberState>, ctx: ConnectionContext): Promise<void> {
    const query = connectQuery.parse(Object.fromEntries(new URL(ctx.request.url).searchParams));
    const room = this.#room();
    const pending: LiveEvent[] = [];
    this.#replaying.set(connection.id, pending);
    let through = 0;
    let replayed = 0;
    try {
      // Without `since` the subscriber starts at the latest seq; with it, pages of history follow.
      let after: number | null = query.since ?? null;
      for (;;) {
        const page = unwrap(
          await this.#shard(room.namespace).liveSync(room.namespace, {
            after,
            module: room.kind === "module" ? room.module : null,
            limit: LIMITS.liveEventPage,
            watch: room.kind === "module",
          }),
        );
        for (const event of page.events) this.#send(connection, event, query.format);
        replayed += page.events.length;
        if (after === null || page.events.length < LIMITS.liveEventPage) {
          // Everything up to the latest seq was replayed or precedes `since` (a `since` beyond
          // the latest comes from before a preview namespace was recreated: start from latest).
          through = page.latest;
          break;
        }
        after = page.events[page.events.length - 1]!.seq;
      }
      for (const event of pending) if (event.seq > through) this.#send(connection, event, query.format);
      through = Math.max(through, ...pending.map((e) => e.seq));
    } catch (err) {
      if (err instanceof ApiError && err.code === "namespace_not_found") {
        this.#send(connection, { type: "error", code: "namespace_not_found", message: err.message }, query.format);
        connection.close(CLOSE_NAMESPACE_GONE, "namespace not found");
        return;
      }
      console.error("live-room: replay failed", this.name, String(err));
      this.#send(connection, { type: "error", code: "replay_failed", message: "the history could not be read; reconnect with the same since" }, query.format);
      connection.close(1011, "replay failed");
      return;
    } finally {
      this.#replaying.delete(connection.id);
    }
    connection.setState({ format: query.format, through, window: null });
    this.#send(connection, { type: "ready", room: this.name, seq: through, replayed }, query.format);
  }

  override onMessage(connection: Connection<SubscriberState>, message: WSMessage): void {
    const state = connection.state;
    if (!state) return; // still replaying: its messages wait for no one
    const counted = countMessage(state.window, Date.now());
    connection.setState({ ...state, window: counted.window });
    if (!counted.allowed) {
      connection.close(CLOSE_POLICY_VIOLATION, `more than ${LIMITS.liveMessagesPerWindow} messages in ${LIMITS.liveMessageWindowMs / 1000} s`);
      return;
    }
    const parsed = parseClientMessage(message);
    if (!parsed.ok) return this.#send(connection, parsed.error, state.format);
    const pong: ServerFrame = parsed.message.id === undefined ? { type: "pong" } : { type: "pong", id: parsed.message.id };
    this.#send(connection, pong, state.format);
  }

  override async onClose(connection: Connection): Promise<void> {
    const room = this.#room();
    if (room.kind !== "module") return;
    const others = [...this.getConnections()].some((c) => c.id !== connection.id && c.readyState === WebSocket.OPEN);
    if (!others) await this.#shard(room.namespace).unwatchModule(room.namespace, room.module);
  }

  /**
   * Called by the shard with events in `seq` order. Events at or below the last delivered `seq`
   * of this `epoch` are repeats of a retried publish and are dropped. Returns how many were new.
   */
  publish(epoch: string, events: LiveEvent[]): number {
    const req = publishRequest.parse({ epoch, events });
    const last = this.ctx.storage.kv.get<{ epoch: string; seq: number }>(DEDUPE_KEY);
    // A new epoch: the namespace was deleted and created again (a preview) and counts from 1.
    const renumbered = last !== undefined && last.epoch !== req.epoch;
    const after = renumbered ? 0 : (last?.seq ?? 0);
    const fresh = req.events.filter((e) => e.seq > after).sort((a, b) => a.seq - b.seq);
    if (!fresh.length) return 0;
    this.ctx.storage.kv.put(DEDUPE_KEY, { epoch: req.epoch, seq: fresh[fresh.length - 1]!.seq });
    // Each event is encoded once per format, not once per subscriber.
    const encoded = { json: new Map<LiveEvent, string | Uint8Array>(), msgpack: new Map<LiveEvent, string | Uint8Array>() };
    for (const connection of this.getConnections<SubscriberState>()) {
      const pending = this.#replaying.get(connection.id);
      if (pending) {
        pending.push(...fresh);
        continue;
      }
      let state = connection.state;
      if (!state) continue;
      if (renumbered && state.through > 0) state = connection.setState({ ...state, through: 0 })!;
      for (const event of fresh) {
        if (event.seq <= state.through) continue;
        let frame = encoded[state.format].get(event);
        if (frame === undefined) encoded[state.format].set(event, (frame = encodeFrame(event, state.format)));
        try {
          connection.send(frame);
        } catch {
          break; // a socket closing under us; its close handler tidies up
        }
      }
    }
    return fresh.length;
  }

  /**
   * The namespace was deleted (an expired preview): tell every subscriber, close their sockets
   * with 4404, and drop this room's storage, so nothing of the namespace is left here.
   */
  async closeNamespace(namespace: string): Promise<number> {
    const frame: ServerFrame = { type: "namespace.deleted", namespace, at: Date.now() };
    let closed = 0;
    for (const connection of this.getConnections<SubscriberState>()) {
      try {
        this.#send(connection, frame, connection.state?.format ?? "json");
        connection.close(CLOSE_NAMESPACE_GONE, "namespace deleted");
        closed++;
      } catch {
        // already closing
      }
    }
    await this.ctx.storage.deleteAll();
    return closed;
  }
}

/**
 * The live-update protocol: room names, the events a shard publishes, the frames a `LiveRoom`
 * sends and the messages it accepts, and how frames are encoded (JSON text or MessagePack
 * binary). Shared by the room, the shard, the edge, the client and the tests.
 *
 * Every committed module version of a namespace has a namespace-wide sequence number `seq`
 * (1, 2, 3, … in commit order). Clients resume with `since=<seq>`: the room replays every event
 * with a larger `seq` from the shard's history, then continues live.
 * @module
 */
import { pack, unpack } from "./msgpack.ts";
import { LIMITS } from "./limits.ts";
import { namespaceName } from "./schemas.ts";
import type { ChangeList } from "./types.ts";
import { z } from "./zod.ts";

// ---- rooms ------------------------------------------------------------------------------------

/** The party segment of `/parties/live-room/<room>` (partyserver kebab-cases the `LIVE_ROOM` binding). */
export const LIVE_PARTY = "live-room";

export type RoomName = { kind: "namespace"; namespace: string } | { kind: "module"; namespace: string; module: string };

/** `ns:<namespace>`, or `module:<namespace>:<module path, URL-encoded>` (a room name is one URL segment). */
export function roomName(room: RoomName): string {
  return room.kind === "namespace" ? `ns:${room.namespace}` : `module:${room.namespace}:${encodeURIComponent(room.module)}`;
}

/**
 * Parse a room name as it appears in the URL. Only the canonical spelling is accepted, so one
 * room has one name (partyserver derives the object id from the raw name).
 */
export function parseRoomName(raw: string): RoomName | null {
  const ns = /^ns:([^:]+)$/.exec(raw);
  if (ns) return namespaceName.safeParse(ns[1]).success ? { kind: "namespace", namespace: ns[1]! } : null;
  const mod = /^module:([^:]+):(.+)$/.exec(raw);
  if (!mod || !namespaceName.safeParse(mod[1]).success) return null;
  let path: string;
  try {
    path = decodeURIComponent(mod[2]!);
  } catch {
    return null;
  }
  if (!path || path.length > LIMITS.maxPathLength || encodeURIComponent(path) !== mod[2]) return null;
  return { kind: "module", namespace: mod[1]!, module: path };
}

// ---- events -----------------------------------------------------------------------------------

const changeList = z.object({
  added: z.array(z.string()),
  removed: z.array(z.string()),
  changed: z.array(z.object({ name: z.string(), fields: z.array(z.string()) })),
  module: z.array(z.string()),
  moved: z.array(z.object({ name: z.string(), to: z.string() })).optional(),
  deleted: z.boolean().optional(),
  restored: z.boolean().optional(),
});

export const LIVE_EVENT_TYPES = ["module.added", "module.changed", "module.removed", "module.restored"] as const;
export type LiveEventType = (typeof LIVE_EVENT_TYPES)[number];

/** One committed module version, as published to the namespace room and the module's room. */
export const liveEventSchema = z.object({
  type: z.enum(LIVE_EVENT_TYPES),
  namespace: z.string(),
  module: z.string(),
  version: z.number().int().positive(),
  /** Namespace-wide sequence number of this version (the `since` cursor). */
  seq: z.number().int().positive(),
  changes: changeList,
  /** Commit time, ms since the epoch. */
  at: z.number(),
});
export type LiveEvent = z.infer<typeof liveEventSchema>;

/** What kind of change a version is, from its change list. */
export function liveEventType(version: number, changes: ChangeList): LiveEventType {
  if (changes.deleted) return "module.removed";
  if (changes.restored) return "module.restored";
  return version === 1 ? "module.added" : "module.changed";
}

// ---- frames -----------------------------------------------------------------------------------

export const LIVE_ERROR_CODES = ["invalid_message", "message_too_large", "replay_failed", "namespace_not_found"] as const;

/** Sent once the replay (if any) is done: from here on events are live. `seq` is the resume point. */
const readyFrame = z.object({ type: z.literal("ready"), room: z.string(), seq: z.number().int().nonnegative(), replayed: z.number().int().nonnegative() });
const errorFrame = z.object({ type: z.literal("error"), code: z.enum(LIVE_ERROR_CODES), message: z.string() });
const pongFrame = z.object({ type: z.literal("pong"), id: z.string().optional() });
/** The namespace was deleted (an expired preview); the room closes every socket with 4404 after it. */
const namespaceDeletedFrame = z.object({ type: z.literal("namespace.deleted"), namespace: z.string(), at: z.number() });

export const serverFrameSchema = z.union([liveEventSchema, readyFrame, errorFrame, pongFrame, namespaceDeletedFrame]);
export type ServerFrame = z.infer<typeof serverFrameSchema>;
export type ReadyFrame = z.infer<typeof readyFrame>;
export type ErrorFrame = z.infer<typeof errorFrame>;
export type NamespaceDeletedFrame = z.infer<typeof namespaceDeletedFrame>;

/** Messages a client may send. Anything else is answered with an error frame. */
export const clientMessageSchema = z.union([z.strictObject({ type: z.literal("ping"), id: z.string().max(64).optional() })]);
export type ClientMessage = z.infer<typeof clientMessageSchema>;

export type FrameFormat = "json" | "msgpack";

/**
 * The query of a connection URL: `format=json|msgpack` and `since=<seq>`; `_pk` is the connection
 * id partysocket adds. Anything else is refused, as the REST routes refuse unknown parameters.
 */
export const connectQuery = z.strictObject({
  format: z.enum(["json", "msgpack"]).default("json"),
  since: z
    .string()
    .regex(/^\d{1,15}$/, "since is a sequence number (a whole number ≥ 0)")
    .transform(Number)
    .optional(),
  _pk: z.string().max(128).optional(),
});

export function encodeFrame(frame: ServerFrame, format: FrameFormat): string | Uint8Array {
  return format === "msgpack" ? pack(frame) : JSON.stringify(frame);
}

/** Decode a frame either way it arrives: text is JSON, binary is MessagePack. */
export function decodeFrame(data: string | ArrayBuffer | ArrayBufferView): unknown {
  if (typeof data === "string") return JSON.parse(data);
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return unpack(bytes);
}

/** A client message, or why it is not one. Text is JSON, binary is MessagePack, whatever the format. */
export function parseClientMessage(data: string | ArrayBuffer | ArrayBufferView): { ok: true; message: ClientMessage } | { ok: false; error: ErrorFrame } {
  const size = typeof data === "string" ? data.length : data.byteLength;
  if (size > LIMITS.maxLiveMessageBytes) return { ok: false, error: { type: "error", code: "message_too_large", message: `messages are at most ${LIMITS.maxLiveMessageBytes} bytes` } };
  let value: unknown;
  try {
    value = decodeFrame(data);
  } catch {
    return { ok: false, error: { type: "error", code: "invalid_message", message: "the message is neither JSON text nor MessagePack binary" } };
  }
  const parsed = clientMessageSchema.safeParse(value);
  if (!parsed.success) return { ok: false, error: { type: "error", code: "invalid_message", message: 'unknown message; send {"type":"ping"}' } };
  return { ok: true, message: parsed.data };
}

// ---- per-connection rate limit ----------------------------------------------------------------

/** A fixed window of client messages per connection (kept in the socket's attachment). */
export interface MessageWindow {
  start: number;
  count: number;
}

/** Count one message; `allowed` is false once the window holds more than the limit. */
export function countMessage(window: MessageWindow | null, now: number): { window: MessageWindow; allowed: boolean } {
  const current = window && now - window.start < LIMITS.liveMessageWindowMs ? window : { start: now, count: 0 };
  const next = { start: current.start, count: current.count + 1 };
  return { window: next, allowed: next.count <= LIMITS.liveMessagesPerWindow };
}

/** WebSocket close code for a connection that broke the message rate limit (policy violation). */
export const CLOSE_POLICY_VIOLATION = 1008;
/** Close code of a room whose namespace does not exist (any more): reconnecting will not help. */
export const CLOSE_NAMESPACE_GONE = 4404;

/**
 * MessagePack (msgpackr) without code generation: the no-eval build and `useRecords: false` keep
 * msgpackr from generating code, which workerd forbids during requests (kriszyp/msgpackr#179).
 * Used for snapshots (codec.ts) and live-room frames (live.ts), in workerd and in Node.
 * @module
 */
import { Packr } from "msgpackr/index-no-eval";

const packr = new Packr({ useRecords: false, moreTypes: false });

export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function unpack<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

/**
 * Compact snapshots: MessagePack (msgpack.ts, without code generation) compressed with gzip;
 * gzip keeps the largest real module (~2 MB of JSON) far under the 2 MB row limit of Durable
 * Object SQLite.
 * @module
 */
import { pack, unpack } from "./msgpack.ts";

export { pack, unpack };

async function pipe(bytes: Uint8Array, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const out = new Blob([bytes]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(out).arrayBuffer());
}

export function packCompressed(value: unknown): Promise<Uint8Array> {
  return pipe(pack(value), new CompressionStream("gzip"));
}

export async function unpackCompressed<T>(bytes: Uint8Array | ArrayBuffer): Promise<T> {
  return unpack<T>(await pipe(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), new DecompressionStream("gzip")));
}

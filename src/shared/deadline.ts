/**
 * A time budget for work that may hang (a shard, Workers AI, Vectorize): the work's result, or
 * `"timeout"` when it takes longer than `ms`. The work is not cancelled (there is no way to
 * cancel an RPC); its late result or error is dropped.
 * @module
 */
export async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  // A rejection after the deadline must not become an unhandled rejection.
  work.catch(() => {});
  try {
    return await Promise.race([work, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

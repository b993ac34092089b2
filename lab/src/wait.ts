// Polling for tests and benchmarks: wait until a condition yields a value, or fail saying what for.
import { sleep } from "@ha/shared";

/**
 * Calls `fn` every `everyMs` until it returns a truthy value, which is returned. A throw counts as
 * "not yet" (a node may be restarting); the last error is quoted if time runs out.
 */
export async function waitUntil<T>(
  what: string,
  fn: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() >= deadline) break;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${lastError ? ` (last error: ${lastError})` : ""}`);
}

import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { StartLimit, DEFAULT_MAX_PARALLEL_STARTS } from "../../../src/effects/vm/start-limit.ts";

/** A start we finish by hand. */
function pending() {
  let finish!: (ok: boolean) => void;
  const done = new Promise<void>((resolve, reject) => (finish = (ok) => (ok ? resolve() : reject(new Error("start failed")))));
  return { done, finish };
}

test("start limit: at most `limit` starts at once, the rest in arrival order", async () => {
  const limit = new StartLimit(2);
  let now = 0;
  let peak = 0;
  const order: string[] = [];
  const starts = ["a", "b", "c", "d", "e"].map((name) => {
    const p = pending();
    const run = limit.run(async () => {
      now += 1;
      peak = Math.max(peak, now);
      order.push(name);
      try {
        await p.done;
      } finally {
        now -= 1;
      }
    });
    return { name, ...p, run };
  });
  await sleep(1);
  assert.deepEqual(order, ["a", "b"]);
  assert.deepEqual([limit.running, limit.queued], [2, 3]);
  starts[1]!.finish(true);
  await sleep(1);
  assert.deepEqual(order, ["a", "b", "c"]);
  // A failed start frees its slot too.
  starts[0]!.finish(false);
  await assert.rejects(starts[0]!.run, /start failed/);
  await sleep(1);
  assert.deepEqual(order, ["a", "b", "c", "d"]);
  for (const s of starts.slice(2)) s.finish(true);
  await Promise.all(starts.slice(1).map((s) => s.run));
  assert.equal(peak, 2);
  assert.deepEqual([limit.running, limit.queued], [0, 0]);
});

test("start limit: a slow start does not hold up anything that is not a start", async () => {
  const limit = new StartLimit(1);
  const slow = pending();
  const slowRun = limit.run(() => slow.done);
  const queuedStart = limit.run(async () => "second start");
  // A stop (or any other VM action) runs outside the limit: it completes while the slot is taken.
  const stop = (async () => "stopped")();
  assert.equal(await stop, "stopped");
  assert.equal(limit.queued, 1, "the second start waits for the slot");
  slow.finish(true);
  await slowRun;
  assert.equal(await queuedStart, "second start");
});

test("start limit: default and bad settings", () => {
  assert.equal(new StartLimit().limit, DEFAULT_MAX_PARALLEL_STARTS);
  assert.throws(() => new StartLimit(0), /maxParallelStarts must be an integer >= 1, got 0/);
  assert.throws(() => new StartLimit(1.5), /integer >= 1/);
});

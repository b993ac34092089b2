import { test } from "node:test";
import assert from "node:assert/strict";
import { coalesce } from "../src/async/coalesce.ts";

/** A job whose runs finish when the test says so. */
function controlledJob() {
  const runs: Array<{ finish: (err?: Error) => void }> = [];
  let active = 0;
  let maxActive = 0;
  const job = () =>
    new Promise<void>((resolve, reject) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      runs.push({ finish: (err) => (active -= 1, err ? reject(err) : resolve()) });
    });
  return { job, runs, maxActive: () => maxActive };
}
const tick = () => new Promise((r) => setImmediate(r));

test("a burst of calls during a run costs one more run, never two at once", async () => {
  const c = controlledJob();
  const report = coalesce(c.job);
  const first = report();
  const burst = [report(), report(), report()];
  await tick();
  assert.equal(c.runs.length, 1, "the burst waits for the running job");
  c.runs[0]!.finish();
  await first;
  await tick();
  assert.equal(c.runs.length, 2, "one more run for the whole burst");
  assert.equal(new Set(burst).size, 1, "the burst shares it");
  c.runs[1]!.finish();
  await Promise.all(burst);
  assert.equal(c.maxActive(), 1);
  // Idle again: the next call runs at once.
  const later = report();
  await tick();
  assert.equal(c.runs.length, 3);
  c.runs[2]!.finish();
  await later;
});

test("a failed run fails its callers only; the queued run still happens", async () => {
  const c = controlledJob();
  const report = coalesce(c.job);
  const first = report();
  const queued = report();
  c.runs[0]!.finish(new Error("listing failed"));
  await assert.rejects(first, /listing failed/);
  await tick();
  assert.equal(c.runs.length, 2);
  c.runs[1]!.finish();
  await queued;
});

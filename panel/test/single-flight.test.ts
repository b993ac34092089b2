// Identical list reads in progress share one result; a write (invalidate) or completion ends sharing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SingleFlight } from "../server/single-flight.ts";

test("single flight: concurrent identical reads share one computation; nothing is kept afterwards", async () => {
  const f = new SingleFlight();
  let computed = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const compute = async () => (computed++, await gate, { n: computed });
  const a = f.json("k", compute);
  const b = f.json("k", compute);
  const other = f.json("other", async () => ({ other: true }));
  release();
  assert.deepEqual(await Promise.all([a, b, other]), ['{"n":1}', '{"n":1}', '{"other":true}']);
  assert.equal(computed, 1);
  assert.equal(await f.json("k", compute), '{"n":2}', "a later read computes again");
});

test("single flight: a read started before a write is not handed to requests after it", async () => {
  const f = new SingleFlight();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const before = f.json("k", async () => (await gate, "read before the write"));
  f.invalidate(); // a PATCH went through
  const after = f.json("k", async () => "read after the write");
  release();
  assert.equal(await before, '"read before the write"');
  assert.equal(await after, '"read after the write"', "a fresh read, not the one in progress");
});

test("single flight: a failed read fails its joiners and is not reused", async () => {
  const f = new SingleFlight();
  await assert.rejects(Promise.all([f.json("k", async () => Promise.reject(new Error("db down"))), f.json("k", async () => 1)]), /db down/);
  assert.equal(await f.json("k", async () => 2), "2");
});

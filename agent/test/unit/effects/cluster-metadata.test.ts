// The ownership check before a VM start, on a real directory (the shared storage's layout).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClusterMetadata } from "../../../src/effects/cluster-metadata.ts";

function withMetadata(fn: (m: ClusterMetadata, dir: string) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "ha-meta-"));
    try {
      await fn(new ClusterMetadata(dir), dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test("a start waits for the master's ownership write that is still on its way", withMetadata(async (m) => {
  await m.setOwner({ vm: "web1", node: null, epoch: 0 });
  setTimeout(() => void m.setOwner({ vm: "web1", node: 2, epoch: 1 }), 150);
  await m.assertOwned("web1", 2, 1, 2000);
}));

test("an older record that never catches up fails after the wait, naming what it says", withMetadata(async (m) => {
  await m.setOwner({ vm: "web1", node: 1, epoch: 3 });
  await assert.rejects(m.assertOwned("web1", 2, 4, 200), /the ownership record says n1 epoch 3, not n2 epoch 4/);
}));

test("a record naming another node at the same or a newer epoch fails at once", withMetadata(async (m) => {
  await m.setOwner({ vm: "web1", node: 3, epoch: 5 });
  const t0 = Date.now();
  await assert.rejects(m.assertOwned("web1", 2, 5, 5000), /says n3 epoch 5, not n2 epoch 5/);
  await assert.rejects(m.assertOwned("web1", 2, 4, 5000), /says n3 epoch 5, not n2 epoch 4/);
  assert.ok(Date.now() - t0 < 1000, "no waiting for a record that cannot change in our favour");
}));

test("createVm writes the record vm define writes, but never over an existing one (EEXIST), leaving no temp file", withMetadata(async (m, dir) => {
  const rec = { definition: { name: "p1", ramMb: 256, vcpus: 1, disk: { kind: "network" as const, path: "/s/p1.disk" }, ha: true }, restartPriority: 2 };
  await m.createVm(rec);
  assert.deepEqual(await m.readRecords(), [{ ...rec, desired: "running" }]);
  await assert.rejects(m.createVm({ ...rec, definition: { ...rec.definition, ramMb: 4096 } }), (e: NodeJS.ErrnoException) => e.code === "EEXIST");
  assert.equal((await m.definition("p1"))?.ramMb, 256, "the first record is kept");
  await assert.rejects(m.createVm({ ...rec, definition: { ...rec.definition, name: "9bad" } }), /must be a letter/);
  assert.deepEqual(readdirSync(join(dir, "cluster", "vms")), ["p1.json"]);
}));

// The pure part of the master's VM sync (effects/db/vm-sync.ts): DB `vms` <-> shared-storage records.
import { test } from "node:test";
import assert from "node:assert/strict";
import { storageVmOf, vmSyncDecisions, type DbVm, type StorageVm } from "../../src/effects/db/vm-sync.ts";

const vm = (name: string, o: Partial<StorageVm> = {}): StorageVm => ({
  name, ramMb: 256, vcpus: 1, diskLocation: `/run/ha-storage/vms/${name}.disk`, storage: "network", ha: true, restartPriority: 0, owner: 1, desired: "running", ...o,
});
const row = (o: Partial<DbVm> = {}): DbVm => ({ ha: true, restartPriority: 0, nodeid: 1, state: "running", ...o });

/** Runs a pass and, like VmSync after successful writes, remembers what was applied. */
function pass(storage: StorageVm[], db: Map<string, DbVm>, applied: Map<string, string>) {
  const plan = vmSyncDecisions(storage, db, applied);
  for (const [k, v] of plan.appliedAfter) applied.set(k, v);
  return plan;
}

test("vm sync: new VMs are inserted; a quiet pass does nothing", () => {
  const applied = new Map<string, string>();
  let p = pass([vm("a"), vm("b", { owner: null })], new Map(), applied);
  assert.deepEqual(p.insert.map((v) => v.name), ["a", "b"]);
  assert.deepEqual([p.copyToDb, p.writeToStorage, p.live], [[], [], []]);
  p = pass([vm("a"), vm("b", { owner: null })], new Map([["a", row()], ["b", row({ nodeid: null, state: "stopped" })]]), applied);
  assert.deepEqual([p.insert, p.copyToDb, p.writeToStorage, p.live], [[], [], [], []]);
});

test("vm sync: an admin's edit in the DB goes to the storage, is not reverted, and sticks once applied", () => {
  const applied = new Map<string, string>();
  pass([vm("a")], new Map([["a", row()]]), applied);
  // The admin turns HA off and sets priority 5.
  let p = pass([vm("a")], new Map([["a", row({ ha: false, restartPriority: 5 })]]), applied);
  assert.deepEqual(p.writeToStorage, [{ name: "a", ha: false, restartPriority: 5 }]);
  assert.deepEqual(p.copyToDb, [], "the storage's old value is not copied back");
  // The record now has it: quiet.
  p = pass([vm("a", { ha: false, restartPriority: 5 })], new Map([["a", row({ ha: false, restartPriority: 5 })]]), applied);
  assert.deepEqual([p.writeToStorage, p.copyToDb], [[], []]);
});

test("vm sync: a failed storage write is retried at the next pass (applied is not advanced)", () => {
  const applied = new Map<string, string>();
  pass([vm("a")], new Map([["a", row()]]), applied);
  const edited = new Map([["a", row({ ha: false })]]);
  const first = vmSyncDecisions([vm("a")], edited, applied); // the write fails: nothing committed
  assert.equal(first.writeToStorage.length, 1);
  const again = vmSyncDecisions([vm("a")], edited, applied);
  assert.deepEqual(again.writeToStorage, [{ name: "a", ha: false, restartPriority: 0 }]);
});

test("vm sync: a change made outside the panel (record rewritten) is copied into the DB", () => {
  const applied = new Map<string, string>();
  pass([vm("a")], new Map([["a", row()]]), applied);
  const p = pass([vm("a", { restartPriority: 9 })], new Map([["a", row()]]), applied);
  assert.deepEqual(p.copyToDb.map((v) => [v.name, v.restartPriority]), [["a", 9]]);
  assert.deepEqual(p.writeToStorage, []);
});

test("vm sync: a new master treats a DB row that differs from the record as a pending admin edit", () => {
  const p = vmSyncDecisions([vm("a")], new Map([["a", row({ ha: false })]]), new Map());
  assert.deepEqual(p.writeToStorage, [{ name: "a", ha: false, restartPriority: 0 }]);
});

test("vm sync: owner and state changes are refreshed; VMs only in the DB are left alone", () => {
  const applied = new Map<string, string>();
  const p = pass([vm("a", { owner: 3 }), vm("b", { owner: null })], new Map([["a", row()], ["b", row()], ["gone", row()]]), applied);
  assert.deepEqual(p.live, [
    { name: "a", nodeid: 3, state: "running" },
    { name: "b", nodeid: null, state: "stopped" },
  ]);
  assert.deepEqual([p.insert, p.copyToDb, p.writeToStorage], [[], [], []]);
});

test("vm sync: a record as stored becomes a StorageVm (ha defaults to false)", () => {
  const s = storageVmOf({ definition: { name: "x", ramMb: 512, vcpus: 2, disk: { kind: "local", path: "/var/x.qcow2" } }, restartPriority: 3, desired: "stopped" }, null);
  assert.deepEqual(s, { name: "x", ramMb: 512, vcpus: 2, diskLocation: "/var/x.qcow2", storage: "local", ha: false, restartPriority: 3, owner: null, desired: "stopped" });
});

// The pure part of the master's VM sync (effects/db/vm-sync.ts): DB `vms` <-> shared-storage records.
import { test } from "node:test";
import assert from "node:assert/strict";
import { recordOfRow, storageVmOf, vmSyncDecisions, type DbVm, type StorageVm } from "../../src/effects/db/vm-sync.ts";

const vm = (name: string, o: Partial<StorageVm> = {}): StorageVm => ({
  name, ramMb: 256, vcpus: 1, diskLocation: `/run/ha-storage/vms/${name}.disk`, storage: "network", ip: null, ha: true, restartPriority: 0, owner: 1, desired: "running", ...o,
});
const row = (o: Partial<DbVm> = {}): DbVm => ({
  ha: true, restartPriority: 0, nodeid: 1, state: "running", definitionState: "defined", ramMb: 256, vcpus: 1, diskLocation: "/run/ha-storage/vms/a.disk", storage: "network", ip: null, ...o,
});
/** A row as POST /api/vms inserts it: pending, not placed. */
const pending = (name: string, o: Partial<DbVm> = {}): DbVm =>
  row({ definitionState: "pending", nodeid: null, state: "stopped", diskLocation: `/run/ha-storage/vms/${name}.disk`, ...o });
const nothingElse = (p: ReturnType<typeof vmSyncDecisions>) => [p.insert, p.copyToDb, p.writeToStorage, p.live];

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
  assert.deepEqual([p.define, p.markDefined, p.fail], [[], [], []]);
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
  assert.deepEqual(s, { name: "x", ramMb: 512, vcpus: 2, diskLocation: "/var/x.qcow2", storage: "local", ip: null, ha: false, restartPriority: 3, owner: null, desired: "stopped" });
  assert.equal(storageVmOf({ definition: { name: "y", ramMb: 1, vcpus: 1, disk: { kind: "network", path: "/s" }, ip: "10.0.0.9" }, restartPriority: 0, desired: "running" }, 2).ip, "10.0.0.9");
});

// ---- VMs created in the panel (definition_state 'pending')

test("vm sync: a pending row without a record becomes the record `vm define` writes", () => {
  const p = vmSyncDecisions([], new Map([["web9", pending("web9", { ramMb: 512, vcpus: 2, ip: "172.31.224.190", ha: true, restartPriority: 4 })]]), new Map());
  assert.deepEqual(p.define, [
    {
      definition: { name: "web9", ramMb: 512, vcpus: 2, disk: { kind: "network", path: "/run/ha-storage/vms/web9.disk" }, ip: "172.31.224.190", ha: true },
      restartPriority: 4,
      desired: "running",
    },
  ]);
  assert.deepEqual([p.markDefined, p.fail], [[], []]);
  assert.deepEqual(nothingElse(p), [[], [], [], []], "a pending row is neither inserted nor refreshed");
  // No address: the record has none (not an empty string).
  const q = vmSyncDecisions([], new Map([["v", pending("v")]]), new Map());
  assert.equal("ip" in q.define[0]!.definition, false);
});

test("vm sync: pending rows, table of cases", () => {
  const cases: Array<{ what: string; storage: StorageVm[]; row: DbVm; define: number; markDefined: string[]; fail: RegExp | null }> = [
    { what: "no record yet", storage: [], row: pending("v"), define: 1, markDefined: [], fail: null },
    { what: "our record is there (the row's update was lost)", storage: [vm("v", { owner: null })], row: pending("v"), define: 0, markDefined: ["v"], fail: null },
    { what: "same VM defined with the CLI, other HA setting", storage: [vm("v", { ha: false })], row: pending("v"), define: 0, markDefined: ["v"], fail: null },
    { what: "the name is taken on the storage by another VM", storage: [vm("v", { ramMb: 4096 })], row: pending("v"), define: 0, markDefined: [], fail: /already defined on the shared storage with a different definition \(4096 MB/ },
    { what: "another address", storage: [vm("v", { ip: "10.0.0.1" })], row: pending("v", { ip: "10.0.0.2" }), define: 0, markDefined: [], fail: /different definition/ },
    { what: "a name the record schema refuses", storage: [], row: pending("9lives"), define: 0, markDefined: [], fail: /definition\.name: must be a letter/ },
    { what: "too much RAM for a record", storage: [], row: pending("big", { ramMb: 32 * 1024 * 1024 }), define: 0, markDefined: [], fail: /definition\.ramMb/ },
    { what: "a failed row is left alone", storage: [], row: pending("v", { definitionState: "failed" }), define: 0, markDefined: [], fail: null },
    { what: "a defined row without a record is left alone", storage: [], row: pending("v", { definitionState: "defined" }), define: 0, markDefined: [], fail: null },
  ];
  for (const c of cases) {
    const name = c.storage[0]?.name ?? (c.row.diskLocation.match(/vms\/(.+)\.disk$/)?.[1] as string);
    const p = vmSyncDecisions(c.storage, new Map([[name, c.row]]), new Map());
    assert.equal(p.define.length, c.define, c.what);
    assert.deepEqual(p.markDefined, c.markDefined, c.what);
    if (c.fail) {
      assert.equal(p.fail.length, 1, c.what);
      assert.match(p.fail[0]!.reason, c.fail, c.what);
    } else assert.deepEqual(p.fail, [], c.what);
  }
});

test("vm sync: a record whose name belongs to a failed panel row is not synced into that row", () => {
  const p = vmSyncDecisions([vm("v", { owner: 2 })], new Map([["v", pending("v", { definitionState: "failed" })]]), new Map());
  assert.deepEqual(nothingElse(p), [[], [], [], []]);
  assert.equal(p.appliedAfter.size, 0);
});

test("vm sync: once marked defined, a pending row gets its owner in the same pass; a panel HA edit made meanwhile wins", () => {
  const p = vmSyncDecisions([vm("v", { owner: 3, ha: true })], new Map([["v", pending("v", { ha: false })]]), new Map());
  assert.deepEqual(p.markDefined, ["v"]);
  assert.deepEqual(p.live, [{ name: "v", nodeid: 3, state: "running" }]);
  assert.deepEqual(p.writeToStorage, [{ name: "v", ha: false, restartPriority: 0 }]);
});

test("vm sync: recordOfRow maps a local-disk row without HA", () => {
  const r = recordOfRow("scratch", row({ storage: "local", diskLocation: "/var/lib/vms/scratch.img", ha: false }));
  assert.ok(r.ok);
  assert.deepEqual(r.record.definition.disk, { kind: "local", path: "/var/lib/vms/scratch.img" });
  assert.equal(r.record.definition.ha, false);
});

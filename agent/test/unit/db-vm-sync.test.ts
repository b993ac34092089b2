// The pure part of the master's VM sync (effects/db/vm-sync.ts): DB `vms` <-> shared-storage records.
import { test } from "node:test";
import assert from "node:assert/strict";
import { clusterFactsOf, recordOfRow, storageVmOf, vmSyncDecisions, type ClusterFacts, type DbVm, type OwnerRecord, type StorageVm } from "../../src/effects/db/vm-sync.ts";

const vm = (name: string, o: Partial<StorageVm> = {}): StorageVm => ({
  name, ramMb: 256, vcpus: 1, diskLocation: `/run/ha-storage/vms/${name}.disk`, storage: "network", ip: null, ha: true, restartPriority: 0, owner: 1, desired: "running", ...o,
});
const row = (o: Partial<DbVm> = {}): DbVm => ({
  ha: true, restartPriority: 0, nodeid: 1, state: "running", definitionState: "defined", ramMb: 256, vcpus: 1, diskLocation: "/run/ha-storage/vms/a.disk", storage: "network", ip: null, requestedNodeid: null, ...o,
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
  assert.deepEqual(p.define.map((d) => d.record), [
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
  assert.equal("ip" in q.define[0]!.record.definition, false);
  assert.deepEqual(q.define.map((d) => [d.owner, d.note]), [[null, null]], "no node requested: no owner written, no note");
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

// ---- A node requested in the panel (requested_nodeid)

/** The master's view (NodeView.nodes / .vms) of a 3-node cluster: n1 master, 4096 MB each. */
const view = (o: { nodes?: Partial<Record<number, Partial<ClusterFacts["nodes"][number]>>>; vms?: Array<{ vm: string; owner: number | null }> } = {}): ClusterFacts =>
  clusterFactsOf({
    nodes: [1, 2, 3].map((id) => ({ nodeid: id, addr: undefined, prio: 10, status: (id === 1 ? "leader" : "member") as "leader" | "member", isMaster: id === 1, reason: "", ramMb: 4096, reserve: false, maintenance: false, ...o.nodes?.[id] })),
    vms: (o.vms ?? []).map((v) => ({ ...v, epoch: 1, local: null, note: "" })),
  });

test("vm sync: requested node, table of cases (owner written first when the node can take it, else a note)", () => {
  const cases: Array<{ what: string; cluster: ClusterFacts; storage?: StorageVm[]; ram?: number; requested: number | null; owners?: Array<[string, OwnerRecord]>; owner: number | null; note: RegExp | null }> = [
    { what: "a good member with room", cluster: view(), requested: 3, owner: 3, note: null },
    { what: "the master itself", cluster: view(), requested: 1, owner: 1, note: null },
    { what: "no node requested: placement chooses, no note", cluster: view(), requested: null, owner: null, note: null },
    { what: "in maintenance", cluster: view({ nodes: { 3: { maintenance: true } } }), requested: 3, owner: null, note: /^n3 could not take it \(in maintenance\): placed by the cluster$/ },
    { what: "offline", cluster: view({ nodes: { 3: { status: "offline" } } }), requested: 3, owner: null, note: /^n3 could not take it \(offline\): placed by the cluster$/ },
    { what: "a reserve node named explicitly", cluster: view({ nodes: { 3: { reserve: true } } }), requested: 3, owner: 3, note: null },
    {
      what: "not enough RAM left: what its VMs take, by the core's owners and the records' RAM",
      cluster: view({ vms: [{ vm: "big", owner: 3 }] }),
      storage: [vm("big", { ramMb: 3900, owner: 3 })],
      requested: 3,
      owner: null,
      note: /^n3 could not take it \(needs 256 MB, 196 MB free\): placed by the cluster$/,
    },
    {
      what: "a VM desired stopped takes no RAM (as in placement)",
      cluster: view({ vms: [{ vm: "big", owner: 3 }] }),
      storage: [vm("big", { ramMb: 3900, owner: 3, desired: "stopped" })],
      requested: 3,
      owner: 3,
      note: null,
    },
    { what: "the master's view does not know it", cluster: view(), requested: 7, owner: null, note: /^n7 could not take it \(not a node of the cluster\)/ },
    { what: "no view (not master yet): never an owner", cluster: { nodes: [], owners: [] }, requested: 3, owner: null, note: /n3 could not take it/ },
    // Crash between the owner and the record: the record only, no second owner, no note.
    { what: "our owner is already there (the agent died before the record)", cluster: view({ nodes: { 3: { maintenance: true } } }), requested: 3, owners: [["v", { node: 3, epoch: 1 }]], owner: null, note: null },
    {
      what: "a leftover owner for another node is kept, with a note",
      cluster: view(),
      requested: 3,
      owners: [["v", { node: 2, epoch: 4 }]],
      owner: null,
      note: /^an ownership record was already on the shared storage \(n2, epoch 4\): the cluster keeps it \(n3 was requested\)$/,
    },
    { what: "a leftover owner without a request", cluster: view(), requested: null, owners: [["v", { node: 2, epoch: 1 }]], owner: null, note: /already on the shared storage \(n2, epoch 1\): the cluster keeps it$/ },
  ];
  for (const c of cases) {
    const db = new Map([["v", pending("v", { requestedNodeid: c.requested, ramMb: c.ram ?? 256 })]]);
    for (const s of c.storage ?? []) db.set(s.name, row({ ramMb: s.ramMb, nodeid: s.owner, diskLocation: s.diskLocation }));
    const p = vmSyncDecisions(c.storage ?? [], db, new Map(), c.cluster, new Map(c.owners ?? []));
    assert.equal(p.define.length, 1, c.what);
    assert.equal(p.define[0]!.record.definition.name, "v", c.what);
    assert.equal(p.define[0]!.owner, c.owner, c.what);
    if (c.note) assert.match(p.define[0]!.note ?? "", c.note, c.what);
    else assert.equal(p.define[0]!.note, null, c.what);
    assert.deepEqual(p.orphanOwners, [], c.what);
  }
});

test("vm sync: two VMs requesting the same node in one pass: the second sees the first's RAM", () => {
  const db = new Map([
    ["a", pending("a", { requestedNodeid: 3, ramMb: 3000 })],
    ["b", pending("b", { requestedNodeid: 3, ramMb: 1000 })],
    ["c", pending("c", { requestedNodeid: 3, ramMb: 1000 })],
  ]);
  const p = vmSyncDecisions([], db, new Map(), view());
  assert.deepEqual(p.define.map((d) => [d.record.definition.name, d.owner, d.note]), [
    ["a", 3, null],
    ["b", 3, null],
    ["c", null, "n3 could not take it (needs 1000 MB, 96 MB free): placed by the cluster"],
  ]);
});

test("vm sync: a refused definition never gets an owner; a record already there is not given one either", () => {
  const p = vmSyncDecisions([vm("w", { owner: 2 })], new Map([["9lives", pending("9lives", { requestedNodeid: 3 })], ["w", pending("w", { requestedNodeid: 3, diskLocation: "/run/ha-storage/vms/w.disk" })]]), new Map(), view());
  assert.deepEqual(p.define, []);
  assert.deepEqual(p.fail.map((f) => f.name), ["9lives"]);
  assert.deepEqual(p.markDefined, ["w"]);
});

test("vm sync: an ownership record without a VM record or a pending row is reported, never for a pending row or a defined VM", () => {
  const owners = new Map<string, OwnerRecord>([
    ["ghost", { node: 2, epoch: 3 }],
    ["v", { node: 3, epoch: 1 }],
    ["a", { node: 1, epoch: 2 }],
    ["gone", { node: null, epoch: 5 }],
  ]);
  const db = new Map([["v", pending("v", { requestedNodeid: 3 })], ["a", row()], ["gone", row({ definitionState: "failed" })]]);
  const p = vmSyncDecisions([vm("a")], db, new Map(), view(), owners);
  assert.deepEqual(p.orphanOwners, [
    { name: "ghost", node: 2, epoch: 3 },
    { name: "gone", node: null, epoch: 5 },
  ]);
  assert.deepEqual(p.define.map((d) => [d.record.definition.name, d.owner, d.note]), [["v", null, null]], "the pending row's own owner: only the record is written");
});

// ---- VmSync with the real ClusterMetadata (a temp dir) and a fake DB connection

/** A `vms` table in memory, answering the statements VmSync sends. */
function fakeDb(rowsByName: Map<string, Record<string, unknown>>) {
  const conn = {
    async query(q: { sql: string }, params: unknown[] = []) {
      const sql = q.sql;
      if (sql.startsWith("SELECT @@global.read_only")) return [[{ ro: 0 }]];
      if (sql.startsWith("SELECT name")) return [[...rowsByName.values()]];
      if (sql.includes("SET definition_state")) {
        const [state, error, name] = params as [string, string | null, string];
        const r = rowsByName.get(name);
        if (r && r["definition_state"] === "pending") Object.assign(r, { definition_state: state, definition_error: error });
        return [{}];
      }
      if (sql.includes("SET nodeid")) {
        const [nodeid, state, name] = params as [number | null, string, string];
        Object.assign(rowsByName.get(name) ?? {}, { nodeid, state });
        return [{}];
      }
      return [{}];
    },
    async end() {},
  };
  return async () => conn as never;
}

test("VmSync: the owner is written before the record; a pass that died in between is finished by the next one", async () => {
  const { mkdtemp, rm, readFile } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { ClusterMetadata } = await import("../../src/effects/cluster-metadata.ts");
  const { VmSync } = await import("../../src/effects/db/vm-sync.ts");
  const dir = await mkdtemp(join(tmpdir(), "vm-sync-"));
  try {
    const meta = new ClusterMetadata(dir);
    const calls: string[] = [];
    let dieBeforeRecord = true;
    const store = {
      readRecords: () => meta.readRecords(),
      owners: () => meta.owners(),
      setHaSettings: meta.setHaSettings.bind(meta),
      setOwner: async (o: Parameters<typeof meta.setOwner>[0]) => {
        calls.push(`owner ${o.vm} n${o.node} e${o.epoch}`);
        await meta.setOwner(o);
      },
      createVm: async (r: Parameters<typeof meta.createVm>[0]) => {
        calls.push(`record ${r.definition.name}`);
        if (dieBeforeRecord) throw new Error("agent killed"); // as if the process died here
        await meta.createVm(r);
      },
    };
    const db = new Map<string, Record<string, unknown>>([
      ["p1", { name: "p1", ha: 1, restart_priority: 0, nodeid: null, state: "stopped", definition_state: "pending", ram_mb: 256, vcpus: 1, disk_location: "/s/p1.disk", storage: "network", ip: null, requested_nodeid: 3 }],
    ]);
    const sync = new VmSync(fakeDb(db), "ha", store);
    await sync.pass(view());
    assert.deepEqual(calls, ["owner p1 n3 e1", "record p1"], "owner first");
    assert.equal(db.get("p1")!["definition_state"], "pending");
    assert.deepEqual(await meta.owner("p1"), { vm: "p1", node: 3, epoch: 1 });

    // The next pass (same or new master): n3 went into maintenance meanwhile; the owner stays, the record is written.
    dieBeforeRecord = false;
    calls.length = 0;
    const r = await new VmSync(fakeDb(db), "ha", store).pass(view({ nodes: { 3: { maintenance: true } } }));
    assert.deepEqual(calls, ["record p1"], "no second owner");
    assert.deepEqual(r.defined, [{ name: "p1", owner: null, note: null }]);
    assert.equal(db.get("p1")!["definition_state"], "defined");
    assert.equal(db.get("p1")!["definition_error"], null);
    assert.equal(JSON.parse(await readFile(join(dir, "cluster", "vms", "p1.json"), "utf8")).definition.name, "p1");
    assert.deepEqual(r.warnings, []);

    // A node in maintenance: no owner, the row says why.
    db.set("p2", { ...db.get("p1")!, name: "p2", disk_location: "/s/p2.disk", definition_state: "pending", definition_error: null, requested_nodeid: 3 });
    calls.length = 0;
    const r2 = await sync.pass(view({ nodes: { 3: { maintenance: true } } }));
    assert.deepEqual(calls, ["record p2"]);
    assert.deepEqual(r2.defined, [{ name: "p2", owner: null, note: "n3 could not take it (in maintenance): placed by the cluster" }]);
    assert.equal(db.get("p2")!["definition_state"], "defined");
    assert.equal(db.get("p2")!["definition_error"], "n3 could not take it (in maintenance): placed by the cluster");
    assert.equal(await meta.owner("p2"), null);

    // An owner record whose row was deleted by hand: logged once.
    await meta.setOwner({ vm: "ghost", node: 2, epoch: 1 });
    const w1 = await sync.pass(view());
    const w2 = await sync.pass(view());
    assert.equal(w1.warnings.length, 1);
    assert.match(w1.warnings[0]!, /ownership record for ghost \(n2, epoch 1\) but no VM record/);
    assert.deepEqual(w2.warnings, []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

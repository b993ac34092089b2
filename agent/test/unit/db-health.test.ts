// The database state shown by `corolistener -l` and the disk guard's decision (pure).
import { test } from "node:test";
import assert from "node:assert/strict";
import { describeNode, diskAction, formatDbHealth } from "../../src/effects/db/health.ts";
import { parseGtidPos } from "../../src/effects/db/gtid.ts";
import type { DbNodeState } from "../../src/effects/db/state.ts";
import { renderNodeList } from "../../src/cli/node-list.ts";
import { nodeListFromView } from "../../src/cli/corolistener-lib.ts";
import type { NodeView } from "../../src/core/types.ts";

const pos = parseGtidPos("0-1-42");
const state = (o: Partial<DbNodeState> = {}): DbNodeState => ({ readOnly: true, binlogPos: pos, slavePos: pos, pos, replica: null, ...o });
const replica = (o: Partial<NonNullable<DbNodeState["replica"]>> = {}): NonNullable<DbNodeState["replica"]> => ({
  masterHost: "10.0.0.1", ioPos: pos, ioRunning: "Yes", sqlRunning: true, ioErrno: 0, ioError: "", sqlErrno: 0, sqlError: "", lagSeconds: 0, ...o,
});

test("roles: a writable node is the primary, a replicating one a replica, replication off is 'off'", () => {
  assert.deepEqual(describeNode(1, true, { kind: "state", state: state({ readOnly: false }) }), { nodeid: 1, reachable: true, role: "primary", replication: "none", gtid: "0-1-42" });
  const r = describeNode(2, true, { kind: "state", state: state({ replica: replica({ lagSeconds: 3 }) }) });
  assert.deepEqual([r.role, r.replication, r.lagSeconds, r.source], ["replica", "running", 3, "10.0.0.1"]);
  assert.deepEqual(describeNode(4, false, { kind: "state", state: state({ pos: new Map(), binlogPos: new Map(), slavePos: new Map() }) }), { nodeid: 4, reachable: true, role: "off", replication: "none", gtid: "" });
  assert.equal(describeNode(3, true, { kind: "state", state: state() }).role, "read-only", "read-only and not (yet) replicating");
});

test("replication problems carry their cause", () => {
  const io = describeNode(2, true, { kind: "state", state: state({ replica: replica({ ioRunning: "No", ioErrno: 1236, ioError: "diverged" }) }) });
  assert.deepEqual([io.replication, io.error], ["error", "IO error 1236: diverged"]);
  const sql = describeNode(2, true, { kind: "state", state: state({ replica: replica({ sqlRunning: false, sqlErrno: 1062, sqlError: "Duplicate entry" }) }) });
  assert.deepEqual([sql.replication, sql.error], ["error", "SQL error 1062: Duplicate entry"]);
  assert.equal(describeNode(2, true, { kind: "state", state: state({ replica: replica({ ioRunning: "Connecting" }) }) }).replication, "connecting");
  // Still retrying after a connection error (the primary restarts): transient, not an error.
  const retrying = describeNode(2, true, { kind: "state", state: state({ replica: replica({ ioRunning: "Connecting", ioErrno: 2003, ioError: "Can't connect" }) }) });
  assert.deepEqual([retrying.replication, retrying.error], ["connecting", "IO error 2003: Can't connect"]);
  assert.equal(describeNode(2, true, { kind: "state", state: state({ replica: replica({ ioRunning: "No" }) }) }).replication, "stopped");
  const full = describeNode(2, true, { kind: "disk-full", readOnly: true, gtid: "0-1-42" });
  assert.deepEqual([full.role, full.replication], ["replica", "disk-full"]);
  assert.match(full.error!, /disk full/);
  assert.deepEqual(describeNode(3, true, { kind: "unreachable", error: "no answer within 1000 ms" }), { nodeid: 3, reachable: false, role: "unknown", replication: "none", error: "no answer within 1000 ms" });
});

test("one short cell per node", () => {
  const cell = (p: Parameters<typeof describeNode>[2], on = true) => formatDbHealth(describeNode(1, on, p));
  assert.equal(cell({ kind: "state", state: state({ readOnly: false }) }), "primary");
  assert.equal(cell({ kind: "state", state: state({ replica: replica({ lagSeconds: 0 }) }) }), "replica running lag 0s");
  assert.equal(cell({ kind: "state", state: state({ replica: replica({ lagSeconds: null }) }) }), "replica running");
  assert.equal(cell({ kind: "state", state: state({ replica: replica({ ioRunning: "No", ioErrno: 1236, ioError: "diverged" }) }) }), "replica error: IO error 1236: diverged");
  assert.equal(cell({ kind: "state", state: state() }, false), "off");
  assert.equal(cell({ kind: "unreachable", error: "refused" }), "unreachable (refused)");
  assert.equal(formatDbHealth(undefined), "-");
});

test("disk guard: pause below the minimum, resume only with half as much again free", () => {
  assert.equal(diskAction(100, 512, false), "pause");
  assert.equal(diskAction(600, 512, false), null);
  assert.equal(diskAction(600, 512, true), null, "no flapping just above the threshold");
  assert.equal(diskAction(768, 512, true), "resume");
  assert.equal(diskAction(0, 0, false), null, "minimum 0 disables the guard");
});

const view = {
  nodes: [
    { nodeid: 1, addr: "10.0.0.1", status: "member", isMaster: true, prio: 100 },
    { nodeid: 2, addr: "10.0.0.2", status: "member", isMaster: false, prio: 50 },
  ],
} as unknown as NodeView;

test("-l without a database reading: rows and table exactly as before", () => {
  const rows = nodeListFromView(view);
  assert.deepEqual(rows[0], { id: 1, ip: "10.0.0.1", status: "member", master: true, prio: 100 });
  assert.doesNotMatch(renderNodeList(rows), /Database/);
});

test("-l with the daemon's database reading: a Database column, and a db object per row in JSON", () => {
  const db = {
    checkedAt: 0,
    nodes: [
      describeNode(1, true, { kind: "state", state: state({ readOnly: false }) }),
      describeNode(2, true, { kind: "state", state: state({ replica: replica({ lagSeconds: 1 }) }) }),
    ],
  };
  const rows = nodeListFromView(view, db);
  // Backward compatible: the old fields are unchanged, `db` is added.
  assert.deepEqual({ ...rows[1], db: undefined }, { id: 2, ip: "10.0.0.2", status: "member", master: false, prio: 50, db: undefined });
  assert.deepEqual([rows[1]!.db!.role, rows[1]!.db!.replication, rows[1]!.db!.lagSeconds, rows[1]!.db!.gtid], ["replica", "running", 1, "0-1-42"]);
  assert.equal(
    renderNodeList(rows),
    [
      "  Id          Ip    Status    Master/Slave    Priority    Database",
      "   1    10.0.0.1    member               M         100    primary",
      "   2    10.0.0.2    member               S          50    replica running lag 1s",
      "",
    ].join("\n"),
  );
});

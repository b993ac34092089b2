// The failover incident's timeline: a tracker fed with the daemon's steps (fake views, real event
// shapes) and the pure assembly of the incident row.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FailoverTracker, assembleIncident, type StepObservation, type Takeover } from "../../../src/effects/failover-incident.ts";
import type { CoreAction, CoreEvent, NodeView, VmSpec } from "../../../src/core/types.ts";

const T0 = Date.parse("2026-11-23T06:00:00.000Z");
const spec = (id: string, ha = true): VmSpec => ({ id, ramMb: 256, ha, storage: "shared", restartPriority: 0 });

function view(master: number | null, vms: Array<{ vm: string; owner: number | null; note?: string }> = [], self = 2): NodeView {
  return {
    localNodeId: self,
    now: 0,
    selfStatus: "member",
    quorum: { quorate: true, have: 2, need: 2, members: [1, 2, 3] },
    cpg: { members: [1, 2, 3], synced: master !== null, term: 7, majority: true },
    master,
    isMaster: master === self,
    holdsClusterIp: master === self,
    panelRunning: master === self,
    lease: { fresh: true, ageMs: 0, ipSafeInMs: 0 },
    nodes: [],
    vms: vms.map((v) => ({ vm: v.vm, owner: v.owner, epoch: 1, local: null, note: v.note ?? "" })),
    reasons: [],
  };
}

/** Drives a tracker through steps: [wall offset, event, view, actions?, decisions?]. */
function drive(tracker: FailoverTracker, steps: Array<[number, CoreEvent, NodeView, CoreAction[]?, string[]?]>) {
  for (const [dt, event, v, actions = [], decisions = []] of steps) {
    const step: StepObservation = { event, actions, decisions: decisions.map((reason) => ({ reason })), view: v, wall: T0 + dt };
    tracker.observe(step);
  }
}

const tick: CoreEvent = { type: "tick", now: 0 };
const msg = (from: number, m: object = { kind: "renew" }): CoreEvent => ({ type: "cpg-message", now: 0, from, msg: m });
const assign: CoreAction = { type: "AssignClusterIp", reason: "lease expired" } as CoreAction;
const promote: CoreAction = { type: "PromoteDatabase", reason: "lease expired" } as CoreAction;
const result = (action: CoreAction, ok = true, error?: string): CoreEvent => ({ type: "action-result", now: 0, action, ok, ...(error ? { error } : {}) });

test("a crashed master: detection, election, IP move, DB promotion and VM restarts with their durations", () => {
  const tr = new FailoverTracker(2, true);
  const vms = [
    { vm: "web1", owner: 1 },
    { vm: "db1", owner: 1 },
    { vm: "batch", owner: 1 }, // not HA: stays down, not waited for
    { vm: "mail", owner: 3 },
  ];
  drive(tr, [
    [0, { type: "vm-inventory", now: 0, vms: [spec("web1"), spec("db1"), spec("batch", false), spec("mail")], owners: [] }, view(1, vms)],
    [100, msg(1), view(1, vms)],
    [400, msg(1, { kind: "report", running: ["web1", "db1", "batch"] }), view(1, vms)], // last sign of n1
    [2600, { type: "cpg-membership", now: 0, members: [2, 3] }, view(null, vms)], // detection: 2200 ms
    [2650, { type: "quorum", now: 0, quorate: true, members: [2, 3] }, view(null, vms)],
    [2700, tick, view(2, vms), [], ["n2 elected: highest prio among n2(20), n3(10)"]], // election: 100 ms
    [3000, tick, view(2, vms), [assign, promote]], // lease wait 300 ms
    [3050, result(assign), view(2, vms)], // IP: 350 ms after the election
    [3900, result(promote), view(2, vms)], // DB: 900 ms after it was asked for
  ]);
  const t = tr.takeover!;
  assert.deepEqual(t.vms, ["web1", "db1"]);
  let r = assembleIncident(t, T0 + 4000, 60_000);
  assert.equal(r.settled, false, "VMs still pending");
  assert.deepEqual(r.row.phases.map((p) => p.name), ["detection", "election", "IP move", "DB promotion"]);

  const moved = [
    { vm: "web1", owner: 3 },
    { vm: "db1", owner: 2 },
    { vm: "batch", owner: 1 },
    { vm: "mail", owner: 3 },
  ];
  drive(tr, [
    [8000, tick, view(2, moved.map((v) => (v.vm === "web1" ? { ...v, note: "waiting for n1 to be fenced" } : v)))],
    [12_700, msg(3, { kind: "report", running: ["mail", "web1"] }), view(2, moved)], // web1: 10 s
    [13_700, msg(2, { kind: "report", running: ["db1"] }), view(2, moved)], // db1: 11 s
  ]);
  r = assembleIncident(tr.takeover!, T0 + 14_000, 60_000);
  assert.equal(r.settled, true);
  const byName = Object.fromEntries(r.row.phases.map((p) => [p.name, p]));
  assert.equal(byName.detection!.ms, 2200);
  assert.equal(byName.detection!.at, new Date(T0 + 400).toISOString());
  assert.equal(byName.election!.ms, 100);
  assert.equal(byName["IP move"]!.ms, 350);
  assert.match(byName["IP move"]!.detail!, /waited 300 ms for the old lease, assigned in 50 ms/);
  assert.equal(byName["DB promotion"]!.ms, 900);
  assert.equal(byName["DB promotion"]!.at, new Date(T0 + 3000).toISOString());
  assert.equal(byName["VM restarts"]!.ms, 11_000);
  assert.equal(byName["VM restarts"]!.ok, true);
  assert.match(byName["VM restarts"]!.detail!, /2\/2 restarted; web1 on n3 after 10\.0 s; db1 on n2 after 11\.0 s/);
  assert.ok(r.row.phases.every((p) => p.ok));
  assert.equal(r.row.severity, "warning");
  assert.equal(r.row.summary, "n1 failed; n2 took over (cluster IP after 2.6 s, 2/2 VMs restarted)");
  assert.equal(r.row.reason, "n1 left the membership; n2 elected: highest prio among n2(20), n3(10)");
});

test("VMs that do not come back in time are recorded as pending with the master's note", () => {
  const tr = new FailoverTracker(2, false);
  const vms = [{ vm: "web1", owner: 1 }];
  drive(tr, [
    [0, { type: "vm-inventory", now: 0, vms: [spec("web1")], owners: [] }, view(1, vms)],
    [500, msg(1), view(1, vms)],
    [2700, { type: "cpg-membership", now: 0, members: [2, 3] }, view(null, vms)],
    [2800, tick, view(2, vms), [assign]],
    [2850, result(assign), view(2, vms)],
    [5000, tick, view(2, [{ vm: "web1", owner: 1, note: "web1: no node has 256 MB free" }])],
  ]);
  assert.equal(assembleIncident(tr.takeover!, T0 + 5000, 30_000).settled, false);
  const r = assembleIncident(tr.takeover!, T0 + 2800 + 30_000, 30_000);
  assert.equal(r.settled, true);
  const vm = r.row.phases.find((p) => p.name === "VM restarts")!;
  assert.equal(vm.ok, false);
  assert.match(vm.detail!, /0\/1 restarted; web1 still pending: web1: no node has 256 MB free/);
  assert.equal(r.row.phases.some((p) => p.name === "DB promotion"), false, "no database: no DB phase");
  assert.equal(r.row.severity, "error");
});

test("a failed IP assignment and a failed VM start are shown as failed phases", () => {
  const tr = new FailoverTracker(2, true);
  const vms = [{ vm: "web1", owner: 1 }];
  const start = { type: "StartVm", vm: "web1", epoch: 2, reason: "recovery" } as CoreAction;
  drive(tr, [
    [0, { type: "vm-inventory", now: 0, vms: [spec("web1")], owners: [] }, view(1, vms)],
    [2000, { type: "cpg-membership", now: 0, members: [2, 3] }, view(null, vms)],
    [2100, tick, view(2, vms), [assign, promote]],
    [2200, result(assign, false, "RTNETLINK answers: File exists"), view(2, vms)],
    [2500, result(promote), view(2, vms)],
    [9000, result(start, false, "disk locked"), view(2, [{ vm: "web1", owner: 2 }])],
  ]);
  const r = assembleIncident(tr.takeover!, T0 + 9000, 60_000);
  assert.equal(r.settled, true, "everything has an outcome");
  const byName = Object.fromEntries(r.row.phases.map((p) => [p.name, p]));
  assert.equal(byName.detection!.ms, undefined, "no message from n1 was ever seen");
  assert.equal(byName["IP move"]!.ok, false);
  assert.match(byName["IP move"]!.detail!, /File exists/);
  assert.match(byName["VM restarts"]!.detail!, /web1 failed: disk locked/);
  assert.equal(r.row.severity, "error");
});

test("a planned handover (old master still a member) and the cluster's first election", () => {
  const first = new FailoverTracker(2, false);
  drive(first, [[0, tick, view(2)]]);
  assert.equal(first.takeover, null, "becoming master at startup is no takeover");

  const tr = new FailoverTracker(2, false);
  drive(tr, [
    [0, tick, view(1)],
    [100, msg(1), view(1)],
    [300, tick, view(2), [assign], ["n2 elected: elect requested"]],
    [400, result(assign), view(2)],
  ]);
  const r = assembleIncident(tr.takeover!, T0 + 500, 60_000);
  assert.equal(r.settled, true);
  assert.equal(r.row.severity, "info");
  assert.equal(r.row.summary, "n2 took over from n1 (planned) (cluster IP after 100 ms)");
  assert.match(r.row.phases[0]!.detail!, /planned handover: n1 was still a member/);
  assert.equal(tr.generation, 1);
});

test("losing the master role again ends the takeover as it stood", () => {
  const tr = new FailoverTracker(2, false);
  drive(tr, [
    [0, tick, view(1)],
    [2000, { type: "cpg-membership", now: 0, members: [2, 3] }, view(null)],
    [2100, tick, view(2)],
    [2500, tick, view(3)],
  ]);
  const t: Takeover = tr.takeover!;
  assert.equal(t.abortedAt, T0 + 2500);
  const r = assembleIncident(t, T0 + 3000, 60_000);
  assert.equal(r.settled, true);
  assert.match(r.row.summary, /lost the master role again/);
  assert.equal(r.row.phases.find((p) => p.name === "IP move")!.ok, false);
});

test("DB promotion ends when the database became writable, not when the replicas were repointed", () => {
  const tr = new FailoverTracker(2, true);
  drive(tr, [
    [400, msg(1), view(1)],
    [2600, { type: "cpg-membership", now: 0, members: [2, 3] }, view(null)],
    [2700, tick, view(2), [], ["n2 elected"]],
    [3000, tick, view(2), [assign, promote]],
  ]);
  tr.dbWritable(T0 + 3400); // reported by the promotion itself
  drive(tr, [[5000, result(promote), view(2)]]); // the action completes after repointing: ignored
  const { row } = assembleIncident(tr.takeover!, T0 + 6000, 120_000);
  const db = row.phases.find((p) => p.name === "DB promotion")!;
  assert.equal(db.ms, 400);
  assert.equal(db.ok, true);
});

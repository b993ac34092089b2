// The nemesis for the replicated database (lab/src/nemesis), short seed: a 5-node lab with agents,
// MariaDB and 3 HA VMs; a client writes users through the panel on the cluster IP and reads them
// back; 5 seeded faults aimed mostly at the master (partitions, kills of the agent / corosync /
// mariadbd, a paused agent, a crash, a flapping link, a storage cut), each healed and settled.
// It fails on: an acknowledged write lost or missed by a later read, two cluster-IP holders, a VM
// on two nodes, no single writable master within 10 s of a heal, a database left diverged.
// On failure it prints the seed, the schedule and the violations; the node logs, the client's
// history and report.json stay in artifacts/nemesis/. Replay: NEMESIS_SEED=<seed> (NEMESIS_FAULTS=<n>),
// or the long run: node --import tsx lab/bench/nemesis.ts --seed <seed> --faults 50.
//
// The first describe checks the checkers themselves on made-up histories (no lab, no root).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeSchedule,
  formatSchedule,
  FAULT_KINDS,
  minorityPeer,
  checkLostWrites,
  checkStaleReads,
  splitIpIntervals,
  doubleVmIntervals,
  checkHealRecovery,
  singleMaster,
  toRanges,
  inRanges,
  parsePos,
  containsPos,
  errant,
  runNemesis,
  formatSummary,
  type WriteOp,
  type ReadOp,
  type FaultRecord,
} from "../../src/nemesis/index.ts";
import { REPO_ROOT } from "../../src/index.ts";

const SEED = Number(process.env.NEMESIS_SEED ?? 8);
const FAULTS = Number(process.env.NEMESIS_FAULTS ?? 5);

const w = (seq: number, start: number, end: number, status: WriteOp["status"] = 201): WriteOp => ({ type: "write", seq, start, end, status });
const r = (start: number, end: number, seqs: number[], status: ReadOp["status"] = 200): ReadOp => ({ type: "read", start, end, status, seen: toRanges(seqs), count: seqs.length });

describe("nemesis: schedule and checkers (pure)", () => {
  it("the same seed gives the same schedule; a short one covers distinct kinds, a long one all", () => {
    const a = makeSchedule({ seed: 42, faults: 50, nodes: 5 });
    assert.deepEqual(makeSchedule({ seed: 42, faults: 50, nodes: 5 }), a);
    assert.notDeepEqual(makeSchedule({ seed: 43, faults: 50, nodes: 5 }), a);
    assert.equal(new Set(a.slice(0, FAULT_KINDS.length).map((f) => f.kind)).size, FAULT_KINDS.length, "every kind once per bag");
    assert.ok(a.filter((f) => f.target === "master").length > a.length / 2, "mostly the master");
    assert.ok(a.some((f) => typeof f.target === "number"), "sometimes a random node");
    for (const f of a) {
      if (f.kind === "pause-agent") assert.ok(f.holdMs >= 3000 && f.holdMs <= 12_000, `pause ${f.holdMs}`);
      if (f.kind === "flap") assert.ok((f.flaps?.length ?? 0) >= 3);
      if (f.kind === "master-minority") assert.equal(f.target, "master");
    }
    // Other duration ranges change durations only, never which faults come.
    const b = makeSchedule({ seed: 42, faults: 50, nodes: 5, holdMs: [1000, 2000], flapCycles: [2, 2] });
    assert.deepEqual(b.map((f) => [f.kind, f.target]), a.map((f) => [f.kind, f.target]));
    assert.equal(minorityPeer(3, 5, 0), 1);
    assert.equal(minorityPeer(1, 5, 3), 5);
  });

  it("lost writes: an acknowledged write absent from the final state; a refused one present", () => {
    const res = checkLostWrites([w(1, 0, 1), w(2, 2, 3), w(3, 4, 5, 503), w(4, 6, 7, 401), w(5, 8, 9, "timeout")], [1, 3, 4]);
    assert.deepEqual(res.lost, [2]);
    assert.deepEqual(res.phantom, [4]);
    assert.equal(res.indeterminate, 2);
    assert.equal(res.indeterminateKept, 1);
  });

  it("stale reads: a read that started after an acknowledgement must see it (concurrent ones need not)", () => {
    const writes = [w(1, 0, 10), w(2, 20, 30), w(3, 40, 50), w(4, 60, 70, 503)];
    const reads = [r(25, 26, [1]), r(35, 36, [1]), r(45, 55, [1, 2]), r(80, 81, [1, 2, 3]), r(90, 91, [], 503), r(100, 101, [2, 3])];
    const stale = checkStaleReads(writes, reads);
    assert.deepEqual(stale.map((s) => [s.start, s.missing]), [[35, [2]], [100, [1]]]);
  });

  it("ranges, GTID positions", () => {
    assert.deepEqual(toRanges([5, 1, 2, 3, 7, 8]), [[1, 3], [5, 5], [7, 8]]);
    assert.ok(inRanges(toRanges([1, 2, 3, 9]), 9) && !inRanges(toRanges([1, 2, 3, 9]), 4));
    const p = parsePos("0-1-100,1-2-5");
    assert.ok(containsPos(parsePos("0-1-101,1-2-5"), p));
    assert.ok(!containsPos(parsePos("0-3-100,1-2-5"), p), "same seq from another server: diverged");
    assert.deepEqual(errant(parsePos("0-3-100"), p).map((g) => g.server), [3]);
    assert.deepEqual(errant(parsePos("0-1-99"), p), []);
  });

  it("split IP, double VM, single master, heal -> writable", () => {
    const ip = [
      { t: 0, holders: [1] },
      { t: 100, holders: [1, 2] },
      { t: 200, holders: [1, 2] },
      { t: 300, holders: [2] },
      { t: 1000, holders: [2] },
      { t: 20_000, holders: [2] },
    ];
    assert.deepEqual(splitIpIntervals(ip), [{ from: 100, to: 200, samples: 2, holders: [1, 2] }]);
    assert.deepEqual(doubleVmIntervals([{ t: 5, vm: "a", nodes: [1, 2] }, { t: 6, vm: "a", nodes: [2, 1] }, { t: 5000, vm: "a", nodes: [1, 3] }]).map((d) => d.samples), [2, 1]);
    const view = (id: number, master: number | null) => ({ id, master, isMaster: id === master, quorate: true, statuses: {} });
    assert.equal(singleMaster({ t: 0, views: [view(2, 2), view(1, 2)] }, [2]), 2);
    assert.equal(singleMaster({ t: 0, views: [view(2, 2), view(1, 1)] }, [2]), null, "another node names itself");
    assert.equal(singleMaster({ t: 0, views: [view(2, 2)] }, [1, 2]), null, "two holders");
    const fault = (index: number, injectedAt: number, healedAt: number): FaultRecord => ({ index, kind: "crash", target: 1, masterBefore: 1, injectedAt, healedAt, recoveredAt: null, masterAfter: null, notes: [] });
    const views = [
      { t: 500, views: [view(2, 2)] },
      { t: 1000, views: [view(2, 2)] },
      { t: 20_000, views: [view(2, 2)] },
    ];
    const heals = checkHealRecovery([fault(0, 0, 400), fault(1, 5000, 10_000)], views, ip, [w(1, 800, 900), w(2, 21_000, 21_500)], 10_000);
    assert.deepEqual(heals.map((h) => [h.singleMasterMs, h.firstAckMs, h.ok]), [[100, 500, true], [10_000, 11_500, false]]);
  });
});

const skip = process.getuid?.() !== 0 ? "needs root (network namespaces)" : false;

describe(`nemesis on a 5-node lab with MariaDB: seed ${SEED}, ${FAULTS} faults`, { skip, timeout: 540_000 }, () => {
  it("no acknowledged write lost or unseen, one IP holder, no VM twice, writable within 10 s of every heal, no diverged database", async (t) => {
    const schedule = { holdMs: [4000, 8000] as const, pauseMs: [3000, 8000] as const, settleMs: [2000, 4000] as const, flapCycles: [3, 3] as const, flapDownMs: [1000, 3000] as const, flapUpMs: [1000, 2000] as const };
    const report = await runNemesis({
      seed: SEED,
      faults: FAULTS,
      nodes: 5,
      name: "nem5",
      vms: 3,
      schedule,
      recoveryTimeoutMs: 25_000,
      artifactsDir: join(REPO_ROOT, "artifacts", "nemesis", `test-seed-${SEED}`),
      keepLogs: "on-failure",
      log: (m) => t.diagnostic(m),
    });
    const summary = formatSummary(report);
    for (const line of summary.split("\n")) t.diagnostic(line);
    if (report.violations.length) {
      const plan = formatSchedule(makeSchedule({ seed: SEED, faults: FAULTS, nodes: 5, ...schedule }));
      assert.fail(`nemesis seed ${SEED} (${FAULTS} faults) found ${report.violations.length} violations:\n${report.violations.map((v) => `  - ${v}`).join("\n")}\nschedule:\n${plan}\n\n${summary}`);
    }
  });
});

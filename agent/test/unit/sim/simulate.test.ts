import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runBatch, runSlice, type BatchFailure } from '../../../src/sim/batch.ts';
import type { SimSabotage } from '../../../src/sim/model.ts';
import { simulate, type SimOptions } from '../../../src/sim/simulate.ts';

const describeFailures = (f: BatchFailure[]): string =>
  f.slice(0, 10).map((x) => `seed ${x.seed} (${x.nodes} nodes) ${x.invariant}: ${x.message}\n  replay: ${x.command}`).join('\n');

describe('simulator', () => {
  it('a quiet cluster converges: one master with IP and panel, every VM on its owner', () => {
    for (const nodes of [3, 4, 5, 6, 7]) {
      const r = simulate({ seed: nodes, nodes, steps: 20, faults: 'none' });
      assert.equal(r.ok, true, JSON.stringify(r.violations));
    }
  });

  it('agents starting staggered (within the startup grace): the cluster elects its best node', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const nodes = 3 + (seed % 5);
      // Boots spread over 400 ms, then agents over up to 1 s (fast profile: grace 2 s) or 3 s (default: grace 5 s).
      const fast = seed % 2 === 1;
      const timing = { agentStartMs: fast ? ([0, 1000] as const) : ([0, 3000] as const), agentLateChance: 0 };
      const r = simulate({ seed, nodes, steps: 60, faults: 'none', failback: false, profile: fast ? 'fast' : 'default', timing });
      assert.equal(r.ok, true, `seed ${seed}: ${JSON.stringify(r.violations)}`);
      const best = [...r.nodes].sort((a, b) => b.prio - a.prio || a.nodeid - b.nodeid)[0]!;
      assert.equal(r.firstMaster, best.nodeid, `seed ${seed} (${nodes} nodes, timing ${JSON.stringify(timing)}): first master n${r.firstMaster}, best n${best.nodeid}`);
      assert.notEqual(r.finalMaster, null);
    }
  });

  it('an agent that starts long after its corosync: the startup grace expires, the others elect, all converge', () => {
    let expired = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const r = simulate({ seed, nodes: 3 + (seed % 3), steps: 100, faults: 'none', profile: 'fast', timing: { agentLateChance: 0.4, agentLateMs: [3000, 6000] } });
      assert.equal(r.ok, true, `seed ${seed}: ${JSON.stringify(r.violations)} ${r.command}`);
      expired += r.stats.coverage['startup grace expired'] ?? 0;
    }
    assert.ok(expired > 0, 'no schedule let the startup grace expire');
  });

  it('a member fails: with the default lease the master holds through the membership transition; with the short lease it steps down (both safe)', () => {
    let shortStepDowns = 0;
    for (let seed = 1; seed <= 16; seed++) {
      const profile = seed % 2 === 0 ? 'default' : 'fast';
      const base = { seed, nodes: 3 + (seed % 3), steps: 200, faults: 'none' as const, profile: profile as 'default' | 'fast', failback: false, timing: { agentLateChance: 0, slowWriteChance: 0 } };
      const quiet = simulate(base);
      assert.equal(quiet.ok, true, JSON.stringify(quiet.violations));
      const master = quiet.finalMaster!;
      assert.notEqual(master, null);
      const victim = quiet.nodes.find((n) => n.nodeid !== master)!.nodeid;
      // Well after the cluster converged (start, startup grace, first lease wait), before the heal.
      const schedule = [{ at: 12_000, fault: { kind: 'crash' as const, node: victim } }];
      const held = simulate({ ...base, schedule, lease: 'transition' });
      assert.equal(held.ok, true, `${held.command}: ${JSON.stringify(held.violations)}`);
      assert.equal(held.finalMaster, master);
      for (const k of ['lease expired', 'master stepped down', 'database demoted', 'ip re-taken']) {
        assert.equal(held.stats.coverage[k] ?? 0, 0, `seed ${seed} (${profile}): "${k}" with the default lease after n${victim} crashed (master n${master})`);
      }
      assert.equal(held.stats.coverage['ip taken'], quiet.stats.coverage['ip taken'], 'the IP was not taken again');
      const blip = simulate({ ...base, schedule, lease: 'short' });
      assert.equal(blip.ok, true, `${blip.command}: ${JSON.stringify(blip.violations)}`);
      shortStepDowns += blip.stats.coverage['lease expired'] ?? 0;
    }
    assert.ok(shortStepDowns >= 16, `the short lease expired ${shortStepDowns} times in 16 transitions`);
  });

  it('is deterministic: same seed, same run', () => {
    const a = simulate({ seed: 77, nodes: 5, steps: 150, profile: 'fast', trace: true });
    const b = simulate({ seed: 77, nodes: 5, steps: 150, profile: 'fast', trace: true });
    assert.deepEqual(a.stats, b.stats);
    assert.deepEqual(a.trace, b.trace);
    assert.ok(a.trace.some((l) => l.includes('FAULT')), 'the schedule injects faults');
  });

  it('prints a replay command', () => {
    const r = simulate({ seed: 1234, nodes: 5, steps: 400, profile: 'fast' });
    assert.equal(r.command, 'node --import tsx agent/src/sim/cli.ts --seed 1234 --nodes 5 --steps 400 --profile fast --trace');
  });

  it('10,000 schedules (3-7 nodes, both timing profiles) hold every invariant', { timeout: 600_000 }, async (t) => {
    const r = await runBatch({ firstSeed: 1, count: 10_000, steps: 150, defaultProfileEvery: 5 });
    const secs = r.wallMs / 1000;
    t.diagnostic(`${r.schedules} schedules, ${r.events} steps in ${secs.toFixed(1)} s: ${(r.schedules / secs).toFixed(0)} schedules/s, ${(r.events / secs / 1000).toFixed(0)}k steps/s`);
    t.diagnostic(`coverage: ${Object.entries(r.coverage).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    assert.equal(r.schedules, 10_000);
    assert.deepEqual(r.failures, [], describeFailures(r.failures));
    // The schedules really exercise the dangerous paths.
    for (const k of ['lease changed', 'startup election deferred', 'startup grace expired', 'database demoted', 'ip taken', 'lease expired', 'release confirmed', 'master stepped down', 'became excluded', 'became network_isolation', 'became storage_isolation', 'ownership changes (per member)', 'watchdog reset', 'power loss', 'agent restarted holding the IP', 'agent restarted with VMs', 'vm unplaced',
      // The database model
      'db writes acknowledged', 'db promoted', 'db promotion failed: no majority', 'db promotion failed: this copy', 'db promotion caught up from another copy', 'db copy rebuilt', 'db writes discarded (never acknowledged)', 'db writes failed before a majority had them', 'mariadbd killed', 'db-health: not eligible', 'master elected: a better one whose database cannot be primary passed over']) {
      assert.ok((r.coverage[k] ?? 0) > 0, `no schedule exercised "${k}"`);
    }
  });

  it('long schedules hold every invariant', { timeout: 600_000 }, () => {
    const r = runSlice({ firstSeed: 5_000_000, count: 60, steps: 800, defaultProfileEvery: 2 }, 5_000_000, 5_000_060);
    assert.deepEqual(r.failures, [], describeFailures(r.failures));
  });
});

describe('simulator: the database', () => {
  const base = (seed: number, nodes: number): SimOptions => ({ seed, nodes, steps: 400, faults: 'none', profile: 'fast', failback: false, timing: { agentLateChance: 0, slowWriteChance: 0 } });
  const others = (r: { nodes: Array<{ nodeid: number }> }, but: number) => r.nodes.map((n) => n.nodeid).filter((id) => id !== but);

  it("the master's mariadbd dies: mastership moves to a node whose database can be primary (failback off), no write is lost", () => {
    for (let seed = 1; seed <= 8; seed++) {
      const quiet = simulate(base(seed, 3 + (seed % 3)));
      const m = quiet.finalMaster!;
      const r = simulate({ ...base(seed, 3 + (seed % 3)), schedule: [{ at: 10_000, fault: { kind: 'db-kill', node: m, ms: 5_000 } }] });
      assert.equal(r.ok, true, `${r.command}: ${JSON.stringify(r.violations)}`);
      assert.notEqual(r.finalMaster, m, `seed ${seed}: n${m} stayed master without a database`);
      assert.ok((r.stats.coverage['master elected: a better one whose database cannot be primary passed over'] ?? 0) > 0);
      assert.ok((r.stats.coverage['db writes acknowledged'] ?? 0) > 0);
    }
  });

  // n3 cut off while n1 (master) and n2 acknowledge writes; then n2's mariadbd dies and n1 loses
  // power at once: n3 becomes master with a stale copy. The promotion must wait for a majority
  // of copies (n2's comes back after 12 s) instead of losing what n1 and n2 acknowledged.
  const staleSurvivor = (seed: number): SimOptions => {
    const quiet = simulate(base(seed, 3));
    const m = quiet.finalMaster!;
    const [x, y] = others(quiet, m) as [number, number];
    return {
      ...base(seed, 3),
      schedule: [
        { at: 8_000, fault: { kind: 'ctrl', node: y, up: false } },
        { at: 14_000, fault: { kind: 'db-kill', node: x, ms: 12_000 } },
        { at: 14_000, fault: { kind: 'crash', node: m } },
        { at: 14_000, fault: { kind: 'ctrl', node: y, up: true } },
      ],
    };
  };
  it('a promotion without a majority of copies waits (retried) rather than lose acknowledged writes', () => {
    for (let seed = 1; seed <= 4; seed++) {
      const r = simulate(staleSurvivor(seed));
      assert.equal(r.ok, true, `${r.command}: ${JSON.stringify(r.violations)}`);
      assert.ok((r.stats.coverage['db promotion failed: no majority'] ?? 0) >= 3, 'the promotion waited for a majority');
    }
  });

  // A master cut off with one replica keeps the IP (and takes writes) until corosync notices.
  const cutWithOneReplica = (seed: number): SimOptions => {
    const quiet = simulate(base(seed, 5));
    const m = quiet.finalMaster!;
    const x = others(quiet, m)[0]!;
    const groups = quiet.nodes.map((n) => (n.nodeid === m || n.nodeid === x ? 1 : 0));
    return { ...base(seed, 5), steps: 300, schedule: [{ at: 10_000, fault: { kind: 'partition', groups } }, { at: 20_000, fault: { kind: 'heal-partition' } }] };
  };
  it('a master cut off with one replica: its writes are never acknowledged, the rebuilt copies discard only those', () => {
    for (let seed = 1; seed <= 4; seed++) {
      const r = simulate(cutWithOneReplica(seed));
      assert.equal(r.ok, true, `${r.command}: ${JSON.stringify(r.violations)}`);
      assert.ok((r.stats.coverage['db writes discarded (never acknowledged)'] ?? 0) > 0, 'the old primary and its replica were rebuilt');
    }
  });

  const scenarios: Array<{ sabotage: SimSabotage; what: string; options: (seed: number) => SimOptions }> = [
    { sabotage: 'no-majority', what: 'a promotion from whatever copies answer', options: staleSurvivor },
    { sabotage: 'one-ack', what: 'a write acknowledged once one replica has it (semi-sync)', options: cutWithOneReplica },
  ];
  for (const t of scenarios) {
    it(`the checker catches ${t.sabotage}: ${t.what}`, () => {
      for (let seed = 1; seed <= 4; seed++) {
        const r = simulate({ ...t.options(seed), sabotage: t.sabotage });
        assert.equal(r.violations[0]?.invariant, 'db-ack-lost', `seed ${seed}: ${JSON.stringify(r.violations)}`);
      }
    });
  }
});

describe('simulator catches broken cores', () => {
  const table: Array<{ sabotage: SimSabotage; what: string; invariants: string[]; base?: Partial<SimOptions> }> = [
    { sabotage: 'no-lease', what: 'a master that ignores lease expiry', invariants: ['lease', 'one-ip', 'one-panel'] },
    { sabotage: 'no-ip-wait', what: 'a new master that does not wait for the old lease', invariants: ['one-ip', 'one-panel', 'one-master', 'one-db-primary'] },
    { sabotage: 'no-fence-wait', what: 'a master that relocates VMs without waiting for the fence', invariants: ['vm-exclusive'] },
    { sabotage: 'keep-vms-on-quorum-loss', what: 'a node that keeps its VMs after losing quorum', invariants: ['self-fence', 'vm-exclusive'] },
    // The database model: random 5-node schedules with many partitions (a master cut off with a replica).
    { sabotage: 'one-ack', what: 'writes acknowledged once one replica has them', invariants: ['db-ack-lost', 'db-split-brain', 'db-discard'], base: { nodes: 5, faults: { partition: 12 } } },
  ];
  for (const t of table) {
    it(`${t.sabotage}: ${t.what}`, () => {
      const r = runSlice({ firstSeed: 1, count: 200, steps: 150, defaultProfileEvery: 5, base: { sabotage: t.sabotage, ...t.base } }, 1, 201);
      assert.ok(r.failures.length > 0, `${t.sabotage} was not caught in 200 schedules`);
      for (const f of r.failures) assert.ok(t.invariants.includes(f.invariant), `${t.sabotage}: unexpected ${f.invariant}: ${f.message}`);
      assert.match(r.failures[0]!.command, new RegExp(`--sabotage ${t.sabotage}( --faults \\S+)? --trace$`));
    });
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Sabotage } from '../../../src/core/node-core.ts';
import { runBatch, runSlice, type BatchFailure } from '../../../src/sim/batch.ts';
import { simulate } from '../../../src/sim/simulate.ts';

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
    for (const k of ['lease changed', 'startup election deferred', 'startup grace expired', 'database demoted', 'ip taken', 'lease expired', 'release confirmed', 'master stepped down', 'became excluded', 'became network_isolation', 'became storage_isolation', 'ownership changes (per member)', 'watchdog reset', 'power loss', 'agent restarted holding the IP', 'agent restarted with VMs', 'vm unplaced']) {
      assert.ok((r.coverage[k] ?? 0) > 0, `no schedule exercised "${k}"`);
    }
  });

  it('long schedules hold every invariant', { timeout: 600_000 }, () => {
    const r = runSlice({ firstSeed: 5_000_000, count: 60, steps: 800, defaultProfileEvery: 2 }, 5_000_000, 5_000_060);
    assert.deepEqual(r.failures, [], describeFailures(r.failures));
  });
});

describe('simulator catches broken cores', () => {
  const table: Array<{ sabotage: Sabotage; what: string; invariants: string[] }> = [
    { sabotage: 'no-lease', what: 'a master that ignores lease expiry', invariants: ['lease', 'one-ip', 'one-panel'] },
    { sabotage: 'no-ip-wait', what: 'a new master that does not wait for the old lease', invariants: ['one-ip', 'one-panel', 'one-master', 'one-db-primary'] },
    { sabotage: 'no-fence-wait', what: 'a master that relocates VMs without waiting for the fence', invariants: ['vm-exclusive'] },
    { sabotage: 'keep-vms-on-quorum-loss', what: 'a node that keeps its VMs after losing quorum', invariants: ['self-fence', 'vm-exclusive'] },
  ];
  for (const t of table) {
    it(`${t.sabotage}: ${t.what}`, () => {
      const r = runSlice({ firstSeed: 1, count: 200, steps: 150, defaultProfileEvery: 5, base: { sabotage: t.sabotage } }, 1, 201);
      assert.ok(r.failures.length > 0, `${t.sabotage} was not caught in 200 schedules`);
      for (const f of r.failures) assert.ok(t.invariants.includes(f.invariant), `${t.sabotage}: unexpected ${f.invariant}: ${f.message}`);
      assert.match(r.failures[0]!.command, new RegExp(`--sabotage ${t.sabotage} --trace$`));
    });
  }
});

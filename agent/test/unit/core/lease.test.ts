import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { holderGoneAt, holderTerms, ipSafeAt, leaseFresh, ownTerms, transitionLeaseMs, TRANSITION_SLACK_MS, watchdogDeadline, type WatchdogInput } from '../../../src/core/lease.ts';
import { DEFAULT_SETTINGS, resolveSettings, settingsProblems } from '../../../src/core/types.ts';

// The short lease keeps the arithmetic below readable; the default lease is covered further down.
const s = resolveSettings({ leaseMs: 1000 }); // lease 1000, release budget 1000, margin 200, fence 5000, storage 5000, write max 1000

describe('lease length', () => {
  it('the default lease outlasts a membership transition of the recommended corosync.conf (token 1000, consensus 1200)', () => {
    assert.equal(DEFAULT_SETTINGS.leaseMs, transitionLeaseMs({ tokenMs: 1000, consensusMs: 1200 }, DEFAULT_SETTINGS.leaseRenewMs));
    assert.equal(DEFAULT_SETTINGS.leaseMs, 1000 + 1200 + 250 + TRANSITION_SLACK_MS);
  });
  it('follows corosync timing: production defaults on 3 nodes (token 3000 + 650, consensus 1.2 x that)', () => {
    assert.equal(transitionLeaseMs({ tokenMs: 3650, consensusMs: 4380 }, 250), 3650 + 4380 + 250 + TRANSITION_SLACK_MS);
  });
  it('another holder: the longer of its announced terms and ours', () => {
    assert.deepEqual(holderTerms({ leaseMs: 5000, releaseBudgetMs: 500 }, s), { leaseMs: 5000, releaseBudgetMs: 1000, leaseMarginMs: 200 });
    assert.deepEqual(holderTerms({ leaseMs: 800, releaseBudgetMs: 3000 }, s), { leaseMs: 1000, releaseBudgetMs: 3000, leaseMarginMs: 200 });
  });
  it('another holder without terms (an older agent): ours', () => {
    assert.deepEqual(holderTerms(undefined, s), { leaseMs: 1000, releaseBudgetMs: 1000, leaseMarginMs: 200 });
    assert.deepEqual(holderTerms({}, s), { leaseMs: 1000, releaseBudgetMs: 1000, leaseMarginMs: 200 });
  });
  it('our own lease: never longer than our last renewal announced, shorter if our settings shrank', () => {
    assert.deepEqual(ownTerms({ leaseMs: 1000, releaseBudgetMs: 1000 }, { leaseMs: 2750, releaseBudgetMs: 1000 }), { leaseMs: 1000, releaseBudgetMs: 1000 });
    assert.deepEqual(ownTerms({ leaseMs: 2750, releaseBudgetMs: 1000 }, { leaseMs: 1000, releaseBudgetMs: 500 }), { leaseMs: 1000, releaseBudgetMs: 500 });
    assert.deepEqual(ownTerms(undefined, { leaseMs: 2750, releaseBudgetMs: 1000 }), { leaseMs: 2750, releaseBudgetMs: 1000 });
  });
});

describe('lease', () => {
  it('is fresh up to leaseMs after the renewal was sent', () => {
    assert.equal(leaseFresh(1000, 2000, s), true);
    assert.equal(leaseFresh(1000, 2001, s), false);
    assert.equal(leaseFresh(null, 0, s), false);
  });
  it('a new master waits lease + release budget + margin after the renewal it saw', () => {
    assert.equal(holderGoneAt(5000, s), 5000 + 1000 + 1000 + 200);
  });
  it('ipSafeAt ignores our own entry', () => {
    assert.equal(ipSafeAt(new Map([[1, 9000], [2, 7000], [0, 8000]]), 1), 8000);
    assert.equal(ipSafeAt(new Map(), 1), -Infinity);
  });
});

describe('watchdogDeadline', () => {
  const base: WatchdogInput = { now: 10_000, startedAt: 0, mayHoldIp: false, lastRenewalSentAt: null, mayHaveVms: false, lastGoodWriteStart: 9_500, fencedSince: null, settings: s };
  const table: Array<[string, Partial<WatchdogInput>, number, RegExp]> = [
    ['idle node: agent liveness only', {}, 15_000, /agent liveness/],
    ['IP holder: old renewal + lease + release budget', { mayHoldIp: true, lastRenewalSentAt: 9_800 }, 11_800, /not released/],
    ['IP maybe held at startup: start + margin only', { mayHoldIp: true, startedAt: 10_000 }, 10_200, /not released/],
    // The panel (and the DB demote) are not watchdog-bound: only the address is (see watchdogDeadline).
    ['IP released, panel maybe still stopping: agent liveness only', { mayHoldIp: false, lastRenewalSentAt: 9_800 }, 15_000, /agent liveness/],
    ['VMs: last good write + storage + fence - write max', { mayHaveVms: true, lastGoodWriteStart: 9_000 }, 15_000, /agent liveness/],
    ['VMs with an old write', { mayHaveVms: true, lastGoodWriteStart: 2_000 }, 11_000, /storage heartbeat failing/],
    ['VMs without any write yet', { mayHaveVms: true, lastGoodWriteStart: null, startedAt: 9_900 }, 10_900, /no storage heartbeat written/],
    ['VMs while fencing', { mayHaveVms: true, fencedSince: 8_000 }, 13_000, /self-fence/],
    ['fencing without VMs does not matter', { fencedSince: 8_000 }, 15_000, /agent liveness/],
  ];
  for (const [name, input, deadline, reason] of table) {
    it(name, () => {
      const r = watchdogDeadline({ ...base, ...input });
      assert.equal(r.deadline, deadline);
      assert.match(r.reason, reason);
    });
  }
});

describe('settings', () => {
  it('defaults are consistent', () => assert.deepEqual(settingsProblems(resolveSettings()), []));
  it('partial settings override defaults', () => {
    const r = resolveSettings({ leaseMs: 2000, failback: true });
    assert.equal(r.leaseMs, 2000);
    assert.equal(r.failback, true);
    assert.equal(r.leaseRenewMs, DEFAULT_SETTINGS.leaseRenewMs);
  });
  it('flags an unsafe combination', () => {
    assert.match(settingsProblems(resolveSettings({ leaseMs: 1000, leaseRenewMs: 900 })).join(), /leaseRenewMs/);
    assert.match(settingsProblems(resolveSettings({ startWindowMs: 100 })).join(), /startWindowMs/);
  });
});

// A member's failure while corosync forms the new membership (token + consensus, nothing
// delivered): with the default lease, which outlasts that transition, the master holds the
// cluster IP, panel and primary database throughout. A new master after a real master failure
// waits for the holder's lease, as the holder announced it in its renewals.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LEGACY_LEASE_MS, transitionLeaseMs } from '../../../src/core/lease.ts';
import { DEFAULT_SETTINGS, type CoreAction, type NodeConfig, type Settings, type VmSpec } from '../../../src/core/types.ts';
import { Harness } from './harness.ts';

const NODES: NodeConfig[] = [
  { nodeid: 1, prio: 100, addr: '10.0.0.1', ramMb: 16384 },
  { nodeid: 2, prio: 50, addr: '10.0.0.2', ramMb: 16384 },
  { nodeid: 3, prio: 40, addr: '10.0.0.3', ramMb: 16384 },
];
const VMS: VmSpec[] = [
  { id: 'vm1', ramMb: 2048, ha: true, storage: 'shared', restartPriority: 1 },
  { id: 'vm3', ramMb: 2048, ha: true, storage: 'shared', restartPriority: 1 },
];
/** The lab's corosync: token 1000 ms, consensus 1200 ms. */
const TRANSITION_MS = 1000 + 1200;
const STEP_DOWN: ReadonlyArray<CoreAction['type']> = ['DemoteDatabase', 'ReleaseClusterIp', 'StopPanel'];

function converged(settings: Partial<Settings> = {}): Harness {
  const h = new Harness({ nodes: NODES, vms: VMS, owners: { vm1: 1, vm3: 3 }, settings });
  h.start();
  h.run(6000); // a fresh cluster waits out an unknown predecessor's lease (lease + budget + margin)
  assert.equal(h.masterOf(1), 1);
  assert.deepEqual([...h.ip], [1]);
  assert.deepEqual([...h.panel], [1]);
  return h;
}

const stepDowns = (h: Harness, node: number, since: number): string[] =>
  h.actions.filter((l) => l.node === node && l.at >= since && STEP_DOWN.includes(l.action.type)).map((l) => `${l.at} ${l.action.type}: ${l.action.reason}`);

/** Send time of the last renewal `by` multicast before `before` (delivered at once in the harness). */
function lastRenewalBefore(h: Harness, by: number, before: number): number {
  const sends = h.actions.filter((l) => l.node === by && l.at < before && l.action.type === 'SendCpg' && l.action.msg.kind === 'renew');
  assert.ok(sends.length > 0);
  return sends[sends.length - 1]!.at;
}

describe('membership transition: the master holds through a member failure', () => {
  it('the default lease covers token + consensus + a renewal interval', () => {
    assert.ok(DEFAULT_SETTINGS.leaseMs >= TRANSITION_MS + DEFAULT_SETTINGS.leaseRenewMs + DEFAULT_SETTINGS.tickMs);
  });

  // Every phase of the renewal cycle: the ring may stop right after a renewal or just before the next.
  for (const phase of [0, 100, 200, 300]) {
    it(`a member crashes (ring stops ${phase} ms into the cycle): no release, no demote on the master, the IP never leaves it`, () => {
      const h = converged();
      h.run(phase);
      const cutAt = h.now;
      h.stopRing();
      h.crash(3, false);
      // corosync delivers nothing for token + consensus; the master keeps ticking.
      for (let t = 0; t < TRANSITION_MS; t += 100) {
        h.run(100);
        assert.deepEqual([...h.ip], [1], `IP at ${h.now}`);
      }
      h.partition([[1, 2]]);
      h.run(3000);
      assert.deepEqual(stepDowns(h, 1, cutAt), []);
      assert.deepEqual([...h.ip], [1]);
      assert.deepEqual([...h.panel], [1]);
      assert.equal(h.masterOf(1), 1);
      assert.equal(h.masterOf(2), 1);
      // It never took the IP again either: it simply kept it.
      assert.equal(h.actionsOf(1, 'AssignClusterIp', cutAt).length, 0);
      assert.ok(!h.decisions.some((d) => d.node === 1 && d.at >= cutAt && /releasing cluster IP|database read-only/.test(d.reason)));
    });
  }

  it('the same transition with the short lease (leaseMs 1000, set explicitly): the master steps down and takes back (the old blip), nobody else takes the IP', () => {
    const h = converged({ leaseMs: 1000 });
    const cutAt = h.now;
    h.stopRing();
    h.crash(3, false);
    h.run(TRANSITION_MS);
    assert.deepEqual([...h.ip], []);
    assert.ok(stepDowns(h, 1, cutAt).length >= 2, 'the master stepped down on lease expiry');
    h.partition([[1, 2]]);
    h.run(3000);
    assert.deepEqual([...h.ip], [1]);
    assert.equal(h.actionsOf(2, 'AssignClusterIp').length, 0);
  });

  it('the master itself is cut off: it releases on quorum loss; the new master waits lease + budget + margin after the last renewal it saw', () => {
    const h = converged();
    const cutAt = h.now;
    h.stopRing();
    h.run(TRANSITION_MS);
    assert.deepEqual([...h.ip], [1], 'held during the transition');
    h.partition([[1], [2, 3]]);
    assert.deepEqual([...h.ip], [], 'released at once on quorum loss');
    h.run(6000);
    assert.deepEqual([...h.ip], [2]);
    const seen = lastRenewalBefore(h, 1, cutAt);
    const took = h.actions.find((l) => l.node === 2 && l.action.type === 'AssignClusterIp')!.at;
    const s = DEFAULT_SETTINGS;
    assert.ok(took >= seen + s.leaseMs + s.releaseBudgetMs + s.leaseMarginMs, `n2 took the IP ${took - seen} ms after the last renewal it saw`);
  });

  it("other nodes wait for the holder's announced lease when it is longer than their own (a corosync.conf reload reached the holder first)", () => {
    const h = converged();
    const longer = transitionLeaseMs({ tokenMs: 3000, consensusMs: 3600 }, DEFAULT_SETTINGS.leaseRenewMs);
    // Only n1 sees the new timing yet.
    h.deliver(1, { type: 'config', version: 1, nodes: NODES, settings: { leaseMs: longer } });
    h.run(1000); // n1 renews with the new terms
    const renew = h.actions.filter((l) => l.node === 1 && l.action.type === 'SendCpg' && l.action.msg.kind === 'renew').at(-1)!.action;
    assert.equal(renew.type === 'SendCpg' && renew.msg.kind === 'renew' ? renew.msg.leaseMs : undefined, longer);
    const cutAt = h.now;
    h.stopRing();
    h.run(TRANSITION_MS);
    h.partition([[1], [2, 3]]);
    h.run(longer + 3000);
    assert.deepEqual([...h.ip], [2]);
    const seen = lastRenewalBefore(h, 1, cutAt);
    const took = h.actions.find((l) => l.node === 2 && l.action.type === 'AssignClusterIp')!.at;
    const wait = longer + DEFAULT_SETTINGS.releaseBudgetMs + DEFAULT_SETTINGS.leaseMarginMs;
    assert.ok(took >= seen + wait, `n2 took the IP ${took - seen} ms after n1's last renewal; n1 announced it may hold for ${wait} ms`);
    // And n1's watchdog deadline honoured the same terms: it had to be gone by then.
    assert.ok(took > seen + longer + DEFAULT_SETTINGS.releaseBudgetMs);
  });

  it("a holder whose lease grows keeps the old terms (lease and watchdog) until a renewal announcing the new ones came back", () => {
    const h = converged();
    const before = h.deliver(1, { type: 'tick' })!.watchdogDeadline;
    h.stopRing(); // its renewals now stay undelivered
    h.deliver(1, { type: 'config', version: 1, nodes: NODES, settings: { leaseMs: 10_000 } });
    h.run(500);
    const held = h.deliver(1, { type: 'tick' })!.watchdogDeadline;
    assert.equal(held, before, 'no renewal with the new terms came back: the deadline stays');
    h.partition([[1, 2, 3]]);
    h.run(500);
    const after = h.deliver(1, { type: 'tick' })!.watchdogDeadline;
    // The lease deadline (renewal + 10 s + budget) is now beyond agent liveness (now + fenceTimeoutMs).
    assert.equal(after, h.now + DEFAULT_SETTINGS.fenceTimeoutMs, `a renewal announcing the longer lease came back: deadline ${before} -> ${after}`);
  });

  it('an older agent in the view (ignores announced terms): the master holds and announces at most the old 1 s lease; without it, the full lease again', () => {
    // n3 plays an agent of the previous version: no lease terms in its messages.
    const legacy = (from: number, msg: Record<string, unknown>) => {
      if (from !== 3) return msg;
      const { leaseTerms: _a, renewLeaseMs: _b, renewReleaseBudgetMs: _c, ...old } = msg;
      return old;
    };
    const h = new Harness({ nodes: NODES, vms: VMS, owners: { vm1: 1, vm3: 3 }, wire: legacy });
    h.start();
    h.run(6000);
    assert.deepEqual([...h.ip], [1]);
    const announced = (since: number) =>
      h.actions.filter((l) => l.node === 1 && l.at >= since && l.action.type === 'SendCpg' && l.action.msg.kind === 'renew').map((l) => (l.action.type === 'SendCpg' && l.action.msg.kind === 'renew' ? l.action.msg.leaseMs : -1));
    const withLegacy = announced(3000);
    assert.ok(withLegacy.length > 0 && withLegacy.every((ms) => ms === LEGACY_LEASE_MS), `renewals announced ${withLegacy.join(',')}`);
    // n3 (the older agent) crashes: once the round without it completes, the full lease again.
    const crashAt = h.now;
    h.crash(3);
    h.run(1000);
    const after = announced(crashAt);
    assert.equal(after.at(-1), DEFAULT_SETTINGS.leaseMs);
    assert.deepEqual([...h.ip], [1]);
  });
});

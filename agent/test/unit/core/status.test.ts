import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { observeHeartbeats, provenStaleMs, type HeartbeatSeen } from '../../../src/core/heartbeats.ts';
import {
  clusterStatus,
  isUnstable,
  newFlapHistory,
  noteLinkBack,
  noteLinkLost,
  recoverySafety,
  selfStatusFrom,
  type SelfFacts,
  type StatusInput,
} from '../../../src/core/status.ts';
import { DEFAULT_SETTINGS, type Heartbeat } from '../../../src/core/types.ts';

describe('selfStatusFrom', () => {
  const table: Array<[SelfFacts, string]> = [
    [{ quorate: null, storageOk: true, testIpReachable: true }, 'starting'],
    [{ quorate: true, storageOk: null, testIpReachable: true }, 'starting'],
    [{ quorate: true, storageOk: true, testIpReachable: false }, 'member'],
    [{ quorate: true, storageOk: false, testIpReachable: true }, 'storage_isolation'],
    [{ quorate: false, storageOk: true, testIpReachable: true }, 'excluded'],
    [{ quorate: false, storageOk: true, testIpReachable: false }, 'network_isolation'],
    [{ quorate: false, storageOk: false, testIpReachable: false }, 'network_isolation'],
    [{ quorate: false, storageOk: false, testIpReachable: true }, 'storage_isolation'],
  ];
  for (const [facts, status] of table) {
    it(`${JSON.stringify(facts)} -> ${status}`, () => assert.equal(selfStatusFrom(facts).status, status));
  }
  it('explains excluded', () => {
    assert.match(selfStatusFrom({ quorate: false, storageOk: true, testIpReachable: true }).reason, /keep running VMs, release IP\/panel/);
  });
});

describe('clusterStatus', () => {
  const hb = (selfStatus: HeartbeatSeen['selfStatus'], firstSeenAt: number, key = '1:5'): HeartbeatSeen => ({ key, firstSeenAt, lastReadStart: 10_000, selfStatus, running: [] });
  const base: StatusInput = { inView: true, isMaster: false, reported: 'member', heartbeat: undefined, unstable: false, now: 10_000, storageTimeoutMs: 5000 };
  const table: Array<[string, Partial<StatusInput>, string]> = [
    ['member', {}, 'member'],
    ['master', { isMaster: true }, 'leader'],
    ['flapping member', { unstable: true }, 'network_unstable'],
    ['member reporting storage isolation', { reported: 'storage_isolation' }, 'storage_isolation'],
    ['member still starting', { reported: 'starting' }, 'unknown'],
    ['gone, never read', { inView: false }, 'offline'],
    ['gone, heartbeat stale', { inView: false, heartbeat: hb('member', 4000) }, 'full_failure'],
    ['gone, heartbeat file absent', { inView: false, heartbeat: hb(null, 9000, 'absent') }, 'full_failure'],
    ['gone, fresh heartbeat says excluded', { inView: false, heartbeat: hb('excluded', 9000) }, 'excluded'],
    ['gone, fresh heartbeat says network isolation', { inView: false, heartbeat: hb('network_isolation', 9000) }, 'network_isolation'],
    ['gone, fresh heartbeat still says member', { inView: false, heartbeat: hb('member', 9000) }, 'unknown'],
  ];
  for (const [name, input, status] of table) it(name, () => assert.equal(clusterStatus({ ...base, ...input }).status, status));
});

describe('link flaps (network_unstable)', () => {
  const s = { unstableWindowMs: 600_000, unstableFlaps: 3, unstableMaxOutageMs: 15_000 };
  it('three short outages within the window make a node unstable', () => {
    const h = newFlapHistory();
    for (const t of [0, 100_000, 200_000]) {
      noteLinkLost(h, t);
      noteLinkBack(h, t + 5_000, s);
    }
    assert.equal(isUnstable(h, 210_000, s), true);
    assert.equal(isUnstable(h, 900_000, s), false, 'old flaps leave the window');
  });
  it('long outages are not flaps', () => {
    const h = newFlapHistory();
    for (const t of [0, 100_000, 200_000]) {
      noteLinkLost(h, t);
      noteLinkBack(h, t + 20_000, s);
    }
    assert.equal(isUnstable(h, 230_000, s), false);
  });
  it('two flaps are not enough', () => {
    const h = newFlapHistory();
    for (const t of [0, 100_000]) {
      noteLinkLost(h, t);
      noteLinkBack(h, t + 1_000, s);
    }
    assert.equal(isUnstable(h, 110_000, s), false);
  });
});

describe('heartbeat staleness (reader clock)', () => {
  const hbOf = (seq: number, incarnation = 1): Heartbeat => ({ nodeid: 2, incarnation, seq, selfStatus: 'member', runningVms: ['vm1'] });
  it('measures from the first read that showed the value to the start of the last read', () => {
    const seen = new Map<number, HeartbeatSeen>();
    observeHeartbeats(seen, [2], [hbOf(1)], 0, 10);
    observeHeartbeats(seen, [2], [hbOf(1)], 1000, 1010);
    observeHeartbeats(seen, [2], [hbOf(1)], 2000, 2010);
    assert.equal(provenStaleMs(seen.get(2)!), 1990);
    observeHeartbeats(seen, [2], [hbOf(2)], 3000, 3010);
    assert.equal(provenStaleMs(seen.get(2)!), 0);
  });
  it('a restarted agent (new incarnation, same seq) counts as a change', () => {
    const seen = new Map<number, HeartbeatSeen>();
    observeHeartbeats(seen, [2], [hbOf(1, 1)], 0, 10);
    observeHeartbeats(seen, [2], [hbOf(1, 2)], 1000, 1010);
    assert.equal(seen.get(2)!.firstSeenAt, 1010);
  });
  it('a missing file is tracked as absent', () => {
    const seen = new Map<number, HeartbeatSeen>();
    observeHeartbeats(seen, [2, 3], [hbOf(1)], 0, 10);
    assert.equal(seen.get(3)!.key, 'absent');
  });
});

describe('recoverySafety', () => {
  const s = DEFAULT_SETTINGS; // storage 5000 + fence 5000, lease 1000, margin 200
  const hb = (p: Partial<HeartbeatSeen>): HeartbeatSeen => ({ key: '1:1', firstSeenAt: 0, lastReadStart: 0, selfStatus: 'member', running: [], ...p });
  const base = { node: 3, vm: 'vm1', inView: false, reported: undefined, heartbeat: undefined, goneAt: 1000, settings: s };
  const table: Array<[string, Partial<Parameters<typeof recoverySafety>[0]>, boolean, RegExp]> = [
    ['member reporting fenced with the VM stopped (ordered report)', { inView: true, reported: { status: 'storage_isolation', running: [] } }, true, /reported storage_isolation and has stopped vm1/],
    ['member still listing the VM', { inView: true, reported: { status: 'storage_isolation', running: ['vm1'] } }, false, /has not reported vm1 stopped/],
    ['good member', { inView: true, reported: { status: 'member', running: [] } }, false, /still a member/],
    ['gone, no heartbeat read yet', {}, false, /no storage heartbeat read yet/],
    ['gone, stale for storage+fence', { heartbeat: hb({ firstSeenAt: 0, lastReadStart: 10_000 }) }, true, /unchanged for 10000 ms/],
    ['stale proof that ended before the node left proves nothing (it came back, started, left again)', { goneAt: 20_000, heartbeat: hb({ firstSeenAt: 0, lastReadStart: 18_000 }) }, false, /waiting/],
    ['gone, stale but not long enough', { heartbeat: hb({ firstSeenAt: 0, lastReadStart: 9_999 }) }, false, /waiting/],
    ['fast path: fenced heartbeat read after the last possible start', { heartbeat: hb({ selfStatus: 'network_isolation', lastReadStart: 2200 }) }, true, /heartbeat says network_isolation with vm1 stopped/],
    ['fast path needs a read after goneAt + lease + margin', { heartbeat: hb({ selfStatus: 'network_isolation', lastReadStart: 2199 }) }, false, /waiting/],
    ['fast path needs the VM absent', { heartbeat: hb({ selfStatus: 'network_isolation', running: ['vm1'], lastReadStart: 5000 }) }, false, /waiting/],
    ['fast path needs a fenced status (member could be about to start)', { heartbeat: hb({ selfStatus: 'member', lastReadStart: 5000 }) }, false, /waiting/],
    ['excluded keeps its VM', { heartbeat: hb({ selfStatus: 'excluded', running: ['vm1'], lastReadStart: 5000 }) }, false, /excluded and keeps running vm1/],
  ];
  for (const [name, input, safe, reason] of table) {
    it(name, () => {
      const r = recoverySafety({ ...base, ...input });
      assert.equal(r.safe, safe, r.reason);
      assert.match(r.reason, reason);
    });
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterState } from '../../../src/corosync/state.ts';

const vq = { nodeId: 1, expectedVotes: 3, highestExpected: 3, totalVotes: 2, quorum: 2, quorate: true, flags: ['QUORATE'] };
const cfg = (prio: number) => ({
  nodes: [{ nodeid: 1, prio, replication: true, raw: { nodeid: '1', prio: String(prio) } }],
  configVersion: 7n,
  clusterName: 't',
  tokenMs: 1000,
});

test('connect announces connected first, then the full state', () => {
  const s = new ClusterState();
  s.setQuorum(true, 9n, [3, 1, 2]);
  s.setVotequorum(vq);
  s.setConfig(cfg(100));
  const events = s.connect(1);
  assert.deepEqual(events.map((e) => e.type), ['connected', 'quorum', 'votequorum', 'config']);
  assert.deepEqual(events[1], { type: 'quorum', quorate: true, ringSeq: 9n, members: [1, 2, 3] });
  const snap = s.snapshot();
  assert.equal(snap.connected, true);
  assert.equal(snap.localNodeId, 1);
  assert.deepEqual(snap.members, [1, 2, 3]);
  assert.equal(snap.configVersion, 7n);
});

test('config events only when something changed', () => {
  const s = new ClusterState();
  assert.ok(s.setConfig(cfg(100)));
  assert.equal(s.setConfig(cfg(100)), null);
  assert.equal(s.setConfig(cfg(150))?.nodes[0]?.prio, 150);
});

test('snapshot is a copy and disconnect forgets quorum but keeps config', () => {
  const s = new ClusterState();
  s.setQuorum(true, 1n, [1]);
  s.setVotequorum(vq);
  s.setConfig(cfg(100));
  s.setCpgMembers([{ nodeid: 1, pid: 42 }]);
  s.connect(1);
  const snap = s.snapshot();
  snap.members.push(99);
  snap.nodes[0]!.raw.prio = 'x';
  assert.deepEqual(s.snapshot().members, [1]);
  assert.equal(s.snapshot().nodes[0]!.raw.prio, '100');
  s.disconnect();
  const after = s.snapshot();
  assert.deepEqual(
    [after.connected, after.quorate, after.members, after.ringSeq, after.votequorum, after.cpgMembers],
    [false, false, [], undefined, undefined, []],
  );
  assert.equal(after.nodes.length, 1);
  assert.equal(after.localNodeId, 1);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acknowledged, chooseSource, copiesQuorum, mustRebuild, nextEpoch, type DbCopy } from '../../../src/core/db-role.ts';
import { parseGtidPos } from '../../../src/core/gtid.ts';

const copy = (nodeid: number, epoch: number, pos: string): DbCopy => ({ nodeid, epoch, pos: parseGtidPos(pos) });

test('copiesQuorum is a majority of the database nodes', () => {
  assert.deepEqual([1, 2, 3, 4, 5].map(copiesQuorum), [1, 2, 2, 3, 3]);
});

test('a promotion needs a majority of the database nodes to answer', () => {
  const r = chooseSource([1, 2, 3, 4, 5], [copy(1, 1, '0-1-10'), copy(5, 1, '0-1-12')], 1);
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /reached 2 of 5 database nodes \(n1, n5\), need 3/);
});

test('nodes with replication off do not count as copies', () => {
  const r = chooseSource([1, 2, 3], [copy(1, 1, '0-1-10'), copy(4, 1, '0-1-10'), copy(5, 1, '0-1-10')], 1);
  assert.equal(r.ok, false);
});

test('the most advanced copy of the highest epoch is the source; ties go to the preferred node', () => {
  const r = chooseSource([1, 2, 3], [copy(1, 2, '0-1-10'), copy(2, 2, '0-1-12'), copy(3, 2, '0-1-12')], 3);
  assert.ok(r.ok);
  assert.equal(r.source.nodeid, 3);
  assert.deepEqual(r.diverged, []);
});

test('a higher epoch wins over a longer old history, which is reported as diverged', () => {
  // n1 was primary in epoch 1 and took unacknowledged writes up to seq 20 while cut off; n2 was
  // promoted in epoch 2 from seq 9 and wrote acknowledged rows up to seq 15.
  const r = chooseSource([1, 2, 3, 4, 5], [copy(1, 1, '0-1-20'), copy(2, 2, '0-2-15'), copy(3, 2, '0-2-14')], 1);
  assert.ok(r.ok);
  assert.equal(r.source.nodeid, 2);
  assert.deepEqual(r.diverged.map((d) => d.copy.nodeid), [1]);
  assert.deepEqual(r.diverged[0]!.errant, [{ domain: 0, server: 1, seq: 20 }]);
});

test('nextEpoch is above every epoch seen and at least the term', () => {
  assert.equal(nextEpoch([], 0), 1);
  assert.equal(nextEpoch([3, 7], 5), 8);
  assert.equal(nextEpoch([3], 12), 12);
});

test('a write is acknowledged by a majority of the database nodes only', () => {
  assert.equal(acknowledged([1, 2, 3, 4, 5], [1, 5]), false);
  assert.equal(acknowledged([1, 2, 3, 4, 5], [1, 5, 2]), true);
  assert.equal(acknowledged([1, 2, 3], [1, 4, 5]), false);
  assert.equal(acknowledged([1, 2, 3], [1, 1, 2]), true);
});

test('mustRebuild names the transactions the primary lacks', () => {
  assert.deepEqual(mustRebuild(copy(1, 1, '0-1-20'), copy(2, 2, '0-2-15')), [{ domain: 0, server: 1, seq: 20 }]);
  assert.deepEqual(mustRebuild(copy(3, 2, '0-2-14'), copy(2, 2, '0-2-15')), []);
});

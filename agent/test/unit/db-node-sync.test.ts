import { test } from "node:test";
import assert from "node:assert/strict";
import { syncDecisions, type SyncMemory } from "../../src/effects/db/node-sync.ts";

const conf = (prio2: number) => [
  { nodeid: 1, prio: 30, replication: true },
  { nodeid: 2, prio: prio2, replication: true },
];
const db = (prio2: number) => new Map([[1, { prio: 30, replication: true }], [2, { prio: prio2, replication: true }]]);

test("node sync: import, admin edit -> desired (not reverted while pending), CLI change -> copied to the DB", () => {
  const mem: SyncMemory = { applied: new Map(), pending: new Map() };
  // First pass of a new master: the rows match corosync.conf.
  let r = syncDecisions(conf(20), db(20), mem);
  assert.deepEqual([r.copyToDb.length, r.desired], [0, null]);
  // Quiet pass.
  r = syncDecisions(conf(20), db(20), mem);
  assert.deepEqual([r.copyToDb.length, r.desired], [0, null]);
  // Admin sets n2's prio to 99 in the panel.
  r = syncDecisions(conf(20), db(99), mem);
  assert.equal(r.desired?.find((n) => n.nodeid === 2)?.prio, 99);
  // Distribution still under way: corosync.conf says 20, the DB must not be reverted.
  r = syncDecisions(conf(20), db(99), mem);
  assert.deepEqual([r.copyToDb.length, r.desired], [0, null]);
  // corosync.conf caught up.
  r = syncDecisions(conf(99), db(99), mem);
  assert.deepEqual([r.copyToDb.length, r.desired], [0, null]);
  // `corolistener set-node 2 --prio 5`: corosync.conf changed outside the panel -> copied to the DB.
  r = syncDecisions(conf(5), db(99), mem);
  assert.deepEqual(r.copyToDb.map((n) => [n.nodeid, n.prio]), [[2, 5]]);
  assert.equal(r.desired, null);
});

test("node sync: a row that differs at a new master's first pass is an admin intent, not reverted", () => {
  const mem: SyncMemory = { applied: new Map(), pending: new Map() };
  const r = syncDecisions(conf(20), db(99), mem);
  assert.equal(r.copyToDb.length, 0);
  assert.equal(r.desired?.find((n) => n.nodeid === 2)?.prio, 99);
  const missing = syncDecisions(conf(20), new Map([[1, { prio: 30, replication: true }]]), { applied: new Map(), pending: new Map() });
  assert.deepEqual(missing.copyToDb.map((n) => n.nodeid), [2], "a node without a row gets one from corosync.conf");
});

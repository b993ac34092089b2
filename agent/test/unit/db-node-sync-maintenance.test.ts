// Maintenance mode follows the same path as prio/replication: panel (DB row) -> desired config ->
// corosync.conf; a change made with `corolistener maintenance` is copied into the DB.
import { test } from "node:test";
import assert from "node:assert/strict";
import { syncDecisions, type SyncMemory } from "../../src/effects/db/node-sync.ts";
import { renderDistributedConfig } from "../../src/effects/config-sync.ts";
import { parseNodelist } from "../../src/corosync/parse.ts";

const conf = (m2: boolean) => [
  { nodeid: 1, prio: 30, replication: true, maintenance: false },
  { nodeid: 2, prio: 20, replication: true, maintenance: m2 },
];
const db = (m2: boolean) => new Map([[1, { prio: 30, replication: true, maintenance: false }], [2, { prio: 20, replication: true, maintenance: m2 }]]);

test("node sync: maintenance set in the panel becomes desired config; set by the CLI, it is copied to the DB", () => {
  const mem: SyncMemory = { applied: new Map(), pending: new Map() };
  assert.equal(syncDecisions(conf(false), db(false), mem).desired, null);
  const r = syncDecisions(conf(false), db(true), mem);
  assert.equal(r.desired?.find((n) => n.nodeid === 2)?.maintenance, true);
  assert.equal(syncDecisions(conf(false), db(true), mem).desired, null, "pending: not sent twice, not reverted");
  assert.equal(syncDecisions(conf(true), db(true), mem).copyToDb.length, 0);
  // `corolistener maintenance 2 off` changed corosync.conf: the DB follows.
  const back = syncDecisions(conf(false), db(true), mem);
  assert.deepEqual(back.copyToDb.map((n) => [n.nodeid, n.maintenance]), [[2, false]]);
});

test("maintenance is written into corosync.conf and read back from cmap", () => {
  const text = [
    "totem {", "  version: 2", "  cluster_name: t", "  config_version: 1", "}",
    "nodelist {", "  node {", "    nodeid: 1", "    ring0_addr: 10.0.0.1", "    prio: 30", "  }", "  node {", "    nodeid: 2", "    ring0_addr: 10.0.0.2", "    prio: 20", "  }", "}",
    "quorum {", "  provider: corosync_votequorum", "}", "",
  ].join("\n");
  const out = renderDistributedConfig(text, 2, conf(true));
  assert.match(out, /nodeid: 2[\s\S]*maintenance: on/);
  assert.match(out, /nodeid: 1[\s\S]*maintenance: off[\s\S]*nodeid: 2/);
  const nodes = parseNodelist({ "nodelist.node.0.nodeid": "1", "nodelist.node.1.nodeid": "2", "nodelist.node.1.maintenance": "on" });
  assert.deepEqual(nodes.map((n) => [n.nodeid, n.maintenance]), [[1, false], [2, true]]);
});

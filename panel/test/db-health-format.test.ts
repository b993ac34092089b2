// A node's database in words (panel/web/src/db-health.ts), as the node cards and the node page show it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { describeDb, fmtLag, reasonText } from "../web/src/db-health.ts";
import type { DbHealth } from "../web/src/api.ts";

const h = (o: Partial<DbHealth> = {}): DbHealth => ({ reachable: true, role: "replica", replication: "running", source: "10.0.0.1", sourceName: "n1", lagSeconds: 0, gtid: "0-1-42", checkedAt: null, ...o });
const node = (db: DbHealth | null, dbEligible: boolean | null = null, dbReason: string | null = null) => ({ db, dbEligible, dbReason });

test("lag has a unit", () => {
  assert.deepEqual([0, 1, 119, 120, 3599, 7200, 9000].map(fmtLag), ["0 s", "1 s", "119 s", "2 min", "60 min", "2.0 h", "2.5 h"]);
});

test("healthy: a primary and a replica with its source and lag", () => {
  const p = describeDb(node(h({ role: "primary", replication: "none", source: undefined, sourceName: null, lagSeconds: undefined }), true));
  assert.deepEqual([p.tone, p.line, p.problems, p.eligible], ["good", "Primary", [], "yes"]);
  const r = describeDb(node(h()));
  assert.deepEqual([r.tone, r.line, r.lag, r.problems, r.eligible], ["good", "Replica of n1 · running · lag 0 s", "lag 0 s", [], null]);
  assert.equal(describeDb(node(h({ sourceName: null }))).line, "Replica of 10.0.0.1 · running · lag 0 s", "an address when no node has it");
  assert.equal(describeDb(node(h({ lagSeconds: null }))).line, "Replica of n1 · running · lag unknown");
  assert.equal(describeDb(node(h({ lagSeconds: 300 }))).tone, "warn", "far behind");
});

test("broken: replication errors, a full disk and an unreachable database are red with the cause", () => {
  const e = describeDb(node(h({ replication: "error", error: "IO error 1236: diverged", lagSeconds: undefined })));
  assert.deepEqual([e.tone, e.line, e.problems], ["bad", "Replica of n1 · broken", ["IO error 1236: diverged"]]);
  const full = describeDb(node(h({ replication: "disk-full", error: "disk full: the replica cannot write its relay log" })));
  assert.deepEqual([full.tone, full.line], ["bad", "Replica of n1 · disk full"]);
  const away = describeDb(node({ reachable: false, role: "unknown", replication: "none", error: "connection refused", sourceName: null, checkedAt: null }, false, "database unreachable"));
  assert.deepEqual([away.tone, away.line, away.problems, away.eligible], ["bad", "Unreachable", ["Unreachable: connection refused; not eligible as master"], "no — unreachable"]);
  const connecting = describeDb(node(h({ replication: "connecting", error: "IO error 2003: Can't connect" })));
  assert.deepEqual([connecting.tone, connecting.problems], ["warn", ["IO error 2003: Can't connect"]]);
});

test("not eligible as master: the reason, with what the cluster does about it", () => {
  const d = describeDb(node(h({ role: "read-only", replication: "none", source: undefined, sourceName: null }), false, "database diverged: being re-cloned from n2"));
  assert.deepEqual([d.tone, d.line, d.problems, d.eligible], ["bad", "Read-only · not replicating", ["Diverged: being re-cloned from n2; not eligible as master"], "no — diverged: being re-cloned from n2"]);
  // Not taking part is amber, not red.
  const off = describeDb(node(h({ role: "off", replication: "none", source: undefined, sourceName: null }), false, "replication is off on this node"));
  assert.deepEqual([off.tone, off.line, off.problems], ["warn", "Replication off", ["Replication is off on this node; not eligible as master"]]);
  assert.deepEqual(describeDb(node(h(), false)).problems, ["Not eligible as master"]);
  // A verdict without a reading (older agent or no reading yet).
  assert.deepEqual(describeDb(node(null, false, "database unreachable")).problems, ["Unreachable; not eligible as master"]);
  // What the cluster does comes before the database's own error.
  const both = describeDb(node(h({ replication: "error", error: "IO error 1236: diverged" }), false, "database diverged: being re-cloned from n1"));
  assert.deepEqual(both.problems, ["Diverged: being re-cloned from n1; not eligible as master", "IO error 1236: diverged"]);
  assert.equal(reasonText("the database is being rebuilt from n1"), "Being rebuilt from n1");
});

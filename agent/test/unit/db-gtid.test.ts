import { test } from "node:test";
import assert from "node:assert/strict";
import { containsPos, errantGtids, formatGtidPos, mergeGtidPos, mostAdvanced, parseGtidPos } from "../../src/effects/db/gtid.ts";

const P = parseGtidPos;

test("GTID positions parse, keep the newest per domain, and format back", () => {
  assert.equal(formatGtidPos(P("1-2-5, 0-1-100")), "0-1-100,1-2-5");
  assert.equal(formatGtidPos(P("")), "");
  assert.equal(formatGtidPos(P("0-1-5,0-2-7")), "0-2-7");
  assert.throws(() => P("0-1"), /not a GTID: "0-1"/);
});

test("containment: ahead contains behind; same seq from another server is divergence", () => {
  assert.ok(containsPos(P("0-1-10"), P("0-1-9")));
  assert.ok(containsPos(P("0-2-10"), P("0-1-9")), "a later seq from the new primary contains the old one");
  assert.ok(!containsPos(P("0-1-9"), P("0-1-10")));
  assert.ok(!containsPos(P("0-1-10"), P("0-2-10")));
  assert.ok(!containsPos(P("0-1-10"), P("0-1-10,1-1-1")), "a domain it lacks");
  assert.ok(containsPos(P("0-1-10"), P("")));
});

test("errant GTIDs: a replica ahead of the primary, or equal seq from another server", () => {
  assert.deepEqual(errantGtids(P("0-1-10"), P("0-1-12")), []);
  assert.deepEqual(errantGtids(P("0-3-13"), P("0-1-12")), [{ domain: 0, server: 3, seq: 13 }]);
  assert.deepEqual(errantGtids(P("0-3-12"), P("0-1-12")), [{ domain: 0, server: 3, seq: 12 }]);
  assert.deepEqual(errantGtids(P("1-3-1"), P("0-1-12")), [{ domain: 1, server: 3, seq: 1 }]);
});

test("mergeGtidPos takes the later per domain", () => {
  assert.equal(formatGtidPos(mergeGtidPos(P("0-1-5,1-1-3"), P("0-2-7"))), "0-2-7,1-1-3");
});

test("mostAdvanced picks the copy that contains all others, preferring self on a tie", () => {
  const c = (nodeid: number, pos: string) => ({ nodeid, pos: P(pos) });
  assert.equal(mostAdvanced([c(2, "0-1-10"), c(3, "0-1-12")], 2).best.nodeid, 3);
  assert.equal(mostAdvanced([c(3, "0-1-12"), c(2, "0-1-12")], 2).best.nodeid, 2);
  assert.equal(mostAdvanced([c(2, ""), c(3, "")], 2).best.nodeid, 2);
  const split = mostAdvanced([c(2, "0-1-12"), c(3, "0-3-12")], 2);
  assert.deepEqual(split.diverged.map((d) => d.nodeid), [3]);
  assert.equal(split.best.nodeid, 2);
});

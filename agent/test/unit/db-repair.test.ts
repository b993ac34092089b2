// The pure parts of a diverged replica's re-clone (repair.ts): finding the errant transactions,
// reading the tools' output, the option file, and what health and eligibility say.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  classifyProbe,
  clientOptionFile,
  compressGtids,
  countRowChanges,
  describeRepair,
  divergence,
  dumpGtidPos,
  errantHeader,
  fileStamp,
  findErrant,
  gtidOfEvent,
  localEligibility,
  optionValue,
  quickVerdict,
  type DbRepairStatus,
  type ErrantSource,
  type RepairReport,
} from "../../src/effects/db/repair.ts";
import { formatGtidPos, parseGtidPos, type Gtid } from "../../src/effects/db/gtid.ts";
import type { DbNodeHealth } from "../../src/effects/db/health.ts";

const g = (s: string): Gtid => [...parseGtidPos(s).values()][0]!;
const list = (s: string) => s.split(",").map(g);

test("option files quote what the MariaDB parser would otherwise cut or un-escape", () => {
  assert.equal(optionValue('p#a"s\\w'), '"p#a\\"s\\\\w"');
  assert.equal(clientOptionFile({ user: "ha_agent", password: "se#cret" }, { socketPath: "/run/mysqld/mysqld.sock" }), '[client]\nuser="ha_agent"\npassword="se#cret"\nsocket="/run/mysqld/mysqld.sock"\nprotocol=socket\n');
  assert.match(clientOptionFile({ user: "u", password: "p" }, { host: "10.0.0.2", port: 3307 }), /host="10\.0\.0\.2"\nport=3307\nprotocol=tcp\n$/);
});

test("GTIDs of binlog events, and compressed lists", () => {
  assert.deepEqual(gtidOfEvent("BEGIN GTID 0-1-5"), { domain: 0, server: 1, seq: 5 });
  assert.deepEqual(gtidOfEvent("GTID 0-2-17 cid=42"), { domain: 0, server: 2, seq: 17 });
  assert.equal(gtidOfEvent("Server ver: 10.11"), null);
  assert.equal(compressGtids(list("0-2-5,0-2-6,0-2-7,0-3-8,0-2-9,1-2-1,1-2-2")), "0-2-5..7,0-3-8,0-2-9,1-2-1..2");
  assert.equal(compressGtids([]), "");
});

test("the primary's answer to a GTID probe", () => {
  assert.equal(classifyProbe(0, "WARNING: Did not reach stop position 0-1-5 before end of input"), "has");
  assert.equal(classifyProbe(1, "ERROR: Got error reading packet from server: Error: connecting slave requested to start from GTID 0-2-5, which is not in the master's binlog"), "lacks");
  assert.equal(classifyProbe(1, "ERROR: ... Could not find GTID state requested by slave in any binlog files. Probably the slave state is too old and required binlog files have been purged."), "purged");
  const other = classifyProbe(1, "ERROR: Failed on connect: Access denied");
  assert.ok(other instanceof Error && /Access denied/.test(other.message));
  // Without asking: ahead of the primary, or the same sequence number from another server.
  const p = parseGtidPos("0-1-10");
  assert.equal(quickVerdict(g("0-2-11"), p), "lacks");
  assert.equal(quickVerdict(g("0-2-10"), p), "lacks");
  assert.equal(quickVerdict(g("0-1-10"), p), "has");
  assert.equal(quickVerdict(g("1-1-1"), p), "lacks", "a domain the primary never had");
  assert.equal(quickVerdict(g("0-2-9"), p), null, "behind: only the primary knows");
});

/** A node's binlog as files of GTIDs; the primary's history as a set. */
function fake(files: Record<string, string>, primary: string) {
  const names = Object.keys(files);
  const gtidsOf = (f: string) => (files[f] ? list(files[f]!) : []);
  const probes: string[] = [];
  const src: ErrantSource = {
    binlogs: async () => names,
    fileStart: async (f) => {
      const before = names.slice(0, names.indexOf(f)).flatMap(gtidsOf);
      return parseGtidPos(before.map((x) => `${x.domain}-${x.server}-${x.seq}`).join(","));
    },
    gtids: async (fs, d) => fs.flatMap(gtidsOf).filter((x) => x.domain === d),
  };
  const set = new Set(primary.split(","));
  const has = async (x: Gtid) => {
    const s = `${x.domain}-${x.server}-${x.seq}`;
    probes.push(s);
    return set.has(s);
  };
  const last = parseGtidPos(names.flatMap(gtidsOf).map((x) => `${x.domain}-${x.server}-${x.seq}`).join(","));
  return { src, has, probes, last };
}

test("errant transactions: an old primary that wrote on while cut off (behind in sequence numbers, so the primary refuses it)", async () => {
  const f = fake({ b1: "0-1-1,0-1-2,0-1-3", b2: "0-1-4,0-1-5", b3: "0-1-6,0-1-7" }, "0-1-1,0-1-2,0-1-3,0-1-4,0-2-5,0-2-6,0-2-7,0-2-8,0-2-9");
  const r = await findErrant(f.last, f.src, f.has);
  assert.equal(compressGtids(r.errant), "0-1-5..7");
  assert.equal(formatGtidPos(r.start), "0-1-4", "decoding starts after the last shared one");
  assert.deepEqual(r.beyondBinlog, []);
});

test("errant transactions: a stray write on a replica (ahead), a clean node, a node whose whole binlog is errant", async () => {
  const stray = fake({ b1: "0-1-1,0-1-2,0-2-3" }, "0-1-1,0-1-2");
  const r = await findErrant(stray.last, stray.src, stray.has);
  assert.equal(compressGtids(r.errant), "0-2-3");
  assert.equal(formatGtidPos(r.start), "0-1-2");

  const clean = fake({ b1: "0-1-1,0-1-2" }, "0-1-1,0-1-2,0-1-3");
  const c = await findErrant(clean.last, clean.src, clean.has);
  assert.deepEqual(c.errant, []);
  assert.equal(formatGtidPos(c.start), "0-1-2");
  assert.deepEqual(clean.probes, ["0-1-2"]);

  // Everything the node's binlogs hold is errant: nothing shared to start after.
  const all = fake({ b1: "0-3-1,0-3-2" }, "0-1-1,0-1-2,0-1-3");
  const a = await findErrant(all.last, all.src, all.has);
  assert.equal(compressGtids(a.errant), "0-3-1..2");
  assert.equal(formatGtidPos(a.start), "");
});

test("errant transactions: a long history is searched, not probed one by one", async () => {
  const n = 5000;
  const shared = Array.from({ length: n }, (_, i) => `0-1-${i + 1}`);
  const mine = [...shared.slice(0, 4000), ...Array.from({ length: 1000 }, (_, i) => `0-2-${4001 + i}`)];
  const f = fake({ b1: mine.slice(0, 2500).join(","), b2: mine.slice(2500).join(",") }, shared.join(","));
  const r = await findErrant(f.last, f.src, f.has);
  assert.equal(compressGtids(r.errant), "0-2-4001..5000");
  assert.equal(formatGtidPos(r.start), "0-1-4000");
  assert.ok(f.probes.length < 20, `${f.probes.length} probes`);
});

test("a dump's GTID position, row changes in decoded binlog output, file names, the saved file's header", () => {
  const tail = "INSERT INTO `t` VALUES (1,'-- SET GLOBAL gtid_slave_pos=x');\n--\n-- The deferred gtid setting\n--\n\n-- SET GLOBAL gtid_slave_pos='0-1-20009';\n/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n";
  assert.equal(dumpGtidPos(tail), "0-1-20009");
  assert.equal(dumpGtidPos("no position"), null);
  assert.equal(countRowChanges("### INSERT INTO `ha`.`t`\n### SET\n###   @1=4\n### UPDATE `ha`.`t`\n### DELETE FROM `ha`.`t`\n#### INSERT INTO x\n"), 3);
  assert.equal(fileStamp(new Date("2025-01-02T03:04:05.678Z")), "2025-01-02T03-04-05.678Z");
  const h = errantHeader({ self: 2, primary: 1, at: new Date("2025-01-02T03:04:05Z"), why: "errant\nGTIDs", errant: "0-2-5", errantComplete: false, localPos: "0-2-5", primaryPos: "0-1-7", dumpFiles: ["/d/x-dump-ha.sql"] });
  assert.ok(h.split("\n").every((l) => l === "" || l.startsWith("--")), "only comments");
  assert.match(h, /^-- node: n2$/m);
  assert.match(h, /^-- primary: n1$/m);
  assert.match(h, /^-- errant GTIDs \(n2 had them, n1 does not\): 0-2-5$/m);
  assert.match(h, /^-- why: errant\n-- GTIDs$/m);
  assert.match(h, /fork predates/);
  assert.match(h, /\/d\/x-dump-ha\.sql/);
});

const node = (o: Partial<DbNodeHealth>): DbNodeHealth => ({ nodeid: 2, reachable: true, role: "replica", replication: "running", gtid: "0-1-10", ...o });

test("the watch's reading of a diverged or refused replica", () => {
  const primary = node({ nodeid: 1, role: "primary", replication: "none", gtid: "0-1-10" });
  assert.equal(divergence(node({}), primary), null);
  assert.match(divergence(node({ replication: "error", error: "IO error 1236: Error: connecting slave requested to start from GTID 0-2-9, which is not in the master's binlog" }), primary)!, /refused it: IO error 1236/);
  assert.match(divergence(node({ replication: "error", error: "SQL error 1950: An attempt was made to binlog GTID 0-1-11 which would create an out-of-order sequence number" }), primary)!, /diverged/);
  assert.match(divergence(node({ gtid: "0-2-11" }), primary)!, /errant GTIDs: 0-2-11/);
  assert.equal(divergence(node({ replication: "error", error: "SQL error 1062: Duplicate entry" }), primary), null, "other errors are reported, not repaired");
  assert.equal(divergence(node({ gtid: "0-2-11" }), { ...primary, reachable: false }), null);
});

const report: RepairReport = {
  node: 2, primary: 1, why: "x", errant: "0-2-5", errantCount: 1, errantComplete: true, discardedFile: "/d/f-errant.sql", dumpFiles: [], discardedRows: 1,
  discardedBytes: 10, clonedBytes: 10, clonedRows: 3, position: "0-1-7", databases: ["ha"], problems: [], phases: [], totalMs: 1234,
};

test("health text and eligibility as master", () => {
  const repairing: DbRepairStatus = { state: "repairing", primary: 1, since: 0, why: "x", errant: "0-2-5" };
  assert.equal(describeRepair(repairing), "diverged: being re-cloned from n1 (discarding 0-2-5)");
  assert.deepEqual(localEligibility(node({}), repairing), { eligible: false, reason: "diverged: being re-cloned from n1 (discarding 0-2-5)" });
  const failed: DbRepairStatus = { state: "diverged", primary: 1, since: 0, why: "errant GTIDs 0-2-5", failures: 2, lastError: "saving failed", nextAttemptAt: Date.parse("2025-01-01T00:00:00Z") };
  const f = localEligibility(node({ replication: "error", error: "IO error 1236" }), failed);
  assert.equal(f.eligible, false);
  assert.match(f.reason, /^diverged from n1: errant GTIDs 0-2-5; re-clone failed 2 time\(s\): saving failed; next re-clone attempt at 2025-01-01T00:00:00.000Z$/);
  const repaired: DbRepairStatus = { state: "repaired", primary: 1, at: Date.parse("2025-01-01T00:00:00Z"), report };
  assert.deepEqual(localEligibility(node({}), repaired), { eligible: true, reason: "replica running; repaired at 2025-01-01T00:00:00.000Z: re-cloned from n1 in 1234 ms, discarded 0-2-5 (saved in /d/f-errant.sql)" });
  assert.deepEqual(localEligibility(node({ reachable: false, role: "unknown", replication: "none", error: "connect ECONNREFUSED" }), null), { eligible: false, reason: "the local database server does not answer: connect ECONNREFUSED" });
  assert.deepEqual(localEligibility(node({ replication: "error", error: "SQL error 1062: Duplicate entry" }), null), { eligible: false, reason: "replication broken: SQL error 1062: Duplicate entry" });
  assert.equal(localEligibility(node({ replication: "disk-full", error: "disk full" }), null).eligible, false);
  assert.deepEqual(localEligibility(node({ role: "primary", replication: "none" }), null), { eligible: true, reason: "primary" });
  assert.deepEqual(localEligibility(undefined, null), { eligible: true, reason: "database not checked yet" });
});

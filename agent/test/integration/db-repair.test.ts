// A diverged or refused replica repairs itself (repair.ts, wired in DbEffects), on a real lab: one
// mariadbd per node, no agents. n1 is the primary, n2 the replica that diverges, n3 a healthy replica.
//  - saving what it would discard is impossible: nothing is wiped, a clear error, an incident;
//  - follow() finds n2 diverged and re-clones it: it replicates, has n1's data and not its own
//    errant row, which is in the saved file; a db-repair incident on n1 names it all;
//  - the watch sees n2's replica stopped with error 1236 (refused), or its SQL thread stopped on
//    a stray write: it re-clones n2 once.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Lab } from "../../../lab/src/index.ts";
import { APP_DATABASE, startMariadb } from "../../../lab/src/mariadb.ts";
import { readState } from "../../src/effects/db/state.ts";
import type { DbEffects } from "../../src/effects/db/effects.ts";
import { effectsOf, migrateNode, q, replicationOf, waitConverged, withConn, writeRows } from "./db-lab.ts";

const PRIMARY = 1;
const BAD = 2;
const OTHER = 3;
/** Rows in the application database when n2 is re-cloned (the repair-time measurement). */
const BULK_ROWS = Number(process.env.DB_REPAIR_ROWS ?? 10_000);

describe("a diverged replica re-clones itself from the primary", { timeout: 240_000 }, () => {
  let lab: Lab;
  const off = new Set<number>();
  const effects: DbEffects[] = [];
  const fx = (id: number, config = {}, log: string[] = []) => {
    const f = effectsOf(lab, id, off, log, config);
    effects.push(f);
    return f;
  };
  const incidents = (kind: string, sinceId = 0) =>
    withConn(lab, PRIMARY, (c) => q<{ id: number; actor: string; severity: string; nodeid: number; summary: string; reason: string }>(c, `SELECT id, actor, severity, nodeid, summary, reason FROM ${APP_DATABASE}.incidents WHERE kind = ? AND id > ? ORDER BY id`, [kind, sinceId]));
  const lastIncidentId = async () => Number((await withConn(lab, PRIMARY, (c) => q(c, `SELECT COALESCE(MAX(id), 0) AS id FROM ${APP_DATABASE}.incidents`)))[0]!.id);
  const tags = async (id: number, like: string) => (await withConn(lab, id, (c) => q<{ summary: string }>(c, `SELECT summary FROM ${APP_DATABASE}.incidents WHERE summary LIKE ? ORDER BY summary`, [like]))).map((r) => r.summary);
  const count = async (id: number) => Number((await withConn(lab, id, (c) => q(c, `SELECT COUNT(*) AS n FROM ${APP_DATABASE}.incidents`)))[0]!.n);
  /** A normal binlogged write on n2 while it does not replicate: a GTID n1 never has. */
  const strayWrite = async (tag: string, stopFirst = true) =>
    withConn(lab, BAD, async (c) => {
      if (stopFirst) await c.query("STOP SLAVE");
      await c.query("SET GLOBAL read_only = OFF");
      await c.query(`INSERT INTO ${APP_DATABASE}.incidents (actor, kind, summary, reason) VALUES ('stray', 'stray', ?, 'errant-value-${tag}')`, [tag]);
      await c.query("SET GLOBAL read_only = ON");
    });
  const until = async (what: string, cond: () => Promise<boolean>, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** n2 replicates from n1 again, has everything n1 has and none of `errantTag`. */
  const assertRepaired = async (errantTag: string) => {
    const st = await withConn(lab, BAD, (c) => readState(c));
    assert.equal(st.readOnly, true);
    assert.equal(st.replica?.masterHost, lab.topo.nodes.find((n) => n.id === PRIMARY)!.ctlAddr);
    assert.deepEqual([st.replica?.ioRunning, st.replica?.sqlRunning], ["Yes", true], JSON.stringify(st.replica));
    const more = await writeRows(lab, PRIMARY, 3, `after-${errantTag}`);
    await waitConverged(lab, BAD, PRIMARY);
    assert.deepEqual(await tags(BAD, `after-${errantTag}-%`), more);
    assert.equal(await count(BAD), await count(PRIMARY), "n2 has exactly n1's rows");
    assert.deepEqual(await tags(BAD, errantTag), [], "the errant row is gone");
    const dbs = (id: number) => withConn(lab, id, async (c) => (await q<{ db: string }>(c, "SELECT SCHEMA_NAME AS db FROM information_schema.SCHEMATA ORDER BY 1")).map((r) => r.db));
    assert.deepEqual(await dbs(BAD), await dbs(PRIMARY), "every database of the primary was cloned");
  };
  const timings: string[] = [];

  before(async () => {
    lab = await Lab.up({ name: "dbrp", nodes: 3 });
    await Promise.all(lab.topo.nodes.map((n) => startMariadb(lab, n.id)));
    await replicationOf(lab, PRIMARY, off).promote();
    await migrateNode(lab, PRIMARY);
    // The application database the re-clone copies: BULK_ROWS incidents of ~250 bytes each.
    await withConn(lab, PRIMARY, (c) =>
      c.query(`INSERT INTO ${APP_DATABASE}.incidents (actor, kind, summary, reason) SELECT 'bulk', 'bulk', CONCAT('bulk-', seq), REPEAT('x', 200) FROM ${APP_DATABASE}.seq_1_to_${BULK_ROWS}`),
    );
    await writeRows(lab, PRIMARY, 20, "start");
    for (const id of [BAD, OTHER]) await waitConverged(lab, id, PRIMARY, 60_000);
  });
  after(async () => {
    for (const f of effects) f.stop();
    if (timings.length) console.log(timings.map((t) => `# ${t}`).join("\n"));
    await lab?.down();
  });

  it("saving what it would discard is impossible: nothing is wiped, a clear error and an incident", async () => {
    const tag = `errant-${randomBytes(3).toString("hex")}`;
    await strayWrite(tag);
    await writeRows(lab, PRIMARY, 5, "while-diverged"); // n1 goes further: it refuses n2 (1236)
    const since = await lastIncidentId();
    const before = await withConn(lab, BAD, (c) => readState(c));
    const file = join(lab.nodeDir(BAD), "not-a-dir");
    writeFileSync(file, "a regular file\n");
    const bad = fx(BAD, { discardDir: join(file, "discarded") });
    await assert.rejects(bad.follow(PRIMARY, "test: follow n1"), (err: Error) => {
      assert.match(err.message, /^n2 was not re-cloned from n1: saving what it would discard under .*not-a-dir\/discarded failed: ENOTDIR.*; nothing was changed on it$/);
      return true;
    });
    bad.stop(); // no retries
    const after = await withConn(lab, BAD, (c) => readState(c));
    assert.deepEqual(await tags(BAD, tag), [tag], "the errant row is still there");
    assert.equal(after.readOnly, true);
    assert.deepEqual([...after.binlogPos.values()], [...before.binlogPos.values()], "its binlog was not reset");
    assert.notEqual(after.replica?.ioRunning, "Yes", "not replicating");
    const [inc] = await incidents("db-repair-failed", since);
    assert.ok(inc, "an incident on the primary");
    assert.deepEqual([inc.actor, inc.severity, inc.nodeid], ["n2", "error", BAD]);
    assert.equal(inc.summary, "n2 diverged from n1 and could not be re-cloned");
    assert.match(inc.reason, /ENOTDIR.*nothing was changed on it/);
    assert.equal(bad.localProblem().eligible, false);
    assert.match(bad.localProblem().reason, /^diverged from n1: n2 has transactions the primary n1 does not have .*re-clone failed 1 time\(s\): .*ENOTDIR/);
  });

  it(`follow() finds n2 diverged and re-clones it (${BULK_ROWS} rows): it replicates, the errant row is kept in a file and gone from n2`, async () => {
    const [errantTag] = await tags(BAD, "errant-%");
    assert.ok(errantTag, "n2 is still diverged from the previous test");
    const since = await lastIncidentId();
    const log: string[] = [];
    const f = fx(BAD, {}, log);
    const t0 = performance.now();
    assert.equal(await f.follow(PRIMARY, "test: follow n1"), "repaired");
    const ms = Math.round(performance.now() - t0);
    await assertRepaired(errantTag!);

    const st = f.repairState();
    assert.equal(st?.state, "repaired");
    const report = st!.state === "repaired" ? st!.report : null!;
    assert.match(report.errant, /^0-2-\d+$/, "one errant GTID of n2");
    assert.ok(report.discardedFile.startsWith(join(lab.nodeDir(BAD), "db-discarded")), report.discardedFile);
    assert.match(report.discardedFile, /\/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-n2-errant\.sql$/);
    const saved = readFileSync(report.discardedFile, "utf8");
    assert.match(saved, /^-- node: n2$/m);
    assert.match(saved, /^-- primary: n1$/m);
    assert.ok(saved.includes(`errant GTIDs (n2 had them, n1 does not): ${report.errant}`));
    assert.ok(saved.includes(`'${errantTag}'`) && saved.includes(`'errant-value-${errantTag}'`), "the errant row's values are in the file");
    assert.equal(report.discardedRows, 1);
    const dump = report.dumpFiles.find((x) => x.endsWith(`-dump-${APP_DATABASE}.sql`));
    assert.ok(dump && existsSync(dump), "n2's copy before the wipe");
    assert.ok(readFileSync(dump, "utf8").includes(errantTag!), "the dump has the errant row too");
    assert.ok(report.clonedRows! >= BULK_ROWS, `${report.clonedRows} rows cloned`);
    assert.deepEqual(report.phases.map((p) => p.name), ["survey", "save", "dump", "wipe", "load", "replicate"]);
    assert.ok(log.some((l) => /re-clone of n2 from n1: save done/.test(l)), log.join("\n"));

    const [inc] = await incidents("db-repair", since);
    assert.ok(inc, "a db-repair incident on the primary");
    assert.deepEqual([inc.actor, inc.severity, inc.nodeid], ["n2", "warning", BAD]);
    assert.match(inc.summary, /^n2 diverged from n1 and was re-cloned from it in \d+\.\d s$/);
    assert.ok(inc.reason.includes(`discarded errant GTIDs: ${report.errant}`), inc.reason);
    assert.ok(inc.reason.includes(report.discardedFile), inc.reason);
    assert.equal((await incidents("db-replica-failed", since)).length, 0, "no failure recorded");

    await f.watchOnce();
    assert.equal(f.localProblem().eligible, true);
    assert.match(f.localProblem().reason, /^replica running; repaired at .*: re-cloned from n1 in \d+ ms, discarded 0-2-\d+/);
    assert.match(f.health()!.nodes.find((n) => n.nodeid === BAD)!.repair!, /^repaired at /);
    assert.equal(await f.follow(PRIMARY, "test: again"), "already");
    const p = Object.fromEntries(report.phases.map((x) => [x.name, x.ms]));
    timings.push(`re-clone of n2 (${report.clonedRows} rows, ${report.clonedBytes} bytes dumped) via follow: ${ms} ms in follow(), ${report.totalMs} ms repair: ${Object.entries(p).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  });

  it("the watch sees n2's replica refused with error 1236 and re-clones it once", async () => {
    const f = fx(BAD);
    assert.equal(await f.follow(PRIMARY, "test: follow n1"), "already");
    const tag = `errant-${randomBytes(3).toString("hex")}`;
    await strayWrite(tag);
    await writeRows(lab, PRIMARY, 5, "refused");
    // Restarted from everything it has (as a follow does), it asks n1 for its own GTID: refused.
    await withConn(lab, BAD, async (c) => {
      await c.query("SET GLOBAL gtid_slave_pos = @@global.gtid_current_pos");
      await c.query("START SLAVE");
    });
    await until("n2's replica stops with 1236", async () => (await withConn(lab, BAD, (c) => readState(c))).replica?.ioErrno === 1236);
    const since = await lastIncidentId();
    const h = (await f.watchOnce()).nodes.find((n) => n.nodeid === BAD)!;
    assert.match(h.error ?? "", /^IO error 1236: /);
    assert.equal(f.localProblem().eligible, false, "not eligible while diverged");
    await f.idle();
    await assertRepaired(tag);
    const [inc] = await incidents("db-repair", since);
    assert.ok(inc?.reason.includes("the primary refused it: IO error 1236"), inc?.reason);
    await f.watchOnce();
    await f.idle();
    assert.equal((await incidents("db-repair", since)).length, 1, "repaired once");
    assert.equal((await incidents("db-replica-error", since)).length, 0, "the watch did not record it as a plain replica error");
    assert.equal(f.localProblem().eligible, true);
    const st = f.repairState();
    if (st?.state === "repaired") timings.push(`re-clone of n2 via the watch (1236): ${st.report.totalMs} ms (${st.report.phases.map((x) => `${x.name} ${x.ms}`).join(", ")})`);
  });

  it("the watch sees n2's SQL thread stopped on a stray write while it replicated, and re-clones it", async () => {
    const f = fx(BAD);
    assert.equal(await f.follow(PRIMARY, "test: follow n1"), "already");
    const tag = `errant-${randomBytes(3).toString("hex")}`;
    await strayWrite(tag, false); // replicating all along
    await writeRows(lab, PRIMARY, 5, "conflict"); // gtid_strict_mode stops n2's SQL thread on these
    await until("n2's SQL thread stops", async () => ((await withConn(lab, BAD, (c) => readState(c))).replica?.sqlErrno ?? 0) !== 0);
    const since = await lastIncidentId();
    await f.watchOnce();
    await f.idle();
    await assertRepaired(tag);
    const [inc] = await incidents("db-repair", since);
    assert.ok(inc, "a db-repair incident");
    assert.match(inc.reason, /discarded errant GTIDs: 0-2-\d+/);
    // n3 was never touched.
    await waitConverged(lab, OTHER, PRIMARY);
    assert.equal(await count(OTHER), await count(PRIMARY));
  });
});

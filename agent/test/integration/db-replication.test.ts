// Issue 4 on a real lab: one mariadbd per node, GTID semi-sync replication, promotion on failover.
// n1-n3 have replication on, n4 has it off.
import { describe, it, before, after as afterAll } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab } from "../../../lab/src/index.ts";
import { APP_DATABASE, connectNode, startMariadb } from "../../../lab/src/mariadb.ts";
import { readState } from "../../src/effects/db/state.ts";
import { errantGtids, formatGtidPos } from "../../src/effects/db/gtid.ts";
import { effectsOf, semiSyncStatus, writeRows, assertAllPresentOnce, panelConn, q, replicationOf, startStream, waitConverged, waitFor, withConn } from "./db-lab.ts";

/** Kill-the-primary rounds (the issue asks for 10). */
const KILL_ROUNDS = Number(process.env.DB_KILL_ROUNDS ?? 10);
/** Acknowledged rows each round's stream reaches before the kill. */
const ROWS_BEFORE_KILL = 1000;
const WRITERS = 4;
const OFF = new Set([4]);
const REPLICAS = [1, 2, 3];
/** The next primary in turn: n1 -> n2 -> n3 -> n1. */
const after = (id: number) => REPLICAS[(REPLICAS.indexOf(id) + 1) % REPLICAS.length]!;

describe("MariaDB replication on the lab", { timeout: 170_000 }, () => {
  let lab: Lab;
  let primary = 1;
  /** Every row acknowledged so far, in any test: none may ever go missing. */
  const allAcked: string[] = [];
  const timings: number[] = [];

  before(async () => {
    lab = await Lab.up({ name: "db4r", nodes: 4 });
    await Promise.all(lab.topo.nodes.map((n) => startMariadb(lab, n.id)));
    // As the daemon does it: promote (which also applies the schema), then every other node follows.
    const fx = effectsOf(lab, 1, OFF);
    const report = await fx.promote("test: n1 is master");
    fx.stop();
    assert.deepEqual(report.problems, []);
    for (const id of [2, 3, 4]) {
      const f = effectsOf(lab, id, OFF);
      await f.follow(1, "test: n1 is master");
      f.stop();
    }
  });
  afterAll(async () => {
    if (timings.length) {
      const s = [...timings].sort((a, b) => a - b);
      console.log(`# DB promotion (kill -> writable new primary) over ${s.length} kills: median ${s[Math.floor(s.length / 2)]} ms, max ${s.at(-1)} ms`);
    }
    await lab?.down();
  });

  it("writes on the primary appear on every replica; the replication-off node holds no copy", async () => {
    const c = await panelConn(lab, 1);
    await c.query("INSERT INTO nodes (nodeid, name, address) VALUES (1, 'n1', '172.31.224.11'), (2, 'n2', '172.31.224.12')");
    await c.end();
    for (const id of [2, 3]) {
      await waitConverged(lab, id, 1);
      const rows = await withConn(lab, id, (r) => q(r, `SELECT nodeid FROM ${APP_DATABASE}.nodes ORDER BY nodeid`));
      assert.deepEqual(rows.map((r) => r.nodeid), [1, 2], `n${id}`);
    }
    // The promotion applied the schema and left an incident with its phases.
    const [inc] = await withConn(lab, 1, (r) => q(r, `SELECT actor, kind, severity, summary, JSON_EXTRACT(phases, '$[*].name') AS phases FROM ${APP_DATABASE}.incidents WHERE kind = 'db-promotion'`));
    assert.equal(inc?.actor, "n1");
    assert.match(String(inc?.summary), /database primary is now n1/);
    const phases = typeof inc?.phases === "string" ? JSON.parse(inc.phases) : inc?.phases; // mysql2 may decode JSON itself
    assert.deepEqual(phases, ["survey", "drain", "choose", "epoch", "majority", "writable", "repoint"]);
    const n4 = await withConn(lab, 4, async (r) => ({ dbs: await q(r, "SHOW DATABASES LIKE ?", [APP_DATABASE]), st: await readState(r) }));
    assert.deepEqual(n4.dbs, [], "n4 has no application database");
    assert.equal(n4.st.replica, null, "n4 does not replicate");
    assert.equal(formatGtidPos(n4.st.binlogPos), "", "n4 has no binlog of the data");
    // Semi-sync is on, with both replicas acknowledging.
    const v = await semiSyncStatus(lab, 1);
    assert.equal(v.Rpl_semi_sync_master_status, "ON");
    assert.equal(v.Rpl_semi_sync_master_clients, "2");
  });

  it(`kill the primary during a stream of acknowledged writes, ${KILL_ROUNDS} times: nothing acknowledged is lost or duplicated`, async () => {
    for (let round = 1; round <= KILL_ROUNDS; round++) {
      const next = after(primary);
      // Counters include what this node applied as a replica before: compare deltas.
      const semi0 = await semiSyncStatus(lab, primary);
      const stream = await startStream(lab, primary, WRITERS, round);
      await waitFor(() => stream.acked.length >= ROWS_BEFORE_KILL || stream.errors.length > 0, 60_000, `${ROWS_BEFORE_KILL} acknowledged rows`);
      assert.deepEqual(stream.errors, [], "the stream failed before the kill");
      // Every commit so far waited for a replica's acknowledgement (none fell back to async).
      const semi = await semiSyncStatus(lab, primary);
      const delta = (k: string) => Number(semi[k]) - Number(semi0[k]);
      assert.equal(delta("Rpl_semi_sync_master_no_tx"), 0, "commits without a replica's acknowledgement");
      assert.ok(delta("Rpl_semi_sync_master_yes_tx") >= ROWS_BEFORE_KILL);
      const killedAt = performance.now();
      lab.kill(primary, "mariadb");
      const promoteAt = performance.now();
      const report = await replicationOf(lab, next, OFF).promote();
      timings.push(Math.round(promoteAt - killedAt + report.writableAfterMs));
      await stream.stop();
      allAcked.push(...stream.acked);
      assert.ok(stream.acked.length >= ROWS_BEFORE_KILL);
      assert.deepEqual(report.unreachable, [primary]);
      const { rows } = await assertAllPresentOnce(lab, next, allAcked);
      if (process.env.DB_DEBUG) console.log(`# round ${round}: n${primary} killed after ${stream.acked.length} acks; n${next} has ${rows} rows for ${allAcked.length} acked; source n${report.source}; ${report.phases.map((p) => `${p.name}:${p.ms}${p.detail ? `(${p.detail})` : ""}`).join(" ")}`);

      // The old primary comes back: read-only from its first moment, then a replica.
      const old = primary;
      primary = next;
      await startMariadb(lab, old);
      const c = await panelConn(lab, old);
      try {
        assert.equal(Number((await q(c, "SELECT @@global.read_only AS ro"))[0]!.ro), 1, `n${old} came back writable`);
        await assert.rejects(c.query("INSERT INTO incidents (actor, kind, summary, reason) VALUES ('x', 'stray', 'stray', '')"), /read-only|READ-ONLY|--read-only/);
      } finally {
        await c.end();
      }
      // In-flight commits that no replica acknowledged were rolled back by its crash recovery
      // (semi-sync replica recovery truncates them from its binlog): nothing errant remains.
      const [oldPos, newPos] = await Promise.all([old, primary].map((id) => withConn(lab, id, async (x) => (await readState(x)).binlogPos)));
      assert.deepEqual(errantGtids(oldPos!, newPos!), [], `n${old} came back with transactions n${primary} does not have`);
      assert.equal(await replicationOf(lab, old, OFF).follow(primary), "replicating");
      if (process.env.DB_DEBUG) {
        const log = readFileSync(join(lab.nodeDir(old), "log", "mariadb.out"), "utf8").split("\n");
        console.log(log.filter((l) => /trunc|recover|semi-sync|rolled back|Rolled back/i.test(l)).slice(-6).map((l) => `# n${old}: ${l}`).join("\n"));
      }
      for (const id of REPLICAS.filter((x) => x !== primary)) await waitConverged(lab, id, primary);
      for (const id of REPLICAS) await assertAllPresentOnce(lab, id, allAcked);
    }
  });

  /** Brings a killed node's mariadbd back and makes it a replica of the current primary. */
  async function rejoin(id: number) {
    await startMariadb(lab, id);
    assert.equal(await replicationOf(lab, id, OFF).follow(primary), "replicating");
    for (const r of REPLICAS.filter((x) => x !== primary)) await waitConverged(lab, r, primary);
    for (const r of REPLICAS) await assertAllPresentOnce(lab, r, allAcked);
  }

  it("a live old primary is fenced read-only before another node takes over, and becomes its replica", async () => {
    const old = primary;
    const next = after(old);
    const stream = await startStream(lab, old, WRITERS, 100);
    await waitFor(() => stream.acked.length >= 200, 30_000, "200 acknowledged rows");
    const report = await replicationOf(lab, next, OFF).promote();
    await stream.stop();
    allAcked.push(...stream.acked);
    primary = next;
    assert.deepEqual(report.unreachable, []);
    assert.ok(report.phases.some((p) => p.name === "fence" && p.detail === `set read_only on n${old}`), JSON.stringify(report.phases));
    assert.match(stream.errors.join("\n"), /read-only/, "writers on the old primary were refused");
    assert.equal(Number((await withConn(lab, old, (c) => q(c, "SELECT @@global.read_only AS ro")))[0]!.ro), 1);
    await waitConverged(lab, old, primary);
    for (const r of REPLICAS) await assertAllPresentOnce(lab, r, allAcked);
  });

  it("a lagging new primary catches up from the most advanced copy; when it cannot, a clear error and nothing changes", async () => {
    const old = primary;
    const lagging = after(old);
    const ahead = REPLICAS.find((x) => x !== old && x !== lagging)!;
    await withConn(lab, lagging, (c) => c.query("STOP SLAVE"));
    allAcked.push(...(await writeRows(lab, old, 200, "lag")));
    lab.kill(old, "mariadb");
    // The copy that has the rows refuses replication logins: catching up must fail, clearly.
    const lockRepl = (how: string) => withConn(lab, ahead, async (c) => { await c.query("SET SESSION sql_log_bin = 0"); await c.query(`ALTER USER 'ha_repl'@'%' ACCOUNT ${how}`); });
    await lockRepl("LOCK");
    await assert.rejects(replicationOf(lab, lagging, OFF, { catchUpTimeoutMs: 5000 }).promote(), (err: Error) => {
      assert.match(err.message, new RegExp(`promotion of n${lagging} failed: n${lagging} is behind n${ahead} and could not catch up \\(replication error \\d+: .*locked.*it stays read-only`));
      return true;
    });
    assert.equal(Number((await withConn(lab, lagging, (c) => q(c, "SELECT @@global.read_only AS ro")))[0]!.ro), 1, "still read-only");
    await lockRepl("UNLOCK");
    const report = await replicationOf(lab, lagging, OFF).promote();
    primary = lagging;
    assert.equal(report.source, ahead);
    assert.ok(report.phases.some((p) => p.name === "catch-up"), JSON.stringify(report.phases));
    await assertAllPresentOnce(lab, lagging, allAcked);
    await rejoin(old);
  });

  it("a replica with errant GTIDs is refused with a clear error; rebuilding it (replication off, then on) converges", async () => {
    const bad = after(primary);
    // A stray local write on a replica (root bypasses read_only): a GTID the primary never had.
    await withConn(lab, bad, (c) => c.query(`INSERT INTO ${APP_DATABASE}.incidents (actor, kind, summary, reason) VALUES ('root', 'stray', 'stray', '')`));
    allAcked.push(...(await writeRows(lab, primary, 5, "errant")));
    const deadline = Date.now() + 10_000;
    while ((await withConn(lab, bad, (c) => readState(c))).replica?.sqlErrno === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(replicationOf(lab, bad, OFF).follow(primary), new RegExp(`n${bad} has transactions the primary n${primary} does not have \\(errant GTIDs: .*0-${bad}-\\d+.*\\); it was left read-only and not replicating`));
    assert.equal((await withConn(lab, bad, (c) => readState(c))).replica?.ioRunning, "No");
    // Turning replication off drops the copy; on again re-syncs it from the primary.
    assert.equal(await replicationOf(lab, bad, new Set([...OFF, bad])).follow(primary), "no-copy");
    assert.deepEqual(await withConn(lab, bad, (c) => q(c, "SHOW DATABASES LIKE ?", [APP_DATABASE])), []);
    assert.equal(await replicationOf(lab, bad, OFF).follow(primary), "replicating");
    await waitConverged(lab, bad, primary, 60_000); // it re-applies everything from the first GTID
    await assertAllPresentOnce(lab, bad, allAcked);
  });
  it("a promotion needs a majority of the copies; a later epoch wins over a longer history of unacknowledged writes", async () => {
    const old = primary;
    const [a, b] = REPLICAS.filter((x) => x !== old) as [number, number];
    /** The test's way of cutting nodes off: their servers do not answer the promoter. */
    const without = (down: number[]) => (id: number) => (down.includes(id) ? Promise.reject(new Error("cut off (test)")) : connectNode(lab, id));
    // 1. Cut off from its replicas, the old primary takes writes no other copy has: never
    //    acknowledged by a majority (not in allAcked), and longer than what follows.
    for (const r of [a, b]) await withConn(lab, r, (c) => c.query("STOP SLAVE"));
    const unacked = await writeRows(lab, old, 60, "unacked");
    // 2. Reaching one copy of three is not enough: nothing changes.
    await assert.rejects(replicationOf(lab, a, OFF, { connect: without([old, b]) }).promote(), /reached 1 of 3 database nodes, need 2/);
    assert.equal(Number((await withConn(lab, a, (c) => q(c, "SELECT @@global.read_only AS ro")))[0]!.ro), 1, "still read-only");
    // 3. a is promoted from {a, b} (the old primary does not answer): a new, larger epoch.
    const first = await replicationOf(lab, a, OFF, { connect: without([old]) }).promote(40).catch((err: Error & { phases?: unknown }) => {
      throw new Error(`${err.message}; phases: ${JSON.stringify(err.phases)}`);
    });
    assert.ok(first.epoch >= 40, `epoch ${first.epoch}`);
    allAcked.push(...(await writeRows(lab, a, 20, "epoch")));
    await waitConverged(lab, b, a);
    // 4. a dies; b reaches the old primary, whose history is longer. The copy of the latest epoch
    //    wins and the old primary is diverged: with a dead and a diverged copy, b alone cannot make
    //    its new epoch majority-durable, so it stays read-only...
    lab.kill(a, "mariadb");
    await assert.rejects(
      replicationOf(lab, b, OFF).promote(),
      new RegExp(`only 1 of 3 database nodes took the new epoch \\(need 2\\) \\(n${old}: n${old} diverged`),
    );
    // ...until the old primary's agent has rebuilt it from b (it follows b's chosen history even
    // before b is writable); b's next attempt then has its majority.
    const fx = effectsOf(lab, old, OFF);
    await fx.follow(b, `test: n${b} is master`);
    fx.stop();
    const second = await replicationOf(lab, b, OFF).promote();
    primary = b;
    assert.equal(second.source, b, JSON.stringify(second.phases));
    assert.ok(second.epoch > first.epoch);
    await assertAllPresentOnce(lab, b, allAcked);
    const leaked = await withConn(lab, b, (c) => q(c, `SELECT COUNT(*) AS n FROM ${APP_DATABASE}.incidents WHERE summary IN (?)`, [unacked]));
    assert.equal(Number(leaked[0]!.n), 0, "no unacknowledged row of the old history reached the new primary");
    await startMariadb(lab, a);
    assert.equal(await replicationOf(lab, a, OFF).follow(primary), "replicating");
    await waitConverged(lab, a, primary);
    for (const id of REPLICAS) {
      if (id !== primary) await waitConverged(lab, id, primary);
      await assertAllPresentOnce(lab, id, allAcked);
      const n = await withConn(lab, id, (c) => q(c, `SELECT COUNT(*) AS n FROM ${APP_DATABASE}.incidents WHERE summary IN (?)`, [unacked]));
      assert.equal(Number(n[0]!.n), 0, `n${id} has none of the old history's unacknowledged rows`);
    }
  });
});

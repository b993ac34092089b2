// Issue 4, bad input and role changes on a real lab (one mariadbd per node):
//  - a replica whose disk fills up stops receiving cleanly, with an incident on the primary; the
//    primary goes on taking writes; once space is freed the replica catches up with nothing lost;
//  - a replica with errant GTIDs is re-cloned by its agent, with an incident on the primary;
//  - switching a node's replication flag stops its replica and drops its copy, or starts it again.
// n1 is the primary; n2's datadir is a 160 MB tmpfs inside its own mount namespace; n3 is a replica.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { Lab } from "../../../lab/src/index.ts";
import { APP_DATABASE, startMariadb } from "../../../lab/src/mariadb.ts";
import { ioWaitingForSpace, readState } from "../../src/effects/db/state.ts";
import type { DbEffects } from "../../src/effects/db/effects.ts";
import { assertAllPresentOnce, effectsOf, q, semiSyncStatus, waitConverged, withConn, writeRows } from "./db-lab.ts";

const PRIMARY = 1;
const FULL = 2; // the replica whose disk fills up
const OTHER = 3;
const TMPFS_MB = 160;
/** The disk guard's threshold for n2 (an empty datadir uses about 50 MB of the tmpfs). */
const MIN_FREE_MB = 40;

describe("MariaDB bad input and role changes on the lab", { timeout: 240_000 }, () => {
  let lab: Lab;
  const off = new Set<number>();
  const allRows: string[] = [];
  const effects: DbEffects[] = [];
  const fx = (id: number, config = {}) => {
    const f = effectsOf(lab, id, off, [], config);
    effects.push(f);
    return f;
  };

  /** Incidents recorded on the primary since `sinceId`. */
  const incidents = (kind: string, sinceId = 0) =>
    withConn(lab, PRIMARY, (c) => q<{ id: number; actor: string; severity: string; nodeid: number; summary: string; reason: string }>(c, `SELECT id, actor, severity, nodeid, summary, reason FROM ${APP_DATABASE}.incidents WHERE kind = ? AND id > ? ORDER BY id`, [kind, sinceId]));
  const lastIncidentId = async () => Number((await withConn(lab, PRIMARY, (c) => q(c, `SELECT COALESCE(MAX(id), 0) AS id FROM ${APP_DATABASE}.incidents`)))[0]!.id);

  before(async () => {
    lab = await Lab.up({ name: "dbx", nodes: 3 });
    // n2's datadir (binlogs and relay logs included) on a small tmpfs, in n2's mount namespace only.
    const mount = await lab.exec(FULL, ["sh", "-c", `mount -t tmpfs -o size=${TMPFS_MB}M,mode=0755 dbx-full /var/lib/mysql && chown mysql:mysql /var/lib/mysql`]);
    assert.equal(mount.code, 0, mount.stderr);
    await Promise.all(lab.topo.nodes.map((n) => startMariadb(lab, n.id)));
    const p = fx(PRIMARY);
    await p.promote("test: n1 is master");
    for (const id of [FULL, OTHER]) await fx(id).follow(PRIMARY, "test: n1 is master");
    allRows.push(...(await writeRows(lab, PRIMARY, 50, "start")));
    for (const id of [FULL, OTHER]) await waitConverged(lab, id, PRIMARY);
  });
  after(async () => {
    for (const f of effects) f.stop();
    await lab?.down();
  });

  it("a full disk on a replica: it stops receiving with an incident naming it and the cause; the primary goes on; freed, it catches up", async () => {
    const datadir = `/proc/${lab.anchorPid(FULL)}/root/var/lib/mysql`;
    const guarded = fx(FULL, { datadir, minFreeMb: MIN_FREE_MB });
    await guarded.follow(PRIMARY, "test: n1 is master");
    assert.equal((await guarded.watchOnce()).nodes.find((n) => n.nodeid === FULL)?.replication, "running");
    const since = await lastIncidentId();

    // Fill n2's disk to the last byte (dd stops with "No space left on device").
    await lab.exec(FULL, ["dd", "if=/dev/zero", "of=/var/lib/mysql/filler", "bs=1M", `count=${TMPFS_MB}`]);
    const health = await guarded.watchOnce();
    const n2 = health.nodes.find((n) => n.nodeid === FULL)!;
    assert.equal(n2.replication, "stopped", JSON.stringify(n2));
    const [full] = await incidents("db-replica-disk-full", since);
    assert.ok(full, "an incident on the primary");
    assert.equal(full.actor, `n${FULL}`);
    assert.equal(full.severity, "error");
    assert.match(full.summary, /n2 stopped replicating: its disk is almost full/);
    assert.match(full.reason, new RegExp(`/var/lib/mysql on n2 has 0 MB free, below the ${MIN_FREE_MB} MB minimum`));
    await guarded.watchOnce();
    assert.equal((await incidents("db-replica-disk-full", since)).length, 1, "recorded once, not at every reading");

    // The primary keeps taking writes, each acknowledged by n3 (semi-sync never fell back to async).
    const semi0 = await semiSyncStatus(lab, PRIMARY);
    allRows.push(...(await writeRows(lab, PRIMARY, 300, "while-full")));
    const semi = await semiSyncStatus(lab, PRIMARY);
    assert.equal(Number(semi.Rpl_semi_sync_master_no_tx) - Number(semi0.Rpl_semi_sync_master_no_tx), 0, "commits without a replica's acknowledgement");
    await waitConverged(lab, OTHER, PRIMARY);
    await assertAllPresentOnce(lab, OTHER, allRows);
    const stalled = await withConn(lab, FULL, (c) => readState(c));
    assert.equal(stalled.replica?.ioRunning, "No");
    assert.equal(stalled.replica?.ioErrno, 0, "stopped, not failed");

    // Space freed: the next reading resumes it, it catches up, nothing lost or doubled.
    await lab.exec(FULL, ["rm", "-f", "/var/lib/mysql/filler"]);
    await guarded.watchOnce();
    const [resumed] = await incidents("db-replica-resumed", since);
    assert.match(resumed?.summary ?? "", /n2 replicates again/);
    await waitConverged(lab, FULL, PRIMARY);
    await assertAllPresentOnce(lab, FULL, allRows);
    assert.equal((await guarded.watchOnce()).nodes.find((n) => n.nodeid === FULL)?.replication, "running");
    guarded.stop();
  });

  it("a disk that fills up under a receiving replica (no guard): the stall is recorded; freed, MariaDB goes on and nothing is lost", async () => {
    // The guard off (minimum 0): the disk fills while rows arrive, MariaDB blocks on its relay log.
    const datadir = `/proc/${lab.anchorPid(FULL)}/root/var/lib/mysql`;
    const unguarded = fx(FULL, { datadir, minFreeMb: 0 });
    await unguarded.follow(PRIMARY, "test: n1 is master");
    const since = await lastIncidentId();
    await lab.exec(FULL, ["dd", "if=/dev/zero", "of=/var/lib/mysql/filler", "bs=1M", `count=${TMPFS_MB}`]);
    allRows.push(...(await writeRows(lab, PRIMARY, 200, "filling")));
    await waitConverged(lab, OTHER, PRIMARY);
    await assertAllPresentOnce(lab, OTHER, allRows);
    const deadline = Date.now() + 20_000;
    let h = (await unguarded.watchOnce()).nodes.find((n) => n.nodeid === FULL)!;
    while (h.replication !== "disk-full" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      h = (await unguarded.watchOnce()).nodes.find((n) => n.nodeid === FULL)!;
    }
    assert.equal(h.replication, "disk-full", JSON.stringify(h));
    const [stall] = await incidents("db-replica-disk-full", since);
    assert.match(stall?.summary ?? "", /n2 stopped replicating from n1: disk full/);
    assert.match(stall?.reason ?? "", /\/var\/lib\/mysql on n2 is full: its replica waits for free space/);
    // Freed: MariaDB retries the write within 60 s by itself; it then catches up.
    await lab.exec(FULL, ["rm", "-f", "/var/lib/mysql/filler"]);
    // Until then SHOW SLAVE STATUS hangs: watch the process list instead.
    const resumeBy = Date.now() + 90_000;
    while (await withConn(lab, FULL, (c) => ioWaitingForSpace(c))) {
      assert.ok(Date.now() < resumeBy, "MariaDB did not resume within 90 s of space being freed");
      await new Promise((r) => setTimeout(r, 500));
    }
    await waitConverged(lab, FULL, PRIMARY, 30_000);
    await assertAllPresentOnce(lab, FULL, allRows);
    await unguarded.watchOnce();
    assert.equal((await incidents("db-replica-resumed", since)).length, 1);
    unguarded.stop();
  });

  it("a replica with errant GTIDs: its agent re-clones it from the primary (what it discards is saved), an incident on the primary; it converges", async () => {
    const since = await lastIncidentId();
    // A stray local write on a replica (root bypasses read_only): a GTID the primary never had.
    await withConn(lab, OTHER, (c) => c.query(`INSERT INTO ${APP_DATABASE}.incidents (actor, kind, summary, reason) VALUES ('root', 'stray', 'stray', '')`));
    allRows.push(...(await writeRows(lab, PRIMARY, 5, "errant")));
    const bad = fx(OTHER);
    assert.equal(await bad.follow(PRIMARY, "test: follow n1"), "repaired");
    const [inc] = await incidents("db-repair", since);
    assert.ok(inc, "an incident on the primary");
    assert.equal(inc.severity, "warning");
    assert.match(inc.summary, /^n3 diverged from n1 and was re-cloned from it in /);
    assert.match(inc.reason, /discarded errant GTIDs: 0-3-\d+ .*saved in \S+-n3-errant\.sql/);
    assert.deepEqual(await incidents("db-replica-failed", since), []);
    // Nothing acknowledged was lost anywhere; the stray row is gone from n3.
    await assertAllPresentOnce(lab, PRIMARY, allRows);
    await waitConverged(lab, FULL, PRIMARY);
    await assertAllPresentOnce(lab, FULL, allRows);
    await waitConverged(lab, OTHER, PRIMARY, 60_000);
    await assertAllPresentOnce(lab, OTHER, allRows);
    assert.deepEqual(await withConn(lab, OTHER, (c) => q(c, `SELECT id FROM ${APP_DATABASE}.incidents WHERE kind = 'stray'`)), []);
    const h = (await bad.watchOnce()).nodes.find((n) => n.nodeid === OTHER)!;
    assert.deepEqual([h.role, h.replication], ["replica", "running"]);
    bad.stop();
  });

  it("switching a node's replication flag stops its replica and drops its copy, or starts it again", async () => {
    const n3 = fx(OTHER);
    assert.equal(await n3.follow(PRIMARY, "test: n1 is master"), "already");
    const hasCopy = () => withConn(lab, OTHER, async (c) => ({ dbs: (await q(c, "SHOW DATABASES LIKE ?", [APP_DATABASE])).length, st: await readState(c) }));
    const until = async (what: string, cond: () => Promise<boolean>, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await cond())) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    // Off, as the panel does it: the flag changes in the node list, the agent notices.
    off.add(OTHER);
    n3.nodesChanged();
    await until("n3 holds no copy", async () => {
      const s = await hasCopy();
      return s.dbs === 0 && s.st.replica === null;
    });
    allRows.push(...(await writeRows(lab, PRIMARY, 100, "n3-off")));
    const offState = await hasCopy();
    assert.equal(offState.st.readOnly, true);
    assert.equal(offState.dbs, 0, "writes made while off do not reach n3");
    assert.equal((await n3.watchOnce()).nodes.find((n) => n.nodeid === OTHER)?.role, "off");
    n3.nodesChanged(); // no change: nothing happens
    // The primary still has a semi-sync replica (n2): writes are acknowledged.
    assert.equal((await semiSyncStatus(lab, PRIMARY)).Rpl_semi_sync_master_clients, "1");

    // On again: it re-syncs everything and replicates.
    off.delete(OTHER);
    n3.nodesChanged();
    await until("n3 replicates again", async () => (await hasCopy()).st.replica?.ioRunning === "Yes");
    await waitConverged(lab, OTHER, PRIMARY, 60_000);
    await assertAllPresentOnce(lab, OTHER, allRows);
    const h = (await n3.watchOnce()).nodes.find((n) => n.nodeid === OTHER)!;
    assert.deepEqual([h.role, h.replication], ["replica", "running"]);
  });
});

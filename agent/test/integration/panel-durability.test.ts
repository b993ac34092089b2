// The panel's majority barrier (panel/server/durability.ts) on a real 3-node lab with MariaDB and
// no agents: n1 is promoted, n2 and n3 replicate from it. The barrier reaches every node through
// its socket under /proc/<pid>/root, as the panel's account; the replicas' Master_Host is n1's
// control address, which is what the barrier compares with.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import { pino } from "pino";
import { Lab } from "../../../lab/src/index.ts";
import { APP_DATABASE, LAB_DB_USERS, hostSocketPath } from "../../../lab/src/mariadb.ts";
import { MajorityBarrier, localState, type DbNodes } from "../../../panel/server/durability.ts";
import { migrateNode, q, replicationOf, withConn } from "./db-lab.ts";

const skip = process.getuid?.() !== 0 ? "needs root (network namespaces)" : false;
const TIMEOUT_MS = 1500;

describe("the panel's majority barrier on a 3-node lab", { skip, timeout: 180_000 }, () => {
  let lab: Lab;
  let primaryPool: mysql.Pool;
  let barrier: MajorityBarrier;
  const logs: string[] = [];
  let n = 0;

  /** One acknowledged-looking write on the primary as the panel user; returns its tag. */
  const write = async () => {
    const tag = `dur-${++n}`;
    await primaryPool.query("INSERT INTO incidents (actor, kind, summary, reason) VALUES ('test', 'durability', ?, '')", [tag]);
    return tag;
  };
  const sql = (id: number, text: string) => withConn(lab, id, (c) => q(c, text));
  const waitUntil = async (what: string, cond: () => Promise<boolean>, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const has = async (id: number, tag: string) => (await withConn(lab, id, (c) => q(c, `SELECT 1 FROM ${APP_DATABASE}.incidents WHERE summary = ?`, [tag]))).length === 1;

  before(async () => {
    lab = await Lab.up({ name: "pdur", nodes: 3, mariadb: true });
    const report = await replicationOf(lab, 1, new Set()).promote();
    assert.deepEqual(report.problems, []);
    await migrateNode(lab, 1);
    primaryPool = mysql.createPool({ socketPath: hostSocketPath(lab, 1), ...LAB_DB_USERS.panel, database: APP_DATABASE, connectionLimit: 4 });
    const addr = (id: number) => lab.topo.nodes.find((x) => x.id === id)!.ctlAddr;
    const nodes: DbNodes = { self: { nodeid: 1, addr: addr(1) }, others: [2, 3].map((id) => ({ nodeid: id, addr: addr(id) })) };
    barrier = new MajorityBarrier({
      node: "n1",
      local: localState(primaryPool),
      nodes: () => nodes,
      // The test's way to a node; production is TCP to its address (tcpPeers).
      connect: (node) => mysql.createPool({ socketPath: hostSocketPath(lab, node.nodeid), ...LAB_DB_USERS.panel, connectionLimit: 4 }),
      timeoutMs: TIMEOUT_MS,
      log: pino({ level: "warn" }, { write: (l: string) => void logs.push(l) }),
    });
  });
  after(async () => {
    await barrier?.close();
    await primaryPool?.end().catch(() => undefined);
    await lab?.down();
  });

  it("both replicas replicating: passes, and a replica has the write", async () => {
    const tag = await write();
    const out = await barrier.wait();
    assert.equal(out.ok, true);
    assert.ok(out.confirmed >= 2, JSON.stringify(out));
    assert.ok((await has(2, tag)) || (await has(3, tag)), "a confirmed copy really holds it");
  });

  it("STOP SLAVE on both replicas: fails at once with the counts", async () => {
    await Promise.all([sql(2, "STOP SLAVE"), sql(3, "STOP SLAVE")]);
    try {
      await write();
      const t0 = performance.now();
      await assert.rejects(barrier.wait(), {
        status: 503,
        message: "the change was written on n1 but only 1 of 3 database nodes confirmed it (need 2; n2: replication stopped, n3: replication stopped): it may not be kept; check and retry",
      });
      assert.ok(performance.now() - t0 < TIMEOUT_MS, "fails fast, not at the timeout");
    } finally {
      await Promise.all([sql(2, "START SLAVE"), sql(3, "START SLAVE")]);
    }
    assert.equal((await barrier.wait()).ok, true, "replicating again: the change is confirmed");
  });

  it("a diverged node (errant writes, a higher sequence number) is not counted, though MASTER_GTID_WAIT would pass on it", async () => {
    // n3 takes writes of its own with read_only off, then is pointed back at n1 the way the agent
    // repoints a node (gtid_slave_pos = everything it has): n1 refuses it (1236).
    await sql(3, "STOP SLAVE");
    await sql(3, "SET GLOBAL read_only = OFF");
    for (let i = 0; i < 20; i++) await sql(3, `INSERT INTO ${APP_DATABASE}.incidents (actor, kind, summary, reason) VALUES ('errant', 'durability', 'errant-${i}', '')`);
    await sql(3, "SET GLOBAL read_only = ON");
    await sql(3, "SET GLOBAL gtid_slave_pos = @@global.gtid_current_pos");
    await sql(3, "START SLAVE");
    await waitUntil("n1 refuses n3 (1236)", async () => Number((await sql(3, "SHOW SLAVE STATUS"))[0]?.Last_IO_Errno) === 1236);
    await sql(2, "STOP SLAVE");
    try {
      const tag = await write();
      const [pos] = await withConn(lab, 1, (c) => q<{ p: string }>(c, "SELECT @@global.gtid_binlog_pos AS p"));
      const [w] = await sql(3, `SELECT MASTER_GTID_WAIT('${pos!.p}', 1) AS r`);
      assert.equal(Number(w!.r), 0, "n3's higher sequence number satisfies MASTER_GTID_WAIT");
      assert.equal(await has(3, tag), false, "yet n3 does not have the write");
      await assert.rejects(barrier.wait(), (err: Error) => {
        assert.match(err.message, /only 1 of 3 database nodes confirmed it .*n3: replication stopped \(error 1236\)/);
        return true;
      });
    } finally {
      await sql(2, "START SLAVE");
    }
    const out = await barrier.wait();
    assert.equal(out.ok, true, "n2 is back: n1 + n2 are a majority without n3");
  });

  it("a replica that cannot apply in time: fails at the timeout", async () => {
    // n3 is still refused; n2 is blocked applying by a global read lock.
    const c = await mysql.createConnection({ socketPath: hostSocketPath(lab, 2), user: "root" });
    try {
      await c.query("FLUSH TABLES WITH READ LOCK");
      await write();
      const t0 = performance.now();
      await assert.rejects(barrier.wait(), /only 1 of 3 database nodes confirmed it within 1500 ms \(need 2; n3: replication stopped \(error 1236\)\)/);
      const ms = performance.now() - t0;
      assert.ok(ms >= TIMEOUT_MS - 50 && ms < TIMEOUT_MS + 1000, `${ms} ms`);
    } finally {
      await c.query("UNLOCK TABLES").catch(() => undefined);
      await c.end();
    }
    assert.equal((await barrier.wait()).ok, true);
  });
});

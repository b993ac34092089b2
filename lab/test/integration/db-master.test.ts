// The master's database with agents (issue 13): a mariadbd that restarts on the master is writable
// again within seconds with the same master; one that stays down hands mastership to a node whose
// database can be primary (mastership follows the database); a master cut off the control network
// stops taking writes and is not reset by its watchdog.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, LAB_DB_USERS, NODE_AGENT_CONFIG, connectNode, masterOf, waitUntil } from "../../src/index.ts";
import { startMariadb } from "../../src/mariadb.ts";

const until = (what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 60_000) => waitUntil(what, fn, timeoutMs, 200);

type ListJson = { master: number | null; nodes: Array<{ id: number; status: string; dbEligible?: boolean; dbReason?: string; db?: { role: string; replication: string } }> };

describe("the master's database, on a 3-node lab with agents and MariaDB", { timeout: 300_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.up({ name: "dbm", nodes: 3, agents: true, mariadb: true });
  });
  after(async () => {
    await lab?.down();
  });

  const list = async (from: number): Promise<ListJson | null> => {
    const r = await lab.exec(from, ["./corolistener", "-l", "--json", "-c", NODE_AGENT_CONFIG]);
    return r.code === 0 ? (JSON.parse(r.stdout) as ListJson) : null;
  };
  /** One write as the panel's account on node `id`: true when it committed. */
  const writes = async (id: number, tag: string) => {
    try {
      const c = await connectNode(lab, id, { ...LAB_DB_USERS.panel, database: "ha" });
      try {
        await c.query("INSERT INTO incidents (actor, kind, summary, reason) VALUES ('test', 'master-test', ?, '')", [tag]);
        return true;
      } finally {
        await c.end();
      }
    } catch {
      return false;
    }
  };
  const agentOut = (id: number) => readFileSync(join(lab.nodeDir(id), "log", "agent.out"), "utf8");
  const replicasRunning = async (from: number, primary: number) => {
    const l = await list(from);
    return !!l && l.nodes.every((n) => (n.id === primary ? n.db?.role === "primary" : n.db?.role === "replica" && n.db.replication === "running"));
  };

  it("a mariadbd killed on the master comes back read-only and is promoted again, the master unchanged", async () => {
    await until("a master with a writable database and running replicas", async () => {
      const m = await masterOf(lab, 1);
      return m !== null && (await replicasRunning(1, m)) && (await writes(m, "warm-up"));
    }, 90_000);
    const master = (await masterOf(lab, 1))!;
    lab.kill(master, "mariadb");
    const killedAt = performance.now();
    await startMariadb(lab, master);
    await until("the master's database writable again", () => writes(master, "after-restart"), 30_000);
    const ms = Math.round(performance.now() - killedAt);
    console.log(`# mariadbd kill on the master -> writable again (restart included): ${ms} ms`);
    assert.equal(await masterOf(lab, master), master, "the master did not move");
    assert.match(readFileSync(join(lab.nodeDir(master), "log", "corolistener.log"), "utf8"), /its database is read-only \(mariadbd restarted\?\): promoting it again/);
  });

  it("a master whose database stays down hands over to a node whose database can be primary; back, it replicates", async () => {
    const old = (await masterOf(lab, 1))!;
    lab.kill(old, "mariadb");
    const other = lab.topo.nodes.map((n) => n.id).find((id) => id !== old)!;
    await until("another master", async () => {
      const m = await masterOf(lab, other);
      return m !== null && m !== old;
    }, 60_000);
    const next = (await masterOf(lab, other))!;
    await until("the new master's database takes writes", () => writes(next, "after-handover"), 30_000);
    const l = await list(other);
    const o = l?.nodes.find((n) => n.id === old);
    assert.equal(o?.dbEligible, false, JSON.stringify(o));
    assert.match(o?.dbReason ?? "", /does not answer/);
    await startMariadb(lab, old);
    await until(`n${old} replicates from n${next}`, () => replicasRunning(other, next), 60_000);
    await until(`n${old} eligible again`, async () => (await list(other))?.nodes.find((n) => n.id === old)?.dbEligible !== false, 30_000);
  });

  it("a master cut off the control network stops taking writes, and its watchdog does not reset it", async () => {
    const old = (await masterOf(lab, 1))!;
    const before = agentOut(old).length;
    const other = lab.topo.nodes.map((n) => n.id).find((id) => id !== old)!;
    await lab.cut(old, { control: true });
    const cutAt = performance.now();
    await until(`n${old}'s database read-only`, async () => !(await writes(old, "while-cut")), 20_000);
    console.log(`# control link of the master cut -> its database refuses writes: ${Math.round(performance.now() - cutAt)} ms`);
    await until("a new master on the majority side", async () => {
      const m = await masterOf(lab, other);
      return m !== null && m !== old;
    }, 60_000);
    // Longer than every deadline of the old master's watchdog (lease + release budget + fence timeout).
    await new Promise((r) => setTimeout(r, 8000));
    assert.doesNotMatch(agentOut(old).slice(before), /watchdog: resetting node/);
    assert.ok(lab.processes(old, "agent").length > 0, "the agent still runs");
    await lab.heal(old);
    const next = (await masterOf(lab, other))!;
    await until(`n${old} rejoins as a replica of n${next}`, () => replicasRunning(other, next), 90_000);
  });
});

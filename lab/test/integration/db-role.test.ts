// Issue 4 end to end, with agents: changing a node's replication flag in the panel's database stops
// its replica and drops its copy, or starts it again; `corolistener -l` shows every node's DB state.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { Lab, LAB_DB_USERS, connectNode, waitUntil } from "../../src/index.ts";

const until = (what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 60_000) => waitUntil(what, fn, timeoutMs, 250);

type DbCell = { role: string; replication: string; error?: string; lagSeconds?: number | null; gtid?: string };
type ListJson = { nodes: Array<{ id: number; status: string; master: boolean; prio: number; db?: DbCell }>; databaseCheckedAt?: string };

describe("replication role changes from the panel, on a 3-node lab with agents and MariaDB", { timeout: 180_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.up({ name: "dbx", nodes: 3, agents: true, mariadb: true });
  });
  after(async () => {
    await lab?.down();
  });

  const list = async (id: number): Promise<ListJson> => {
    const r = await lab.exec(id, ["./corolistener", "-l", "--json", "-c", "/etc/corosync/corolistener.json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ListJson;
  };
  const dbOf = async (id: number, node: number) => (await list(id)).nodes.find((n) => n.id === node)?.db;
  const panel = async <T>(fn: (c: Awaited<ReturnType<typeof connectNode>>) => Promise<T>) => {
    const c = await connectNode(lab, 1, { user: LAB_DB_USERS.panel.user, password: LAB_DB_USERS.panel.password, database: "ha" });
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  const n3 = async () => {
    const c = await connectNode(lab, 3);
    try {
      const [dbs] = await c.query("SHOW DATABASES LIKE 'ha'");
      const [st] = await c.query("SHOW SLAVE STATUS");
      const rep = (st as Array<Record<string, unknown>>)[0];
      return { hasCopy: (dbs as unknown[]).length > 0, replicating: rep?.Slave_IO_Running === "Yes" && rep?.Slave_SQL_Running === "Yes" };
    } finally {
      await c.end();
    }
  };
  const rowsOn = async (id: number, prefix: string) => {
    const c = await connectNode(lab, id);
    try {
      const [r] = await c.query("SELECT COUNT(*) AS n FROM ha.incidents WHERE kind = 'role-test' AND summary LIKE ?", [`${prefix}%`]);
      return Number((r as Array<{ n: number }>)[0]!.n);
    } finally {
      await c.end();
    }
  };
  const write = (prefix: string, n: number) =>
    panel(async (c) => {
      for (let i = 0; i < n; i++) await c.query("INSERT INTO incidents (actor, kind, summary, reason) VALUES ('test', 'role-test', ?, '')", [`${prefix}-${i}`]);
    });

  it("`corolistener -l` shows the primary and the running replicas", async () => {
    await until("n1 primary, n2 and n3 replicas running, in n2's corolistener -l", async () => {
      const rows = (await list(2)).nodes;
      const db = (id: number) => rows.find((r) => r.id === id)?.db;
      return db(1)?.role === "primary" && [2, 3].every((id) => db(id)?.role === "replica" && db(id)?.replication === "running");
    });
    const j = await list(1);
    assert.ok(j.databaseCheckedAt, "the JSON says when the DB state was read");
    // Backward compatible: the old fields are still there.
    assert.deepEqual(Object.keys(j.nodes[0]!).slice(0, 5), ["id", "ip", "status", "master", "prio"]);
    assert.match(String(j.nodes[1]!.db?.gtid), /^0-1-\d+$/);
    const table = await lab.exec(1, ["./corolistener", "-l", "-c", "/etc/corosync/corolistener.json"]);
    assert.match(table.stdout, /Database/);
    assert.match(table.stdout, /primary/);
    assert.match(table.stdout, /replica running/);
  });

  it("replication off in the panel: n3 stops replicating and drops its copy; on again: it re-syncs", async () => {
    await write("before", 20);
    await until("n3 has the rows written before", async () => (await rowsOn(3, "before")) === 20);

    await panel((c) => c.query("UPDATE nodes SET replication = 0 WHERE nodeid = 3"));
    await until("n3 holds no copy and does not replicate", async () => {
      const s = await n3();
      return !s.hasCopy && !s.replicating;
    });
    await until("corolistener -l shows n3 off", async () => (await dbOf(1, 3))?.role === "off");
    await write("while-off", 20);
    assert.equal((await n3()).hasCopy, false, "writes made while off do not reach n3");
    assert.equal(await rowsOn(2, "while-off"), 20, "n2 still replicates");

    await panel((c) => c.query("UPDATE nodes SET replication = 1 WHERE nodeid = 3"));
    await until("n3 replicates again and has every row", async () => {
      const s = await n3();
      return s.replicating && (await rowsOn(3, "before")) === 20 && (await rowsOn(3, "while-off")) === 20;
    });
    await until("corolistener -l shows n3 as a running replica", async () => {
      const db = await dbOf(1, 3);
      return db?.role === "replica" && db.replication === "running";
    });
  });
});

// The panel's edits reach corosync: a prio written to the DB (as the panel's own DB user) becomes a
// new corosync.conf on every node; a change made with the CLI flows back into the DB.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseCorosyncConf, readClusterConfig } from "@ha/shared";
import { Lab, LAB_DB_USERS, connectNode, waitUntil } from "../../src/index.ts";

const until = (what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 30_000) => waitUntil(what, fn, timeoutMs, 250);


describe("node settings: DB <-> corosync.conf on a 3-node lab with MariaDB", { timeout: 180_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.up({ name: "d3", nodes: 3, agents: true, mariadb: true });
  });
  after(async () => {
    await lab?.down();
  });

  const prioOf = async (node: number) => {
    const c = await connectNode(lab, 1, { user: LAB_DB_USERS.panel.user, password: LAB_DB_USERS.panel.password, database: "ha" });
    try {
      const [rows] = await c.query("SELECT prio FROM nodes WHERE nodeid = ?", [node]);
      return (rows as Array<{ prio: number }>)[0]?.prio;
    } finally {
      await c.end();
    }
  };
  const confPrio = (id: number, node: number) =>
    readClusterConfig(parseCorosyncConf(readFileSync(join(lab.nodeDir(id), "etc-corosync", "corosync.conf"), "utf8"))).nodes.find((n) => n.nodeid === node)?.prio;

  it("the master imports the node list, applies a panel edit everywhere, and copies a CLI change back", async () => {
    await until("n3 in the DB with its corosync prio", async () => (await prioOf(3)) === 10, 60_000);
    const c = await connectNode(lab, 1, { user: LAB_DB_USERS.panel.user, password: LAB_DB_USERS.panel.password, database: "ha" });
    await c.query("UPDATE nodes SET prio = 77 WHERE nodeid = 3");
    await c.end();
    await until("prio 77 for n3 in corosync.conf on every node", () => [1, 2, 3].every((id) => confPrio(id, 3) === 77));
    assert.equal(await prioOf(3), 77, "the edit is not reverted");
    const r = await lab.exec(2, ["./corolistener", "set-node", "2", "--prio", "55", "-c", "/etc/corosync/corolistener.json"]);
    assert.equal(r.code, 0, r.stderr);
    await until("prio 55 for n2 in corosync.conf and in the DB", async () => [1, 2, 3].every((id) => confPrio(id, 2) === 55) && (await prioOf(2)) === 55);
  });
});

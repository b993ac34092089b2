// /api/nodes carries each node's database health (from the status file's `db` section) and whether its
// database lets it be master (the view's dbEligible/dbReason); a db change reaches browsers (SSE).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, dbAvailable, fakeView, startPanel, type Panel } from "./helpers.ts";
import { StatusSource } from "../server/status.ts";

const skip = await dbAvailable();
const ADMIN = { username: "admin", password: "nodes db admin password" };

const view = fakeView({
  nodes: [
    { nodeid: 1, prio: 100, status: "leader", isMaster: true, reason: "highest prio", dbEligible: true },
    { nodeid: 2, prio: 50, status: "member", isMaster: false, reason: "member", dbEligible: false, dbReason: "database diverged: being re-cloned from n1" },
    { nodeid: 3, prio: 10, status: "member", isMaster: false, reason: "member" },
  ],
});
const health = (lag: number) => ({
  checkedAt: Date.UTC(2026, 0, 2, 3, 4, 5),
  nodes: [
    { nodeid: 1, reachable: true, role: "primary", replication: "none", gtid: "0-1-42" },
    { nodeid: 2, reachable: true, role: "replica", replication: "running", source: "10.0.0.1", lagSeconds: lag, gtid: "0-1-41" },
  ],
});

describe("node list: database health and eligibility", { skip: skip ?? false }, () => {
  let p: Panel;
  let admin: Client;
  before(async () => {
    p = await startPanel();
    await p.addUser(ADMIN.username, ADMIN.password, "admin");
    admin = new Client(p.url);
    await admin.login(ADMIN.username, ADMIN.password);
  });
  after(async () => {
    await p?.stop();
  });

  test("each node's role, replication, lag, gtid, source node and eligibility", async () => {
    await p.setStatus(view, health(3));
    const { nodes } = (await admin.get("/api/nodes")).json;
    assert.deepEqual(nodes[0].db, { nodeid: 1, reachable: true, role: "primary", replication: "none", gtid: "0-1-42", sourceName: null, checkedAt: "2026-01-02T03:04:05.000Z" });
    assert.deepEqual([nodes[0].dbEligible, nodes[0].dbReason], [true, null]);
    assert.deepEqual([nodes[1].db.role, nodes[1].db.replication, nodes[1].db.lagSeconds, nodes[1].db.source, nodes[1].db.sourceName], ["replica", "running", 3, "10.0.0.1", "n1"]);
    assert.deepEqual([nodes[1].dbEligible, nodes[1].dbReason], [false, "database diverged: being re-cloned from n1"]);
    assert.deepEqual([nodes[2].db, nodes[2].dbEligible, nodes[2].dbReason], [null, null, null], "no reading, no verdict");
    const one = (await admin.get("/api/nodes/2")).json.node;
    assert.deepEqual([one.db.sourceName, one.dbEligible], ["n1", false]);
  });

  test("without a db section (or with one the panel does not understand) the nodes have none; the view still counts", async () => {
    await p.setStatus(view);
    assert.equal((await admin.get("/api/nodes")).json.nodes[1].db, null);
    await p.setStatus(view, { checkedAt: "yesterday", nodes: 7 });
    const r = await admin.get("/api/nodes");
    assert.equal(r.json.nodes[1].db, null);
    assert.equal(r.json.nodes[1].status, "member");
    assert.equal((await admin.get("/api/election")).json.state, "live");
  });
});

test("status source: a database change is a change (browsers refetch); a new check time alone is not", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ha-status-db-"));
  const file = join(dir, "status.json");
  const write = (db: unknown) => writeFileSync(file, JSON.stringify({ pid: 1, writtenAt: Date.now(), view, db }));
  const s = new StatusSource(file, 5000, 60_000);
  let changes = 0;
  s.on("change", () => changes++);
  try {
    write(health(0));
    await s.poll();
    assert.equal(s.status.db?.nodes[1]?.lagSeconds, 0);
    write({ ...health(0), checkedAt: Date.now() });
    await s.poll();
    assert.equal(changes, 1, "only the check time changed");
    write(health(7));
    await s.poll();
    assert.equal(changes, 2);
    assert.equal(s.status.db?.nodes[1]?.lagSeconds, 7);
  } finally {
    s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

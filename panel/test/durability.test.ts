// The majority barrier and the read gate: pure parts with fakes, the middleware on a bare Express
// app, and the wiring in the real panel (machine's MariaDB, fake status file).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import express from "express";
import { pino } from "pino";
import { Writable } from "node:stream";
import { copiesNeeded, countCopies, dbNodesOf, durableWrites, MajorityBarrier, NotDurableError, replicaVerdict, type DbNodes, type PeerConn } from "../server/durability.ts";
import { ReadGate, readGate } from "../server/read-gate.ts";
import { errorHandler } from "../server/errors.ts";
import type { NodeView } from "../server/status.ts";
import { Client, dbAvailable, fakeView, startPanel, type Panel } from "./helpers.ts";

const quiet = () => {
  const lines: string[] = [];
  return { lines, log: pino({ level: "info" }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) })) };
};
const defer = () => {
  let resolve!: () => void, reject!: (e: Error) => void;
  const done = new Promise<void>((a, b) => ((resolve = a), (reject = b)));
  return { done, resolve, reject };
};

test("need: a majority of the database nodes, the primary being one copy", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(copiesNeeded), [1, 2, 2, 3, 3, 4, 4]);
});

test("database nodes from the agent's view: replication on, this node as the primary; unknown without flags", () => {
  const base = fakeView() as unknown as NodeView;
  assert.equal(dbNodesOf(null), null, "no status file");
  assert.equal(dbNodesOf(base), null, "a view without replication flags says nothing about copies");
  const flagged = { ...base, nodes: base.nodes.map((n) => ({ ...n, replication: n.nodeid !== 3 })) };
  assert.deepEqual(dbNodesOf(flagged), { self: { nodeid: 1, addr: "10.0.0.1" }, others: [{ nodeid: 2, addr: "10.0.0.2" }] });
  // A flag missing next to others counts as a copy (stricter, never looser).
  const partly = { ...base, nodes: base.nodes.map((n) => (n.nodeid === 3 ? n : { ...n, replication: true })) };
  assert.deepEqual(dbNodesOf(partly)!.others.map((n) => n.nodeid), [2, 3]);
});

test("confirm rule: only a replica of THIS primary with its IO thread running counts", () => {
  const row = (o: Record<string, unknown> = {}) => ({ Master_Host: "10.0.0.1", Slave_IO_Running: "Yes", Last_IO_Errno: 0, ...o });
  assert.equal(replicaVerdict(row(), "10.0.0.1"), "ok");
  assert.deepEqual(replicaVerdict(undefined, "10.0.0.1"), { no: "not a replica" });
  assert.deepEqual(replicaVerdict(row({ Master_Host: "10.0.0.3" }), "10.0.0.1"), { no: "replicates from 10.0.0.3, not from this node" }, "another history");
  assert.deepEqual(replicaVerdict(row({ Slave_IO_Running: "No" }), "10.0.0.1"), { no: "replication stopped" });
  assert.deepEqual(replicaVerdict(row({ Slave_IO_Running: "No", Last_IO_Errno: 1236 }), "10.0.0.1"), { no: "replication stopped (error 1236)" }, "errant: refused by the primary");
  assert.deepEqual(replicaVerdict(row({ Slave_SQL_Running: "No", Last_SQL_Errno: 1950 }), "10.0.0.1"), { no: "replication error 1950" }, "an errant transaction in the way");
  assert.deepEqual(replicaVerdict(row({ Slave_SQL_Running: "No" }), "10.0.0.1"), { no: "not applying" });
  assert.equal(replicaVerdict(row({ Slave_IO_Running: "Connecting" }), "10.0.0.1"), "pending");
  assert.equal(replicaVerdict(row({ Last_IO_Errno: 2003 }), "10.0.0.1"), "pending", "retrying after an error");
  assert.deepEqual(replicaVerdict(row(), undefined), { no: "this node's own address is unknown" });
});

test("counting: done as soon as a majority confirmed, without waiting for the slow one", async () => {
  const [a, b, c, d] = [defer(), defer(), defer(), defer()];
  const out = countCopies([a, b, c, d].map((x, i) => ({ node: `n${i + 2}`, done: x.done })), 10_000);
  a.resolve();
  b.reject(new Error("unreachable (connection refused)"));
  c.resolve();
  const o = await out; // d never answers
  assert.deepEqual({ ok: o.ok, confirmed: o.confirmed, need: o.need, total: o.total, timedOut: o.timedOut }, { ok: true, confirmed: 3, need: 3, total: 5, timedOut: false });
});

test("counting: fails fast once a majority is impossible, and at the timeout otherwise", async () => {
  const [a, b, c, d] = [defer(), defer(), defer(), defer()];
  const t0 = performance.now();
  const out = countCopies([a, b, c, d].map((x, i) => ({ node: `n${i + 2}`, done: x.done })), 10_000);
  a.reject(new Error("replication stopped"));
  b.reject(new Error("replicates from 10.0.0.9, not from this node"));
  c.reject(new Error("unreachable (connection refused)"));
  const o = await out; // 1 + at most 1 more < 3
  assert.equal(o.ok, false);
  assert.equal(o.timedOut, false);
  assert.ok(performance.now() - t0 < 1000, "did not wait for the timeout");
  assert.deepEqual(o.failures.map((f) => f.node), ["n2", "n3", "n4"]);

  const slow = await countCopies([{ node: "n2", done: new Promise(() => undefined) }], 50);
  assert.deepEqual({ ok: slow.ok, confirmed: slow.confirmed, need: slow.need, timedOut: slow.timedOut }, { ok: false, confirmed: 1, need: 2, timedOut: true });
  const alone = await countCopies([], 50);
  assert.equal(alone.ok, true, "a single database node: the primary's copy is the majority");
});

/** A fake node: answers SHOW SLAVE STATUS and MASTER_GTID_WAIT as told. */
function fakeNode(o: { status?: Record<string, unknown> | null; waits?: number; fail?: string }): PeerConn & { queries: string[] } {
  const queries: string[] = [];
  return {
    queries,
    query: (async (q: { sql: string }) => {
      queries.push(q.sql);
      if (o.fail) throw Object.assign(new Error(o.fail), { code: "ECONNREFUSED", fatal: true });
      if (q.sql.startsWith("SHOW SLAVE STATUS")) return [o.status === null ? [] : [{ Master_Host: "10.0.0.1", Slave_IO_Running: "Yes", Last_IO_Errno: 0, ...o.status }], []];
      return [[{ r: o.waits ?? 0 }], []];
    }) as unknown as PeerConn["query"],
    end: async () => undefined,
  };
}

describe("the barrier with fake nodes", () => {
  const nodes: DbNodes = { self: { nodeid: 1, addr: "10.0.0.1" }, others: [{ nodeid: 2, addr: "10.0.0.2" }, { nodeid: 3, addr: "10.0.0.3" }] };
  const barrier = (peers: Record<number, PeerConn>, o: { readOnly?: boolean; nodes?: DbNodes | null } = {}) => {
    const q = quiet();
    const b = new MajorityBarrier({
      node: "n1",
      local: async () => ({ readOnly: o.readOnly ?? false, binlogPos: "0-1-42" }),
      nodes: () => (o.nodes === undefined ? nodes : o.nodes),
      connect: (n) => peers[n.nodeid]!,
      timeoutMs: 300,
      log: q.log,
    });
    return Object.assign(b, { lines: q.lines });
  };

  test("one replica of three confirming is a majority; the target is the primary's binlog position", async () => {
    const n2 = fakeNode({});
    const out = await barrier({ 2: n2, 3: fakeNode({ fail: "connect ECONNREFUSED" }) }).wait();
    assert.deepEqual([out.confirmed, out.need, out.total], [2, 2, 3]);
    assert.deepEqual(n2.queries, ["SHOW SLAVE STATUS", "SELECT MASTER_GTID_WAIT(?, ?) AS r", "SHOW SLAVE STATUS"]);
  });

  test("no replica confirms: a 503 naming the counts and why", async () => {
    const b = barrier({ 2: fakeNode({ status: { Slave_IO_Running: "No" } }), 3: fakeNode({ fail: "connect ECONNREFUSED" }) });
    await assert.rejects(b.wait(), (err: unknown) => {
      assert.ok(err instanceof NotDurableError);
      assert.equal(err.status, 503);
      assert.equal(err.headers["Retry-After"], "2");
      assert.equal(err.message, "the change was written on n1 but only 1 of 3 database nodes confirmed it (need 2; n2: replication stopped, n3: unreachable (connection refused)): it may not be kept; check and retry");
      return true;
    });
  });

  test("a diverged node is not counted even though MASTER_GTID_WAIT says it is ahead", async () => {
    const diverged = fakeNode({ status: { Master_Host: "10.0.0.3" }, waits: 0 });
    await assert.rejects(barrier({ 2: diverged, 3: fakeNode({ waits: -1 }) }).wait(), /only 1 of 3 database nodes confirmed it \(need 2; n2: replicates from 10\.0\.0\.3, not from this node, n3: has not applied it\)/);
    assert.deepEqual(diverged.queries, ["SHOW SLAVE STATUS"], "refused before waiting");
  });

  test("the timeout: a node that does not have it in time", async () => {
    const hang: PeerConn = { query: (() => new Promise(() => undefined)) as unknown as PeerConn["query"], end: async () => undefined };
    const t0 = performance.now();
    await assert.rejects(barrier({ 2: hang, 3: hang }).wait(), /only 1 of 3 database nodes confirmed it within 300 ms \(need 2\): it may not be kept/);
    assert.ok(performance.now() - t0 < 1500);
  });

  test("a read-only local database is not the primary: refused without asking the others", async () => {
    const n2 = fakeNode({});
    await assert.rejects(barrier({ 2: n2, 3: n2 }, { readOnly: true }).wait(), /read-only now \(no longer the primary\)/);
    assert.deepEqual(n2.queries, []);
  });

  test("no known node list: this node's copy only, with one warning", async () => {
    const b = barrier({}, { nodes: null });
    assert.equal((await b.wait()).total, 1);
    assert.equal((await b.wait()).ok, true);
    assert.equal(b.lines.filter((l) => l.includes("no list of database nodes")).length, 1);
  });
});

describe("durableWrites and the read gate on a bare app", () => {
  let server: Server;
  let url: string;
  let pass = true;
  let readOnly = true;
  let gateChecks = 0;
  const q = quiet();
  before(async () => {
    const app = express();
    const gate = new ReadGate(async () => (gateChecks++, readOnly), 200);
    app.use("/api", readGate(gate));
    app.use("/api", durableWrites({ wait: async () => { if (!pass) throw new NotDurableError("not kept"); return {} as never; } }, q.log));
    app.post("/api/login", (_req, res) => void res.cookie("ha_sid", "abc").json({ ok: true }));
    app.delete("/api/thing", (_req, res) => void res.status(204).end());
    app.post("/api/bad", (_req, res) => void res.status(409).json({ error: "conflict" }));
    app.get("/api/list", (_req, res) => void res.json([1]));
    app.use(errorHandler(q.log));
    server = await new Promise<Server>((r) => { const s = app.listen(0, "127.0.0.1", () => r(s)); });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test("until the database was seen writable: 503 'being promoted', asked at most every interval; then open for good", async () => {
    const c = new Client(url);
    const r = await c.get("/api/list");
    assert.equal(r.status, 503);
    assert.match(r.json.error, /the database is being promoted on this node/);
    assert.equal(r.headers.get("retry-after"), "2");
    await Promise.all(Array.from({ length: 5 }, () => c.get("/api/list")));
    assert.equal(gateChecks, 1, "no new check within the interval");
    readOnly = false;
    await new Promise((res) => setTimeout(res, 250));
    assert.equal((await c.get("/api/list")).status, 200);
    readOnly = true; // later demotions are not the gate's business (writes fail on read_only)
    await new Promise((res) => setTimeout(res, 250));
    assert.equal((await c.get("/api/list")).status, 200);
    assert.equal(gateChecks, 2);
  });

  test("a write's 2xx waits for the barrier; a failed barrier turns it into a 503 without cookies", async () => {
    const c = new Client(url);
    pass = true;
    const ok = await c.post("/api/login", {});
    assert.equal(ok.status, 200);
    assert.equal(ok.setCookies.length, 1);
    pass = false;
    const no = await c.post("/api/login", {});
    assert.equal(no.status, 503);
    assert.deepEqual(no.json, { error: "not kept" });
    assert.equal(no.headers.get("retry-after"), "2");
    assert.deepEqual(no.setCookies, [], "no session cookie for an unconfirmed login");
    assert.equal((await c.req("DELETE", "/api/thing")).status, 503, "204s too");
    assert.equal((await c.post("/api/bad", {})).status, 409, "refusals go out as they are");
    assert.equal((await c.get("/api/list")).status, 200, "reads are not held");
    assert.ok(q.lines.some((l) => l.includes("change not confirmed by a majority")));
  });
});

const skip = await dbAvailable();
const ADMIN = { username: "admin", password: "correct horse battery staple" };

describe("the panel's writes and the database nodes in its status file", { skip: skip ?? false }, () => {
  let p: Panel;
  let admin: Client;
  const withFlags = (on: number[]) => {
    const v = fakeView();
    return { ...v, nodes: v.nodes.map((n) => ({ ...n, replication: on.includes(n.nodeid) })) };
  };
  before(async () => {
    p = await startPanel();
    await p.addUser(ADMIN.username, ADMIN.password, "admin");
    admin = new Client(p.url);
    await admin.login(ADMIN.username, ADMIN.password); // the fake view has no flags: this node's copy only
  });
  after(async () => {
    await p?.stop();
  });

  test("a single database node (the others replication off): changes pass", async () => {
    await p.setStatus(withFlags([1]));
    const r = await admin.patch("/api/settings", { failback: true });
    assert.equal(r.status, 200, JSON.stringify(r.json));
  });

  test("three database nodes the panel cannot confirm: login, changes and logout get 503; reads work", async () => {
    await p.setStatus(withFlags([1, 2, 3])); // the test panel has no way to reach n2/n3
    const r = await admin.patch("/api/settings", { failback: false });
    assert.equal(r.status, 503);
    assert.match(r.json.error, /^the change was written on n1 but only 1 of 3 database nodes confirmed it \(need 2; n2: no connection to the other database nodes configured, n3: .*\): it may not be kept; check and retry$/);
    assert.equal(r.headers.get("retry-after"), "2");
    const login = await new Client(p.url).post("/api/login", ADMIN);
    assert.equal(login.status, 503);
    assert.deepEqual(login.setCookies, []);
    assert.equal((await admin.get("/api/nodes")).status, 200, "reads are not held");
    // Written here, only not confirmed: the session is gone on this node, the answer says it may not be kept.
    const logout = await admin.post("/api/logout");
    assert.equal(logout.status, 503);
    assert.deepEqual(logout.setCookies, [], "the cookies are not cleared by an unconfirmed logout");
    await p.setStatus(fakeView());
  });
});

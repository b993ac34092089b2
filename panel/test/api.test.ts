// The panel's API against a real MariaDB (a throwaway database per run) and a fake agent status file.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import mysql from "mysql2/promise";
import { Client, dbAvailable, DB_SERVER, fakeView, startPanel, type Panel } from "./helpers.ts";
import { LoginLimiter } from "../server/auth/rate-limit.ts";

const skip = await dbAvailable();
const ADMIN = { username: "admin", password: "correct horse battery staple" };
const VIEWER = { username: "viewer", password: "viewer password 123" };

describe("panel API", { skip: skip ?? false }, () => {
  let p: Panel;
  let admin: Client;
  before(async () => {
    p = await startPanel({ limiter: new LoginLimiter(5, 1000) });
  });
  after(async () => {
    await p?.stop();
  });

  test("health answers without login", async () => {
    const r = await new Client(p.url).get("/api/health");
    assert.equal(r.status, 200);
    assert.equal(r.json.ok, true);
    assert.equal(r.json.node, "n1");
    assert.equal(r.json.start, "restarted");
  });

  test("first start: the one-time setup token from the log creates the admin", async () => {
    assert.ok(p.setupToken, "a setup token was made");
    assert.ok(p.logs.some((l) => l.includes(p.setupToken!)), "the token is printed in the log");
    const c = new Client(p.url);
    assert.deepEqual((await c.get("/api/setup")).json, { needed: true });
    const wrong = await c.post("/api/setup", { token: "nope", ...ADMIN });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.json.field, "token");
    const weak = await c.post("/api/setup", { token: p.setupToken, username: "admin", password: "short" });
    assert.equal(weak.status, 400);
    assert.equal(weak.json.field, "password");
    const ok = await c.post("/api/setup", { token: p.setupToken, ...ADMIN });
    assert.equal(ok.status, 201, JSON.stringify(ok.json));
    assert.equal(ok.json.user.role, "admin");
    const again = await new Client(p.url).post("/api/setup", { token: p.setupToken, username: "evil", password: "another long password" });
    assert.equal(again.status, 409);
    assert.deepEqual((await c.get("/api/setup")).json, { needed: false });
    admin = new Client(p.url);
    await admin.login(ADMIN.username, ADMIN.password);
    const created = await admin.post("/api/users", { ...VIEWER, role: "viewer" });
    assert.equal(created.status, 201, JSON.stringify(created.json));
  });

  test("unauthenticated requests get 401", async () => {
    const c = new Client(p.url);
    for (const [m, path] of [["GET", "/api/nodes"], ["GET", "/api/nodes/1"], ["GET", "/api/vms"], ["GET", "/api/settings"], ["GET", "/api/incidents"], ["GET", "/api/election"], ["GET", "/api/events"], ["GET", "/api/users"], ["GET", "/api/me"], ["PATCH", "/api/nodes/1"], ["PATCH", "/api/vms/web1"], ["POST", "/api/vms"], ["DELETE", "/api/vms/web1"], ["PATCH", "/api/settings"], ["POST", "/api/logout"]] as const) {
      const r = await c.req(m, path, m === "GET" ? undefined : { prio: 1 });
      assert.equal(r.status, 401, `${m} ${path}`);
      assert.equal(typeof r.json.error, "string");
    }
    // A made-up session cookie is not a session.
    c.cookies.set("ha_sid", "forged");
    assert.equal((await c.get("/api/nodes")).status, 401);
    assert.deepEqual((await c.get("/api/session")).json, { user: null });
  });

  test("login: wrong password 401; cookies HttpOnly + SameSite=Strict; session id regenerated (no fixation)", async () => {
    const c = new Client(p.url);
    const bad = await c.post("/api/login", { username: ADMIN.username, password: "wrong password!!" });
    assert.equal(bad.status, 401);
    assert.equal((await c.post("/api/login", { username: "nobody", password: "whatever12345" })).status, 401);
    // An attacker plants a session id before the victim logs in: it is never adopted.
    c.cookies.set("ha_sid", "attacker-chosen-id");
    const r = await c.login(ADMIN.username, ADMIN.password);
    const sid = r.setCookies.find((s) => s.startsWith("ha_sid="))!;
    assert.match(sid, /HttpOnly/i);
    assert.match(sid, /SameSite=Strict/i);
    assert.doesNotMatch(sid, /Secure/i, "plain HTTP: no Secure flag");
    assert.match(r.setCookies.find((s) => s.startsWith("ha_csrf="))!, /SameSite=Strict/i);
    const first = c.cookies.get("ha_sid")!;
    assert.notEqual(first, "attacker-chosen-id");
    assert.ok(first.length >= 40);
    assert.equal((await c.get("/api/me")).json.user.username, "admin");
    // Logging in again (same browser) issues a new id and kills the old one.
    const old = new Client(p.url);
    old.cookies.set("ha_sid", first);
    await c.login(ADMIN.username, ADMIN.password);
    assert.notEqual(c.cookies.get("ha_sid"), first);
    assert.equal((await old.get("/api/nodes")).status, 401, "the pre-login session id is dead");
    assert.equal((await c.get("/api/nodes")).status, 200);
  });

  test("nodes: live status merged from the status file", async () => {
    const r = await admin.get("/api/nodes");
    assert.equal(r.status, 200);
    const [n1, n2, n3] = r.json.nodes;
    assert.equal(n1.status, "leader");
    assert.equal(n1.isMaster, true);
    assert.equal(n2.status, "member");
    assert.equal(n3.replication, false);
    const one = await admin.get("/api/nodes/2");
    assert.equal(one.json.node.name, "n2");
    assert.deepEqual(one.json.vms.map((v: { name: string }) => v.name), ["web1"]);
    assert.equal((await admin.get("/api/nodes/99")).status, 404);
    const el = await admin.get("/api/election");
    assert.equal(el.json.master, 1);
    assert.deepEqual(el.json.quorum, { quorate: true, have: 3, need: 2, members: [1, 2, 3] });
    assert.match(el.json.why, /highest prio/);
  });

  test("admin changes prio, replication, maintenance; each change is audited", async () => {
    const r = await admin.patch("/api/nodes/2", { prio: 200, replication: false });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.node.prio, 200);
    assert.equal(r.json.node.replication, false);
    assert.equal((await admin.patch("/api/nodes/3", { maintenance: true })).status, 200);
    const inc = await admin.get("/api/incidents?kind=node-change");
    const summaries = inc.json.incidents.map((i: { summary: string }) => i.summary);
    assert.ok(summaries.includes("n2: prio 50 -> 200, replication off -> off".replace("off -> off", "on -> off")), summaries.join("|"));
    assert.ok(summaries.includes("n3: maintenance off -> on"));
    assert.equal(inc.json.incidents[0].actor, "user:admin");
    const bad = await admin.patch("/api/nodes/2", { prio: -5 });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.field, "prio");
    const unknown = await admin.patch("/api/nodes/2", { prio: 1, isMaster: true });
    assert.equal(unknown.status, 400);
    assert.equal((await admin.patch("/api/nodes/2", {})).status, 400);
    assert.equal((await admin.patch("/api/nodes/42", { prio: 1 })).status, 404);
  });

  test("VMs: filter, HA flag, restart priority; a local-disk VM cannot be HA", async () => {
    const all = await admin.get("/api/vms");
    assert.deepEqual(all.json.vms.map((v: { name: string }) => v.name), ["db1", "scratch", "web1"]);
    assert.equal(all.json.vms.find((v: { name: string }) => v.name === "web1").liveOwner, 2);
    assert.deepEqual((await admin.get("/api/vms?q=web")).json.vms.map((v: { name: string }) => v.name), ["web1"]);
    assert.deepEqual((await admin.get("/api/vms?ha=false")).json.vms.map((v: { name: string }) => v.name), ["scratch"]);
    assert.deepEqual((await admin.get("/api/vms?node=1")).json.vms.map((v: { name: string }) => v.name), ["db1"]);
    const off = await admin.patch("/api/vms/web1", { ha: false, restartPriority: 7 });
    assert.equal(off.status, 200, JSON.stringify(off.json));
    assert.equal(off.json.vm.ha, false);
    assert.equal(off.json.vm.restartPriority, 7);
    const local = await admin.patch("/api/vms/scratch", { ha: true });
    assert.equal(local.status, 400);
    assert.equal(local.json.field, "ha");
    assert.equal((await admin.patch("/api/vms/nope", { ha: true })).status, 404);
    const inc = await admin.get("/api/incidents?kind=vm-change");
    assert.equal(inc.json.incidents[0].summary, "web1: HA on -> off, restart priority 10 -> 7");
  });

  test("VMs: an admin creates one (pending until the master defines it); bad input, duplicates and local+HA are refused with the field", async () => {
    const body = { name: "app1", ramMb: 512, vcpus: 2, disk: { kind: "network", path: "/run/ha-storage/vms/app1.disk" }, ip: "10.0.0.60", ha: true, restartPriority: 5, node: 3 };
    const ok = await admin.post("/api/vms", body);
    assert.equal(ok.status, 201, JSON.stringify(ok.json));
    assert.equal(ok.json.vm.definitionState, "pending");
    assert.equal(ok.json.vm.nodeid, null, "not placed yet");
    assert.equal(ok.json.vm.requestedNodeid, 3);
    assert.equal(ok.json.vm.ip, "10.0.0.60");
    const listed = (await admin.get("/api/vms")).json.vms.find((v: { name: string }) => v.name === "app1");
    assert.equal(listed.definitionState, "pending");
    const inc = await admin.get("/api/incidents?kind=vm-create");
    assert.equal(inc.json.incidents[0].summary, "app1 created (512 MB, 2 vCPU, network:/run/ha-storage/vms/app1.disk, 10.0.0.60, HA on, restart priority 5, n3 requested)");
    assert.equal(inc.json.incidents[0].actor, "user:admin");
    // Defaults: no HA, priority 0, no address, no node.
    const min = await admin.post("/api/vms", { name: "min1", ramMb: 128, vcpus: 1, disk: { kind: "local", path: "/var/lib/vms/min1.img" } });
    assert.equal(min.status, 201, JSON.stringify(min.json));
    assert.deepEqual([min.json.vm.ha, min.json.vm.restartPriority, min.json.vm.ip, min.json.vm.requestedNodeid], [false, 0, null, null]);

    const bad: Array<[unknown, string]> = [
      [{ ...body, name: "9lives" }, "name"],
      [{ ...body, name: "a b" }, "name"],
      [{ ...body, name: "x".repeat(64) }, "name"],
      [{ ...body, name: "ok2", ramMb: 0 }, "ramMb"],
      [{ ...body, name: "ok2", ramMb: "512" }, "ramMb"],
      [{ ...body, name: "ok2", vcpus: 0 }, "vcpus"],
      [{ ...body, name: "ok2", disk: { kind: "usb", path: "/x" } }, "disk.kind"],
      [{ ...body, name: "ok2", disk: { kind: "network", path: " " } }, "disk.path"],
      [{ ...body, name: "ok2", ip: "10.0.0.999" }, "ip"],
      [{ ...body, name: "ok2", restartPriority: 5000 }, "restartPriority"],
      [{ ...body, name: "ok2", node: 0 }, "node"],
      [{ ...body, name: "ok2", node: 42 }, "node"],
      [{ ...body, name: "ok2", nodeid: 1 }, "nodeid"],
      [{ ...body, name: "ok2", ip: "10.0.0.61", disk: { kind: "local", path: "/var/lib/vms/ok2.img" }, ha: true }, "ha"],
    ];
    for (const [b, field] of bad) {
      const r = await admin.post("/api/vms", b);
      assert.equal(r.status, 400, `${JSON.stringify(b)}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.field, field, JSON.stringify(r.json));
      assert.equal(typeof r.json.error, "string");
    }
    const dup = await admin.post("/api/vms", { ...body, ip: "10.0.0.62" });
    assert.equal(dup.status, 409);
    assert.equal(dup.json.field, "name");
    assert.equal((await admin.post("/api/vms", { ...body, name: "web1", ip: undefined })).status, 409, "a VM that came from the shared storage");
    const sameIp = await admin.post("/api/vms", { ...body, name: "app2" });
    assert.equal(sameIp.status, 409);
    assert.equal(sameIp.json.field, "ip");
    assert.equal((await admin.get("/api/vms")).json.vms.filter((v: { name: string }) => v.name === "ok2" || v.name === "app2").length, 0, "nothing refused was stored");
  });

  test("VMs: only a failed definition can be removed", async () => {
    assert.equal((await admin.req("DELETE", "/api/vms/app1")).status, 409, "pending");
    assert.equal((await admin.req("DELETE", "/api/vms/web1")).status, 409, "defined");
    assert.equal((await admin.req("DELETE", "/api/vms/nope")).status, 404);
    const c = await mysql.createConnection({ ...DB_SERVER, database: p.database });
    try {
      await c.query("UPDATE vms SET definition_state = 'failed', definition_error = 'name taken on the storage' WHERE name = 'min1'");
    } finally {
      await c.end();
    }
    const listed = (await admin.get("/api/vms")).json.vms.find((v: { name: string }) => v.name === "min1");
    assert.equal(listed.definitionError, "name taken on the storage");
    assert.equal((await admin.req("DELETE", "/api/vms/min1", undefined, { csrf: false })).status, 403, "CSRF");
    const r = await admin.req("DELETE", "/api/vms/min1");
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal((await admin.get("/api/vms")).json.vms.some((v: { name: string }) => v.name === "min1"), false);
    assert.equal((await admin.get("/api/incidents?kind=vm-remove")).json.incidents[0].summary, "min1: failed definition removed");
  });

  test("settings: validated, merged, audited", async () => {
    const r = await admin.patch("/api/settings", { failback: true, reserveNodes: [3] });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.settings.failback, true);
    assert.deepEqual(r.json.settings.reserveNodes, [3]);
    const bad = await admin.patch("/api/settings", { clusterIp: "10.0.0.999" });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.field, "clusterIp");
    const prefix = await admin.patch("/api/settings", { clusterIpPrefix: 64 });
    assert.equal(prefix.json.field, "clusterIpPrefix");
    const extra = await admin.patch("/api/settings", { rootPassword: "x" });
    assert.equal(extra.status, 400);
    assert.equal((await admin.get("/api/incidents?kind=settings-change")).json.incidents.length, 1);
  });

  test("viewer reads everything and every write gets 403", async () => {
    const v = new Client(p.url);
    await v.login(VIEWER.username, VIEWER.password);
    for (const path of ["/api/nodes", "/api/vms", "/api/settings", "/api/incidents", "/api/election"]) assert.equal((await v.get(path)).status, 200, path);
    for (const [path, body] of [["/api/nodes/1", { prio: 1 }], ["/api/vms/web1", { ha: true }], ["/api/settings", { failback: false }], ["/api/users/1", { role: "viewer" }]] as const) {
      const r = await v.patch(path, body);
      assert.equal(r.status, 403, path);
      assert.match(r.json.error, /viewer/);
    }
    const create = await v.post("/api/vms", { name: "viewervm", ramMb: 128, vcpus: 1, disk: { kind: "network", path: "/s/v.disk" } });
    assert.equal(create.status, 403);
    assert.equal((await v.req("DELETE", "/api/vms/app1")).status, 403);
    assert.equal((await v.get("/api/users")).status, 403);
    assert.equal((await v.post("/api/users", { username: "x", password: "xxxxxxxxxxxxxxx", role: "admin" })).status, 403);
  });

  test("writes without the CSRF token (or with a wrong one) fail; so do non-JSON bodies", async () => {
    const noHeader = await admin.patch("/api/nodes/1", { prio: 1 }, { csrf: false });
    assert.equal(noHeader.status, 403);
    assert.match(noHeader.json.error, /CSRF/);
    const wrong = await admin.patch("/api/nodes/1", { prio: 1 }, { csrf: false, headers: { "x-csrf-token": "guess" } });
    assert.equal(wrong.status, 403);
    // Header right but cookie missing (another site cannot read or set it).
    const c = new Client(p.url);
    c.cookies.set("ha_sid", admin.cookies.get("ha_sid")!);
    const noCookie = await c.patch("/api/nodes/1", { prio: 1 }, { headers: { "x-csrf-token": admin.csrf! } });
    assert.equal(noCookie.status, 403);
    const form = await admin.req("PATCH", "/api/nodes/1", undefined, { raw: "prio=1", headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(form.status, 415);
    const [row] = (await admin.get("/api/nodes")).json.nodes;
    assert.equal(row.prio, 100, "nothing changed");
    const vm = { name: "csrf1", ramMb: 128, vcpus: 1, disk: { kind: "network", path: "/s/csrf1.disk" } };
    assert.equal((await admin.post("/api/vms", vm, { csrf: false })).status, 403);
    assert.equal((await c.post("/api/vms", vm, { headers: { "x-csrf-token": admin.csrf! } })).status, 403);
    assert.equal((await admin.req("POST", "/api/vms", undefined, { raw: "name=csrf1", headers: { "content-type": "application/x-www-form-urlencoded" } })).status, 415);
    assert.equal((await admin.get("/api/vms")).json.vms.some((v: { name: string }) => v.name === "csrf1"), false);
  });

  test("SQL-injection strings are harmless", async () => {
    const c = new Client(p.url);
    for (const username of ["' OR '1'='1", "admin' -- ", "admin'; DROP TABLE users; --"]) {
      assert.equal((await c.post("/api/login", { username, password: "' OR '1'='1" })).status, 401);
    }
    assert.deepEqual((await admin.get(`/api/vms?q=${encodeURIComponent("%' OR '1'='1")}`)).json.vms, []);
    assert.deepEqual((await admin.get(`/api/vms?q=${encodeURIComponent("%")}`)).json.vms, [], "% is a literal, not a wildcard");
    assert.equal((await admin.patch(`/api/vms/${encodeURIComponent("web1' OR '1'='1")}`, { ha: true })).status, 400);
    assert.equal((await admin.get(`/api/nodes/${encodeURIComponent("1 OR 1=1")}`)).status, 400);
    assert.equal((await admin.get(`/api/incidents?kind=${encodeURIComponent("x' OR 1=1 --")}`)).status, 400);
    const c2 = await mysql.createConnection({ ...DB_SERVER, database: p.database });
    try {
      const [rows] = await c2.query("SELECT count(*) AS n FROM users");
      assert.equal((rows as Array<{ n: number }>)[0]!.n, 2, "users table intact");
      const [vms] = await c2.query("SELECT ha FROM vms WHERE name = 'db1'");
      assert.equal((vms as Array<{ ha: number }>)[0]!.ha, 1);
    } finally {
      await c2.end();
    }
  });

  test("oversized payloads get 413, bad JSON 400", async () => {
    const big = await admin.req("PATCH", "/api/settings", undefined, { raw: JSON.stringify({ clusterIpDevice: "x".repeat(20_000) }) });
    assert.equal(big.status, 413);
    assert.equal(typeof big.json.error, "string");
    const login = await new Client(p.url).req("POST", "/api/login", undefined, { raw: JSON.stringify({ username: "a", password: "p".repeat(100_000) }) });
    assert.equal(login.status, 413);
    const broken = await admin.req("PATCH", "/api/settings", undefined, { raw: "{not json" });
    assert.equal(broken.status, 400);
  });

  test("no quorum: changes are refused with a clear message, reads still work", async () => {
    await p.setStatus(fakeView({ quorate: false }));
    try {
      const r = await admin.patch("/api/nodes/2", { prio: 300 });
      assert.equal(r.status, 409);
      assert.match(r.json.error, /no quorum/);
      assert.equal((await admin.patch("/api/vms/web1", { ha: true })).status, 409);
      const create = await admin.post("/api/vms", { name: "noquorum1", ramMb: 128, vcpus: 1, disk: { kind: "network", path: "/s/nq.disk" } });
      assert.equal(create.status, 409);
      assert.match(create.json.error, /no quorum/);
      assert.equal((await admin.get("/api/vms")).json.vms.some((v: { name: string }) => v.name === "noquorum1"), false);
      assert.equal((await admin.get("/api/nodes")).status, 200);
      assert.equal((await admin.get("/api/election")).json.changesRefused.includes("no quorum"), true);
    } finally {
      await p.setStatus(fakeView());
    }
    assert.equal((await admin.patch("/api/nodes/2", { prio: 300 })).status, 200);
  });

  test("live status is pushed over SSE within 1 s of the status file changing", async () => {
    const events: Array<{ event: string; data: any }> = [];
    const u = new URL(p.url + "/api/events");
    const req = http.get({ host: u.hostname, port: u.port, path: u.pathname, headers: { cookie: `ha_sid=${admin.cookies.get("ha_sid")}` } });
    const res = await new Promise<http.IncomingMessage>((r) => req.on("response", r));
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers["content-type"]), /text\/event-stream/);
    let buf = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
    });
    try {
      const waitFor = async (pred: () => boolean, ms: number) => {
        const end = Date.now() + ms;
        while (!pred()) {
          if (Date.now() > end) return false;
          await new Promise((r) => setTimeout(r, 20));
        }
        return true;
      };
      assert.ok(await waitFor(() => events.some((e) => e.event === "status"), 1000), "initial status");
      const changedAt = Date.now();
      // Written like the agent does, without poking the panel: its own poll must notice.
      const view = fakeView({
        nodes: [
          { nodeid: 1, prio: 100, status: "leader", isMaster: true, reason: "highest prio" },
          { nodeid: 2, prio: 50, status: "network_isolation", isMaster: false, reason: "cannot reach the test IP" },
          { nodeid: 3, prio: 10, status: "member", isMaster: false, reason: "member" },
        ],
      });
      const { writeFileSync, renameSync } = await import("node:fs");
      writeFileSync(p.statusFile + ".x", JSON.stringify({ pid: process.pid, writtenAt: Date.now(), view }));
      renameSync(p.statusFile + ".x", p.statusFile);
      const seen = await waitFor(() => events.some((e) => e.event === "status" && e.data.nodes.some((n: { nodeid: number; status: string }) => n.nodeid === 2 && n.status === "network_isolation")), 1000);
      assert.ok(seen, "the change arrived within 1 s");
      assert.ok(Date.now() - changedAt < 1000);
      // A write through the API is announced too.
      await admin.patch("/api/vms/web1", { restartPriority: 8 });
      assert.ok(await waitFor(() => events.some((e) => e.event === "incident" && e.data.kind === "vm-change"), 1000));
    } finally {
      req.destroy();
      await p.setStatus(fakeView());
    }
  });

  test("login rate limit holds per IP and user, even for the right password", async () => {
    const c = new Client(p.url);
    for (let i = 0; i < 5; i++) assert.equal((await c.post("/api/login", { username: VIEWER.username, password: `guess ${i}` })).status, 401);
    const locked = await c.post("/api/login", { username: VIEWER.username, password: VIEWER.password });
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers.get("retry-after")) > 0);
    assert.match(locked.json.error, /too many/);
    // Another user from the same address is not locked out by it.
    await new Client(p.url).login(ADMIN.username, ADMIN.password);
    const ev = await admin.get("/api/incidents?kind=login-locked");
    assert.equal(ev.json.incidents.length, 1);
  });

  test("logout ends the session", async () => {
    const c = new Client(p.url);
    await c.login(ADMIN.username, ADMIN.password);
    const sid = c.cookies.get("ha_sid")!;
    assert.equal((await c.post("/api/logout", undefined, { csrf: false })).status, 403, "logout needs the CSRF token too");
    assert.equal((await c.post("/api/logout")).status, 204);
    const again = new Client(p.url);
    again.cookies.set("ha_sid", sid);
    assert.equal((await again.get("/api/nodes")).status, 401);
  });

  test("a disabled user's sessions end at once", async () => {
    const v = new Client(p.url);
    await v.post("/api/login", { username: "viewer2", password: "x" });
    assert.equal((await admin.post("/api/users", { username: "viewer2", password: "another password 1", role: "viewer" })).status, 201);
    await v.login("viewer2", "another password 1");
    const list = await admin.get("/api/users");
    const id = list.json.users.find((u: { username: string }) => u.username === "viewer2").id;
    assert.equal((await admin.patch(`/api/users/${id}`, { disabled: true })).status, 200);
    assert.equal((await v.get("/api/nodes")).status, 401);
    assert.equal((await v.post("/api/login", { username: "viewer2", password: "another password 1" })).status, 401);
  });
});

// Sessions in the DB (table `sessions`): expiry, the at-most-every-30-s touch, purge, and a second
// panel on the same (replicated) DB accepting the first panel's cookie, as after a failover.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { pino } from "pino";
import { eq } from "drizzle-orm";
import { sessions, users } from "@ha/db";
import { Client, dbAvailable, startPanel, type Panel } from "./helpers.ts";
import { hashSessionId, SessionStore } from "../server/auth/sessions.ts";
import { createApp } from "../server/app.ts";
import { StatusSource } from "../server/status.ts";

const skip = await dbAvailable();

describe("DB-backed sessions", { skip: skip ?? false }, () => {
  let p: Panel;
  let aliceId: number;
  let bobId: number;
  before(async () => {
    p = await startPanel();
    await p.addUser("alice", "alice password 123", "admin");
    await p.addUser("bob", "bob password 1234", "viewer");
    const rows = await p.db.select({ id: users.id, username: users.username }).from(users);
    aliceId = rows.find((r) => r.username === "alice")!.id;
    bobId = rows.find((r) => r.username === "bob")!.id;
  });
  after(async () => {
    await p?.stop();
  });

  const rowOf = async (id: string) => (await p.db.select().from(sessions).where(eq(sessions.idHash, hashSessionId(id))))[0];

  test("only the id's hash is stored; last_seen is written at most every touchMs; idle and absolute limits", async () => {
    let now = 1_700_000_000_000;
    const store = new SessionStore(p.db, { idleMs: 60_000, maxAgeMs: 300_000, touchMs: 10_000 }, () => now);
    const s = await store.create({ id: aliceId, username: "alice", role: "admin" });
    assert.equal((await p.db.select().from(sessions).where(eq(sessions.idHash, s.id))).length, 0, "the raw id is not a key");
    const row = await rowOf(s.id);
    assert.ok(row, "stored under its SHA-256");
    assert.equal(row.csrf, s.csrf);
    assert.equal(row.lastSeen.getTime(), now);

    now += 5_000;
    assert.equal((await store.get(s.id))?.username, "alice");
    assert.equal((await rowOf(s.id))!.lastSeen.getTime(), now - 5_000, "within touchMs: no DB write");
    now += 5_000;
    assert.ok(await store.get(s.id));
    assert.equal((await rowOf(s.id))!.lastSeen.getTime(), now, "touchMs passed: last_seen written");

    now += 60_001;
    assert.equal(await store.get(s.id), undefined, "idled out");
    assert.equal(await rowOf(s.id), undefined, "an expired session's row goes at once");

    const busy = await store.create({ id: aliceId, username: "alice", role: "admin" });
    for (let i = 0; i < 30; i++) (now += 10_000, assert.ok(await store.get(busy.id)));
    now += 10_000;
    assert.equal(await store.get(busy.id), undefined, "absolute limit (300 s), however active");

    assert.equal(await store.get("not-an-id"), undefined);
    assert.equal(await store.get(undefined), undefined);
  });

  test("a user disabled in the DB (even by another panel) loses the session at the next re-check; destroyUser ends all", async () => {
    let now = 1_700_000_000_000;
    const store = new SessionStore(p.db, { touchMs: 10_000 }, () => now);
    const a = await store.create({ id: bobId, username: "bob", role: "viewer" });
    const b = await store.create({ id: bobId, username: "bob", role: "viewer" });
    await p.db.update(users).set({ disabled: true }).where(eq(users.id, bobId));
    now += 10_000;
    assert.equal(await store.get(a.id), undefined);
    await p.db.update(users).set({ disabled: false }).where(eq(users.id, bobId));
    assert.deepEqual((await store.destroyUser(bobId)).sort(), [b.id].sort(), "the ids this process knew");
    assert.equal(await rowOf(b.id), undefined);
    assert.equal(await store.get(b.id), undefined);
  });

  test("purgeExpired deletes expired rows only", async () => {
    const base = Date.now();
    let now = base;
    const store = new SessionStore(p.db, { idleMs: 60_000, maxAgeMs: 600_000, touchMs: 10_000 }, () => now);
    const old = await store.create({ id: aliceId, username: "alice", role: "admin" });
    now = base + 50_000;
    const fresh = await store.create({ id: aliceId, username: "alice", role: "admin" });
    now = base + 60_000 + 10_000 + 1;
    assert.equal(await store.purgeExpired(), 1 + 0, "only the idle one (idle + touch margin)");
    assert.equal(await rowOf(old.id), undefined);
    assert.ok(await rowOf(fresh.id));
    await store.destroy(fresh.id);
  });

  test("failover: a panel started on another node (same replicated DB) accepts the session; logout there ends it", async () => {
    const c = new Client(p.url);
    await c.login("alice", "alice password 123");
    assert.equal((await c.get("/api/me")).json.user.username, "alice");

    // The "new master's" panel: a fresh process state (no memory of the session), same DB.
    const status = new StatusSource(p.statusFile, 5000, 100);
    await status.start();
    const other = createApp({ db: p.db, status, log: pino({ level: "silent" }), node: "n2", start: "moved", secure: false });
    const server = await new Promise<Server>((r) => {
      const s = other.app.listen(0, "127.0.0.1", () => r(s));
    });
    try {
      const moved = new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      for (const [k, v] of c.cookies) moved.cookies.set(k, v);
      const me = await moved.get("/api/me");
      assert.equal(me.status, 200, JSON.stringify(me.json));
      assert.equal(me.json.user.username, "alice");
      assert.equal((await moved.get("/api/nodes")).status, 200);
      assert.equal((await moved.patch("/api/vms/web1", { restartPriority: 11 })).status, 200, "the CSRF token survives too");
      assert.equal((await moved.post("/api/logout")).status, 204);
      const sid = c.cookies.get("ha_sid")!;
      assert.equal(await rowOf(sid), undefined, "logout deleted the row");
      const again = new Client(moved.base);
      again.cookies.set("ha_sid", sid);
      assert.equal((await again.get("/api/me")).status, 401);
    } finally {
      other.close();
      status.stop();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test("login replaces the browser's previous session (no fixation) in the DB too", async () => {
    const c = new Client(p.url);
    await c.login("alice", "alice password 123");
    const first = c.cookies.get("ha_sid")!;
    await c.login("alice", "alice password 123");
    const second = c.cookies.get("ha_sid")!;
    assert.notEqual(first, second);
    assert.equal(await rowOf(first), undefined);
    assert.ok(await rowOf(second));
  });
});

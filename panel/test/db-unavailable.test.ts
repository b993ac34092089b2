// The panel answers 503 + Retry-After with a clear message, not 500, while its database is away:
// read-only (as during a promotion, on the real MariaDB) or unreachable (a closed port, a missing
// socket, a server that drops the connection).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import net, { type AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "node:http";
import { Writable } from "node:stream";
import mysql from "mysql2/promise";
import { pino } from "pino";
import { DbTarget, openDb } from "@ha/db";
import { Client, dbAvailable, DB_SERVER, startPanel, type Panel } from "./helpers.ts";
import { createApp } from "../server/app.ts";
import { StatusSource } from "../server/status.ts";
import { LoginLimiter } from "../server/auth/rate-limit.ts";

const skip = await dbAvailable();
const ADMIN = { username: "admin", password: "correct horse battery staple" };
const message = (reason: string) => `the cluster database is not available right now (${reason}); retry in a moment`;

function assertUnavailable(r: { status: number; headers: Headers; json: any }, reason: string, what: string) {
  assert.equal(r.status, 503, `${what}: ${JSON.stringify(r.json)}`);
  assert.deepEqual(r.json, { error: message(reason) }, what);
  assert.equal(r.headers.get("retry-after"), "2", what);
}

describe("database read-only (being promoted)", { skip: skip ?? false }, () => {
  let p: Panel;
  let admin: Client;
  before(async () => {
    p = await startPanel({ restrictedAccount: true, limiter: new LoginLimiter(5, 1000) });
    await p.addUser(ADMIN.username, ADMIN.password, "admin");
    admin = new Client(p.url);
    await admin.login(ADMIN.username, ADMIN.password);
  });
  after(async () => {
    await p?.stop();
  });

  test("login and writes get 503 with the reason and Retry-After; reads and known sessions keep working", async () => {
    const root = await mysql.createConnection(DB_SERVER);
    try {
      // The panel's account has no SUPER / READ ONLY ADMIN: read_only applies to it.
      const [grants] = await root.query("SHOW GRANTS FOR ?@'%'", [p.database]);
      assert.doesNotMatch(JSON.stringify(grants), /SUPER|READ ONLY ADMIN|ALL PRIVILEGES ON \*\.\*/);
      await root.query("SET GLOBAL read_only=ON");
      try {
        assertUnavailable(await new Client(p.url).post("/api/login", ADMIN), "read-only", "login");
        assertUnavailable(await admin.patch("/api/settings", { failback: true }), "read-only", "PATCH /api/settings");
        assertUnavailable(await admin.patch("/api/nodes/2", { prio: 60 }), "read-only", "PATCH /api/nodes/2");
        // Reads need no write: the logged-in admin still sees the cluster.
        const nodes = await admin.get("/api/nodes");
        assert.equal(nodes.status, 200, JSON.stringify(nodes.json));
        assert.equal((await admin.get("/api/me")).status, 200);
      } finally {
        await root.query("SET GLOBAL read_only=OFF");
      }
    } finally {
      await root.end();
    }
    // Promoted: the same requests succeed.
    await new Client(p.url).login(ADMIN.username, ADMIN.password);
    const s = await admin.patch("/api/settings", { failback: true });
    assert.equal(s.status, 200, JSON.stringify(s.json));
    assert.ok(p.logs.some((l) => l.includes('"database unavailable"') && l.includes("ER_OPTION_PREVENTS_STATEMENT")), "the log names the DB's error");
    assert.ok(!p.logs.some((l) => l.includes('"request failed"')), "no 500 was logged");
  });
});

/** A panel whose DB pool points at `target` (nothing listens there). */
async function panelOn(target: Partial<DbTarget>) {
  const dir = mkdtempSync(join(tmpdir(), "ha-panel-nodb-"));
  const logs: string[] = [];
  const log = pino({ level: "info" }, new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }));
  const conn = openDb(DbTarget.parse({ user: "ha_panel", database: "ha", ...target }));
  const status = new StatusSource(join(dir, "status.json"));
  const panel = createApp({ db: conn.db, status, log, node: "n1", start: "restarted", secure: false, webDist: join(dir, "no-ui") });
  const server = await new Promise<Server>((resolve) => {
    const s = panel.app.listen(0, "127.0.0.1", () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    logs,
    async stop() {
      panel.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await conn.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("database unreachable", () => {
  const forged = "A".repeat(43); // shaped like a session id, known to nobody: needs the DB

  async function expectUnavailable(target: Partial<DbTarget>, reason: string) {
    const p = await panelOn(target);
    try {
      const c = new Client(p.url);
      assertUnavailable(await c.post("/api/login", ADMIN), reason, "login");
      assertUnavailable(await c.get("/api/setup"), "the users table cannot be read", "GET /api/setup");
      // README: an unknown session cannot be checked: 503, not a logout (401).
      c.cookies.set("ha_sid", forged);
      assertUnavailable(await c.get("/api/session"), reason, "GET /api/session");
      assertUnavailable(await c.get("/api/nodes"), reason, "GET /api/nodes");
      assert.equal((await c.get("/api/health")).status, 200, "health needs no DB");
      assert.ok(!p.logs.some((l) => l.includes('"request failed"')), "no 500 was logged");
    } finally {
      await p.stop();
    }
  }

  test("connection refused (a closed port)", async () => {
    await expectUnavailable({ host: "127.0.0.1", port: await closedPort() }, "connection refused");
  });

  test("no socket (the DB is not running)", async () => {
    await expectUnavailable({ socketPath: join(tmpdir(), `no-such-mysqld-${process.pid}.sock`) }, "no database socket");
  });

  test("connection dropped by the server", async () => {
    const dropper = net.createServer((sock) => sock.destroy());
    await new Promise<void>((r) => dropper.listen(0, "127.0.0.1", () => r()));
    try {
      const p = await panelOn({ host: "127.0.0.1", port: (dropper.address() as AddressInfo).port });
      try {
        const r = await new Client(p.url).post("/api/login", ADMIN);
        assert.equal(r.status, 503, JSON.stringify(r.json));
        assert.match(r.json.error, /^the cluster database is not available right now \(connection (lost|reset)\); retry in a moment$/);
        assert.equal(r.headers.get("retry-after"), "2");
      } finally {
        await p.stop();
      }
    } finally {
      dropper.close();
    }
  });
});

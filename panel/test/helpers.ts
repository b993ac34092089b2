// A panel on 127.0.0.1 with its own throwaway database on the machine's MariaDB and a fake agent
// status file; everything it makes is removed by stop(), also when a test failed.
import { mkdtempSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { Writable } from "node:stream";
import mysql from "mysql2/promise";
import { pino } from "pino";
import { DbTarget, migrate, openDb, nodes, vms, clusterSettings, incidents, users } from "@ha/db";
import { createApp } from "../server/app.ts";
import { StatusSource } from "../server/status.ts";
import { LoginLimiter } from "../server/auth/rate-limit.ts";
import { hashPassword } from "../server/auth/passwords.ts";

export const DB_SERVER = { host: process.env.HA_TEST_DB_HOST ?? "127.0.0.1", port: Number(process.env.HA_TEST_DB_PORT ?? 3306), user: "root" };

export async function dbAvailable(): Promise<string | null> {
  try {
    const c = await mysql.createConnection(DB_SERVER);
    await c.end();
    return null;
  } catch (err) {
    return `no MariaDB at ${DB_SERVER.host}:${DB_SERVER.port} (${(err as Error).message})`;
  }
}

export type FakeNode = { nodeid: number; prio: number; status: string; isMaster: boolean; reason: string; dbEligible?: boolean; dbReason?: string };

/** A NodeView as the agent on n1 (the master) would write it. */
export function fakeView(over: { quorate?: boolean; nodes?: FakeNode[]; master?: number | null } = {}) {
  const ns = over.nodes ?? [
    { nodeid: 1, prio: 100, status: "leader", isMaster: true, reason: "highest prio (100) among quorate members" },
    { nodeid: 2, prio: 50, status: "member", isMaster: false, reason: "member" },
    { nodeid: 3, prio: 10, status: "member", isMaster: false, reason: "member" },
  ];
  const quorate = over.quorate ?? true;
  return {
    localNodeId: 1,
    now: 12345,
    selfStatus: "member",
    quorum: { quorate, have: quorate ? ns.length : 1, need: Math.floor(ns.length / 2) + 1, members: quorate ? ns.map((n) => n.nodeid) : [1] },
    cpg: { members: ns.map((n) => n.nodeid), synced: true, term: 3, majority: quorate },
    master: over.master === undefined ? (ns.find((n) => n.isMaster)?.nodeid ?? null) : over.master,
    isMaster: ns.find((n) => n.nodeid === 1)?.isMaster ?? false,
    holdsClusterIp: true,
    panelRunning: true,
    lease: { fresh: true, ageMs: 10, ipSafeInMs: 0 },
    nodes: ns.map((n) => ({ ...n, addr: `10.0.0.${n.nodeid}` })),
    vms: [{ vm: "web1", owner: 2, epoch: 4, local: null, note: "running on n2" }],
    reasons: ["n1 elected: highest prio (100) among quorate members"],
  };
}

export type Panel = Awaited<ReturnType<typeof startPanel>>;

/**
 * `restrictedAccount`: the panel connects as a throwaway account with only the grants production
 * gives it (SELECT/INSERT/UPDATE/DELETE on its schema, no SUPER or READ ONLY ADMIN), so
 * `SET GLOBAL read_only=ON` applies to it as to a DB being promoted. Otherwise it is root.
 */
export async function startPanel(opts: { limiter?: LoginLimiter; webDist?: string; port?: number; restrictedAccount?: boolean } = {}) {
  const database = `hapanel_${process.pid}_${randomBytes(3).toString("hex")}`;
  const account = opts.restrictedAccount ? { user: database, password: randomBytes(12).toString("hex") } : null;
  const target = DbTarget.parse({ ...DB_SERVER, database });
  const dir = mkdtempSync(join(tmpdir(), "ha-panel-test-"));
  const statusFile = join(dir, "status.json");
  const logs: string[] = [];
  const log = pino({ level: "info" }, new Writable({ write: (chunk, _e, cb) => (logs.push(String(chunk)), cb()) }));
  let conn: ReturnType<typeof openDb> | null = null;
  let server: Server | null = null;
  let panel: ReturnType<typeof createApp> | null = null;
  let status: StatusSource | null = null;
  let keepAlive: NodeJS.Timeout | null = null;
  let view: unknown = fakeView();
  /** The status file's `db` section (the agent's database health), when a test set one. */
  let dbHealth: unknown = undefined;

  const writeStatus = (v: unknown = view) => {
    view = v;
    writeFileSync(`${statusFile}.tmp`, JSON.stringify({ pid: process.pid, writtenAt: Date.now(), view, ...(dbHealth === undefined ? {} : { db: dbHealth }) }));
    renameSync(`${statusFile}.tmp`, statusFile);
  };
  const stop = async () => {
    if (keepAlive) clearInterval(keepAlive);
    panel?.close();
    status?.stop();
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((r) => server!.close(() => r()));
    }
    await conn?.close().catch(() => undefined);
    const c = await mysql.createConnection(DB_SERVER).catch(() => null);
    await c?.query(`DROP DATABASE IF EXISTS \`${database}\``).catch(() => undefined);
    if (account) await c?.query("DROP USER IF EXISTS ?@'%'", [account.user]).catch(() => undefined);
    await c?.end();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await migrate(target);
    if (account) {
      const c = await mysql.createConnection(DB_SERVER);
      try {
        await c.query("CREATE USER ?@'%' IDENTIFIED BY ?", [account.user, account.password]);
        await c.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${database}\`.* TO ?@'%'`, [account.user]);
      } finally {
        await c.end();
      }
    }
    conn = openDb(account ? { ...target, ...account } : target);
    const db = conn.db;
    await db.insert(nodes).values([
      { nodeid: 1, name: "n1", address: "10.0.0.1", prio: 100 },
      { nodeid: 2, name: "n2", address: "10.0.0.2", prio: 50 },
      { nodeid: 3, name: "n3", address: "10.0.0.3", prio: 10, replication: false },
    ]);
    await db.insert(vms).values([
      { name: "web1", nodeid: 2, ramMb: 1024, vcpus: 1, diskLocation: "rbd:pool/web1", storage: "network", ha: true, restartPriority: 10, state: "running" },
      { name: "db1", nodeid: 1, ramMb: 4096, vcpus: 4, diskLocation: "rbd:pool/db1", storage: "network", ha: true, restartPriority: 100, state: "running" },
      { name: "scratch", nodeid: 3, ramMb: 512, vcpus: 1, diskLocation: "/var/lib/vms/scratch.qcow2", storage: "local", ha: false, state: "running" },
    ]);
    await db.insert(clusterSettings).values({ id: 1, clusterIp: "10.0.0.100", clusterIpPrefix: 24, clusterIpDevice: "vmbr0", testIp: "10.0.1.1", reserveNodes: [] });
    await db.insert(incidents).values({
      actor: "n2",
      kind: "failover",
      severity: "warning",
      nodeid: 1,
      summary: "n1 failed; n2 took over",
      reason: "n1 left the membership (token timeout)",
      phases: [
        { name: "detection", at: "2025-01-01T00:00:00.000Z", ms: 1200, ok: true },
        { name: "election", at: "2025-01-01T00:00:01.200Z", ms: 150, ok: true },
        { name: "ip-move", at: "2025-01-01T00:00:01.350Z", ms: 2100, ok: true },
        { name: "db-promotion", at: "2025-01-01T00:00:03.450Z", ms: 800, ok: true },
        { name: "vm-restarts", at: "2025-01-01T00:00:04.250Z", ms: 5200, ok: true },
      ],
    });
    writeStatus();
    status = new StatusSource(statusFile, 5000, 100);
    await status.start();
    // Like the agent: rewrite at least every second so the view stays live.
    keepAlive = setInterval(() => writeStatus(), 1000);
    keepAlive.unref();
    panel = createApp({ db, status, log, node: "n1", start: "restarted", secure: false, limiter: opts.limiter, webDist: opts.webDist ?? join(dir, "no-ui") });
    const setupToken = await panel.init();
    server = await new Promise<Server>((resolve, reject) => {
      const s = panel!.app.listen(opts.port ?? 0, "127.0.0.1", () => resolve(s));
      s.on("error", reject);
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    /** Adds a user directly in the DB (tests only). */
    const addUser = async (username: string, password: string, role: "admin" | "viewer") => {
      await db.insert(users).values({ username, role, passwordHash: await hashPassword(password) });
    };
    /** Writes the agent's view and (until the next call) its database health section, then waits for the panel to read it. */
    const setStatus = async (v: unknown, db?: unknown) => {
      dbHealth = db;
      writeStatus(v);
      await status!.poll();
    };
    return { url, db, database, statusFile, logs, setupToken, addUser, setStatus, stop, panel };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A browser-like client: keeps cookies, sends the CSRF header when asked. */
export class Client {
  readonly cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  get csrf() {
    return this.cookies.get("ha_csrf");
  }

  async req(method: string, path: string, body?: unknown, o: { csrf?: boolean; headers?: Record<string, string>; raw?: string } = {}) {
    const headers: Record<string, string> = { ...o.headers };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    if (body !== undefined || o.raw !== undefined) headers["content-type"] ??= "application/json";
    if (o.csrf !== false && this.csrf && method !== "GET") headers["x-csrf-token"] = this.csrf;
    const res = await fetch(this.base + path, { method, headers, body: o.raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair!.indexOf("=");
      const k = pair!.slice(0, eq);
      const v = pair!.slice(eq + 1);
      if (v === "" || /expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(k);
      else this.cookies.set(k, v);
    }
    const text = await res.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, headers: res.headers, json, setCookies: res.headers.getSetCookie() };
  }

  get = (p: string, o?: Parameters<Client["req"]>[3]) => this.req("GET", p, undefined, o);
  post = (p: string, b?: unknown, o?: Parameters<Client["req"]>[3]) => this.req("POST", p, b, o);
  patch = (p: string, b?: unknown, o?: Parameters<Client["req"]>[3]) => this.req("PATCH", p, b, o);

  async login(username: string, password: string) {
    const r = await this.post("/api/login", { username, password });
    if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.json)}`);
    return r;
  }
}

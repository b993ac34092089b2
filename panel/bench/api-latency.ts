// Benchmark (prints numbers, asserts nothing): API latency of the node and VM lists under load.
//  - a real panel process (server/main.ts) on 127.0.0.1, logged in as an admin (session in the DB);
//  - a throwaway database on the local MariaDB (127.0.0.1:3306, root) with 16 nodes and 1000 VMs,
//    and an agent status file describing the same cluster;
//  - autocannon (npm) with 100 concurrent connections per endpoint: p50 / p90 / p99 / max latency
//    and requests per second. The load generator runs in this process, the panel in its own.
// Run: node --import tsx panel/bench/api-latency.ts [--connections 100] [--seconds 10] [--nodes 16] [--vms 1000]
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import mysql from "mysql2/promise";
import { DbTarget, clusterSettings, migrate, nodes, openDb, users, vms } from "@ha/db";
import { hashPassword } from "../server/auth/passwords.ts";

const { values: args } = parseArgs({
  options: {
    connections: { type: "string", default: "100" },
    seconds: { type: "string", default: "10" },
    nodes: { type: "string", default: "16" },
    vms: { type: "string", default: "1000" },
  },
});
const CONNECTIONS = Number(args.connections);
const SECONDS = Number(args.seconds);
const NODES = Number(args.nodes);
const VMS = Number(args.vms);
const MAIN = fileURLToPath(new URL("../server/main.ts", import.meta.url));
const DB_SERVER = { host: process.env.HA_TEST_DB_HOST ?? "127.0.0.1", port: Number(process.env.HA_TEST_DB_PORT ?? 3306), user: "root" };
const ADMIN = { username: "bench", password: "bench password 1234" };

/** The agent's view of a healthy cluster of `n` nodes, n1 master; VMs spread round-robin. */
function statusDoc(n: number, vmNames: string[]) {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  return {
    pid: process.pid,
    writtenAt: Date.now(),
    view: {
      localNodeId: 1,
      now: 0,
      selfStatus: "leader",
      quorum: { quorate: true, have: n, need: Math.floor(n / 2) + 1, members: ids },
      cpg: { members: ids, synced: true, term: 1, majority: true },
      master: 1,
      isMaster: true,
      holdsClusterIp: true,
      panelRunning: true,
      lease: { fresh: true, ageMs: 10, ipSafeInMs: 0 },
      nodes: ids.map((id) => ({ nodeid: id, prio: 1000 - id, status: id === 1 ? "leader" : "member", isMaster: id === 1, reason: id === 1 ? "highest prio" : "member", addr: `10.0.0.${id}` })),
      vms: vmNames.map((vm, i) => ({ vm, owner: (i % n) + 1, epoch: 1, local: null, note: `running on n${(i % n) + 1}` })),
      reasons: ["n1 elected: highest prio"],
    },
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url: string, child: ChildProcess) {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`the panel exited (code ${child.exitCode})`);
    if (await fetch(`${url}/api/health`).then((r) => r.ok).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the panel did not answer /api/health within 30 s");
}

type Row = { endpoint: string; p50: number; p90: number; p99: number; max: number; rps: number; bytes: number; errors: number; non2xx: number; total: number };

async function load(url: string, path: string, cookie: string): Promise<Row> {
  const r = await autocannon({ url: url + path, connections: CONNECTIONS, duration: SECONDS, headers: { cookie, accept: "application/json" } });
  return {
    endpoint: `GET ${path}`,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    rps: Math.round(r.requests.average),
    bytes: Math.round(r.throughput.average / Math.max(1, r.requests.average)),
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    total: r.requests.total,
  };
}

async function main() {
  const database = `hapanel_bench_${process.pid}`;
  const target = DbTarget.parse({ ...DB_SERVER, database });
  const dir = mkdtempSync(join(tmpdir(), "ha-panel-bench-"));
  const statusFile = join(dir, "status.json");
  let child: ChildProcess | null = null;
  let keepAlive: NodeJS.Timeout | null = null;
  try {
    await migrate(target);
    const conn = openDb(target);
    const vmNames = Array.from({ length: VMS }, (_, i) => `vm${String(i + 1).padStart(4, "0")}`);
    try {
      const db = conn.db;
      await db.insert(nodes).values(Array.from({ length: NODES }, (_, i) => ({ nodeid: i + 1, name: `n${i + 1}`, address: `10.0.0.${i + 1}`, prio: 1000 - i - 1 })));
      for (let i = 0; i < VMS; i += 200) {
        await db.insert(vms).values(vmNames.slice(i, i + 200).map((name, j) => ({
          name, nodeid: ((i + j) % NODES) + 1, ramMb: 1024, vcpus: 2, diskLocation: `rbd:pool/${name}`, storage: "network" as const, ha: (i + j) % 5 !== 0, restartPriority: (i + j) % 10, state: "running" as const,
        })));
      }
      await db.insert(clusterSettings).values({ id: 1, clusterIp: "10.0.0.100", clusterIpPrefix: 24, clusterIpDevice: "vmbr0", testIp: "10.0.1.1", reserveNodes: [] });
      await db.insert(users).values({ username: ADMIN.username, role: "admin", passwordHash: await hashPassword(ADMIN.password) });
    } finally {
      await conn.close();
    }
    // Like the agent: the status file is rewritten every second.
    const writeStatus = () => {
      writeFileSync(`${statusFile}.tmp`, JSON.stringify(statusDoc(NODES, vmNames)));
      renameSync(`${statusFile}.tmp`, statusFile);
    };
    writeStatus();
    keepAlive = setInterval(writeStatus, 1000);

    const port = await freePort();
    child = fork(MAIN, [], {
      execArgv: ["--import", "tsx"],
      env: {
        ...process.env, PANEL_HOST: "127.0.0.1", PANEL_PORT: String(port), PANEL_NODE: "n1", PANEL_STATUS_FILE: statusFile,
        PANEL_RELOCATED_MARKER: join(dir, "relocated"), PANEL_DB_HOST: DB_SERVER.host, PANEL_DB_PORT: String(DB_SERVER.port),
        PANEL_DB_USER: DB_SERVER.user, PANEL_DB_NAME: database, PANEL_LOG_LEVEL: "warn", PANEL_WEB_DIST: join(dir, "no-ui"),
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const url = `http://127.0.0.1:${port}`;
    await waitHealthy(url, child);
    const login = await fetch(`${url}/api/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ADMIN) });
    if (!login.ok) throw new Error(`login: ${login.status} ${await login.text()}`);
    const cookie = login.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");

    console.log(`panel API latency: ${NODES} nodes, ${VMS} VMs, ${CONNECTIONS} concurrent connections, ${SECONDS} s per endpoint (panel in its own process, MariaDB ${DB_SERVER.host})`);
    const rows: Row[] = [];
    for (const path of ["/api/nodes", "/api/vms", "/api/vms?q=vm01&ha=true", "/api/health"]) {
      await load(url, path, cookie); // warm-up run, discarded: JIT and the DB pool settle
      rows.push(await load(url, path, cookie));
    }
    console.table(rows.map((r) => ({
      endpoint: r.endpoint, "p50 ms": r.p50, "p90 ms": r.p90, "p99 ms": r.p99, "max ms": r.max, "req/s": r.rps, "bytes/resp": r.bytes, requests: r.total, "non-2xx": r.non2xx, errors: r.errors,
    })));
  } finally {
    if (keepAlive) clearInterval(keepAlive);
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    const c = await mysql.createConnection(DB_SERVER).catch(() => null);
    await c?.query(`DROP DATABASE IF EXISTS \`${database}\``).catch(() => undefined);
    await c?.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench: ${err.message}`);
  process.exit(1);
});

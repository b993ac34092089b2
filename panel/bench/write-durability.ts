// What the majority barrier (panel/server/durability.ts) costs a write (prints numbers, asserts
// nothing). A 3-node lab with MariaDB (no agents): n1 promoted, n2 and n3 replicating with
// semi-sync, as the daemon sets them up. Each write is one INSERT into incidents as the panel's
// account on n1 (autocommit: a commit); "barrier" adds the barrier after it, as the panel does
// before answering. Latency = INSERT start -> acknowledged. The lab runs without fsync per commit
// (lab/src/mariadb.ts), so this is the replication round trip, not disk latency.
// Run (it starts a lab): flock /tmp/ha-lab.lock node --import tsx panel/bench/write-durability.ts [--n 500] [--concurrency 16]
import mysql from "mysql2/promise";
import { pino } from "pino";
import { Lab } from "../../lab/src/index.ts";
import { APP_DATABASE, LAB_DB_USERS, hostSocketPath } from "../../lab/src/mariadb.ts";
import { argNumber } from "../../lab/bench/args.ts";
import { migrate, DbTarget } from "@ha/db";
import { replicationOf } from "../../agent/test/integration/db-lab.ts";
import { MajorityBarrier, localState } from "../server/durability.ts";

const N = argNumber("n", 500);
const CONCURRENCY = argNumber("concurrency", 16);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

async function run(pool: mysql.Pool, barrier: MajorityBarrier | null, n: number, workers: number) {
  const lat: number[] = [];
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < n) {
        const i = next++;
        const s = performance.now();
        await pool.query("INSERT INTO incidents (actor, kind, summary, reason) VALUES ('bench', 'bench', ?, '')", [`w${i}`]);
        if (barrier) await barrier.wait().catch(() => failed++);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), perSec: n / secs, failed };
}

async function main() {
  const lab = await Lab.up({ name: "pdurb", nodes: 3, mariadb: true });
  const pools: mysql.Pool[] = [];
  let barrier: MajorityBarrier | null = null;
  try {
    await replicationOf(lab, 1, new Set()).promote();
    await migrate(DbTarget.parse({ socketPath: hostSocketPath(lab, 1), user: "root", database: APP_DATABASE }));
    const pool = mysql.createPool({ socketPath: hostSocketPath(lab, 1), ...LAB_DB_USERS.panel, database: APP_DATABASE, connectionLimit: CONCURRENCY });
    pools.push(pool);
    const addr = (id: number) => lab.topo.nodes.find((x) => x.id === id)!.ctlAddr;
    barrier = new MajorityBarrier({
      node: "n1",
      local: localState(pool),
      nodes: () => ({ self: { nodeid: 1, addr: addr(1) }, others: [2, 3].map((id) => ({ nodeid: id, addr: addr(id) })) }),
      connect: (node) => mysql.createPool({ socketPath: hostSocketPath(lab, node.nodeid), ...LAB_DB_USERS.panel, connectionLimit: CONCURRENCY }),
      timeoutMs: 4000,
      log: pino({ level: "warn" }),
    });
    await run(pool, barrier, 50, 4); // warm-up: connections, buffer pool
    console.log(`write durability on a 3-node lab (n1 primary, n2+n3 semi-sync replicas), ${N} writes per row`);
    console.log(`  ${"mode".padEnd(34)} ${"p50".padStart(9)} ${"p99".padStart(9)} ${"writes/s".padStart(9)}`);
    for (const [workers, label] of [[1, "sequential"], [CONCURRENCY, `${CONCURRENCY} concurrent`]] as const) {
      for (const b of [null, barrier]) {
        const r = await run(pool, b, N, workers);
        const mode = `${label}, ${b ? "commit + barrier" : "commit only"}`;
        console.log(`  ${mode.padEnd(34)} ${r.p50.toFixed(2).padStart(6)} ms ${r.p99.toFixed(2).padStart(6)} ms ${r.perSec.toFixed(0).padStart(9)}${r.failed ? `   (${r.failed} not confirmed)` : ""}`);
      }
    }
  } finally {
    await barrier?.close();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await lab.down();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

// Database benchmarks on a real lab (prints numbers, asserts nothing). Three parts:
//  1. kill runs: a stream of acknowledged writes (4 writers, >= --rows acknowledged), then SIGKILL of
//     the primary's mariadbd, promotion of the next replica started at once (the agents' failure
//     detection is not included: see part 3). Per kill: time from the kill to the first write the
//     new primary accepts, and rows acknowledged / lost / duplicated. --kills rounds (default 20).
//  2. replication lag under a paced write rate (--rate writes/s for --seconds s): per replica, how
//     long the oldest acknowledged row not yet applied there has been waiting, sampled every 50 ms.
//  3. (--agent-kills N, default 0) the same promotion with agents: crash the master node (all its
//     processes and links) and time until another node's database accepts a write.
// Run: node --import tsx lab/bench/db-replication.ts [--kills 20] [--rows 1000] [--rate 500] [--seconds 30] [--agent-kills 5]
import { performance } from "node:perf_hooks";
import type mysql from "mysql2/promise";
import { Lab, LAB_DB_USERS, connectNode, sleep } from "../src/index.ts";
import { APP_DATABASE, startMariadb } from "../src/mariadb.ts";
import { effectsOf, panelConn, replicationOf, startStream, waitConverged, waitFor } from "../../agent/test/integration/db-lab.ts";
import { argText as arg } from "./args.ts";

const KILLS = Number(arg("kills", "20"));
const ROWS = Number(arg("rows", "1000"));
const RATE = Number(arg("rate", "500"));
const SECONDS = Number(arg("seconds", "30"));
const AGENT_KILLS = Number(arg("agent-kills", "0"));
const REPLICAS = [1, 2, 3];
const OFF = new Set<number>();

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};
const stats = (xs: number[], unit = "ms") =>
  xs.length ? `median ${pct(xs, 0.5)} ${unit}   p95 ${pct(xs, 0.95)} ${unit}   max ${Math.max(...xs)} ${unit}   min ${Math.min(...xs)} ${unit}   (n=${xs.length})` : "(no samples)";

/** Retries an INSERT on `id` as the panel user until one is accepted; resolves with that moment. */
async function firstAcceptedWrite(lab: Lab, id: number, timeoutMs: number, stop: () => boolean = () => false): Promise<number | null> {
  const deadline = performance.now() + timeoutMs;
  let c = null as mysql.Connection | null;
  while (performance.now() < deadline && !stop()) {
    try {
      c ??= await panelConn(lab, id);
      await c.query("INSERT INTO incidents (actor, kind, summary, reason) VALUES ('bench', 'probe', 'first write', '')");
      const t = performance.now();
      await c.end().catch(() => undefined);
      return t;
    } catch {
      await c?.end().catch(() => undefined);
      c = null;
      await sleep(5);
    }
  }
  await c?.end().catch(() => undefined);
  return null;
}

async function countTags(lab: Lab, id: number, acked: string[]) {
  const c = await connectNode(lab, id);
  try {
    const [rows] = await c.query(`SELECT summary, COUNT(*) AS n FROM ${APP_DATABASE}.incidents WHERE kind = 'stream' GROUP BY summary`);
    const seen = new Map((rows as Array<{ summary: string; n: number }>).map((r) => [r.summary, Number(r.n)]));
    return { lost: acked.filter((t) => !seen.has(t)).length, duplicated: [...seen.values()].filter((n) => n > 1).length };
  } finally {
    await c.end();
  }
}

async function setUp(name: string, agents = false) {
  const lab = await Lab.up({ name, nodes: 3, agents, mariadb: agents });
  if (!agents) {
    await Promise.all(lab.topo.nodes.map((n) => startMariadb(lab, n.id)));
    const p = effectsOf(lab, 1, OFF);
    await p.promote("bench: n1 is master");
    p.stop();
    for (const id of [2, 3]) {
      const f = effectsOf(lab, id, OFF);
      await f.follow(1, "bench: n1 is master");
      f.stop();
    }
  }
  return lab;
}

async function killRuns(lab: Lab) {
  const writable: number[] = [];
  const totals = { acked: 0, lost: 0, duplicated: 0 };
  let primary = 1;
  const allAcked: string[] = [];
  for (let round = 1; round <= KILLS; round++) {
    const next = REPLICAS[(REPLICAS.indexOf(primary) + 1) % REPLICAS.length]!;
    const stream = await startStream(lab, primary, 4, round);
    await waitFor(() => stream.acked.length >= ROWS || stream.errors.length > 0, 60_000, `${ROWS} acknowledged rows`);
    const t0 = performance.now();
    lab.kill(primary, "mariadb");
    const [okAt] = await Promise.all([firstAcceptedWrite(lab, next, 60_000), replicationOf(lab, next, OFF).promote()]);
    await stream.stop();
    allAcked.push(...stream.acked);
    if (okAt !== null) writable.push(Math.round(okAt - t0));
    const { lost, duplicated } = await countTags(lab, next, allAcked);
    totals.acked += stream.acked.length;
    totals.lost += lost;
    totals.duplicated += duplicated;
    console.log(`  kill ${String(round).padStart(2)}: n${primary} -> n${next}: writable after ${okAt === null ? "never" : `${Math.round(okAt - t0)} ms`}; rows acknowledged ${stream.acked.length}, lost ${lost}, duplicated ${duplicated}`);
    // The old primary comes back as a replica before the next round.
    const old = primary;
    primary = next;
    await startMariadb(lab, old);
    await replicationOf(lab, old, OFF).follow(primary);
    for (const id of REPLICAS.filter((x) => x !== primary)) await waitConverged(lab, id, primary, 60_000);
  }
  console.log(`DB promotion, kill -> first accepted write on the new primary (promotion started at the kill): ${stats(writable)}`);
  console.log(`acknowledged-write kill runs: ${KILLS} kills, >= ${ROWS} rows acknowledged before each; total acknowledged ${totals.acked}, lost ${totals.lost}, duplicated ${totals.duplicated}`);
  return primary;
}

async function lagRun(lab: Lab, primary: number) {
  const replicas = REPLICAS.filter((x) => x !== primary);
  /** Acknowledged rows by id (auto-increment), with the moment each was acknowledged. */
  const ackAt = new Map<number, number>();
  let running = true;
  const writers = 4;
  const conns = await Promise.all(Array.from({ length: writers }, () => panelConn(lab, primary)));
  const start = performance.now();
  let sent = 0;
  // Paced: writer w sends row k at start + k / RATE seconds (k = w, w + writers, ...).
  const loops = conns.map(async (c, w) => {
    for (let k = w; running; k += writers) {
      const due = start + (k * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (!running) break;
      const [r] = await c.query("INSERT INTO incidents (actor, kind, summary, reason) VALUES ('bench', 'lag', ?, '')", [`lag-${k}`]);
      ackAt.set((r as mysql.ResultSetHeader).insertId, performance.now());
      sent++;
    }
  });
  const samples = new Map<number, number[]>(replicas.map((id) => [id, []]));
  const readers = await Promise.all(replicas.map((id) => connectNode(lab, id)));
  const sampler = (async () => {
    while (running) {
      const appliedBy = await Promise.all(
        replicas.map(async (id, i) => {
          const [r] = await readers[i]!.query(`SELECT COALESCE(MAX(id), 0) AS id FROM ${APP_DATABASE}.incidents`);
          const applied = Number((r as Array<{ id: number }>)[0]!.id);
          const now = performance.now();
          // The oldest acknowledged row the replica has not applied yet: how long it has waited.
          let oldest = Infinity;
          for (const [rowId, t] of ackAt) if (rowId > applied && t < oldest) oldest = t;
          samples.get(id)!.push(oldest === Infinity ? 0 : Math.round(now - oldest));
          return applied;
        }),
      );
      // Rows every replica has applied no longer matter.
      const everywhere = Math.min(...appliedBy);
      for (const rowId of ackAt.keys()) if (rowId <= everywhere) ackAt.delete(rowId);
      await sleep(50);
    }
  })();
  await sleep(SECONDS * 1000);
  running = false;
  await Promise.all(loops);
  const elapsed = (performance.now() - start) / 1000;
  await sampler;
  await Promise.all([...conns, ...readers].map((c) => c.end().catch(() => undefined)));
  console.log(`replication lag at a target of ${RATE} writes/s for ${SECONDS} s (4 writers, semi-sync AFTER_SYNC): achieved ${(sent / elapsed).toFixed(0)} writes/s (${sent} rows)`);
  for (const id of replicas) console.log(`  n${id}: lag (oldest acknowledged row not yet applied) ${stats(samples.get(id)!)}`);
}

async function agentKills() {
  const lab = await setUp("dbx", true);
  const times: number[] = [];
  try {
    const writableNode = async () => {
      for (const n of lab.topo.nodes) {
        try {
          const c = await connectNode(lab, n.id, { user: LAB_DB_USERS.panel.user, password: LAB_DB_USERS.panel.password });
          try {
            const [r] = await c.query("SELECT @@global.read_only AS ro");
            if (Number((r as Array<{ ro: number }>)[0]!.ro) === 0) return n.id;
          } finally {
            await c.end();
          }
        } catch {
          // not up (yet)
        }
      }
      return null;
    };
    const until = async <T>(fn: () => Promise<T | null>, ms: number, what: string) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const v = await fn();
        if (v !== null) return v;
        if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
        await sleep(100);
      }
    };
    /** Every node but the master replicates (so each crash starts from the same healthy state). */
    const replicasRunning = async (master: number) => {
      for (const n of lab.topo.nodes.filter((x) => x.id !== master)) {
        try {
          const c = await connectNode(lab, n.id);
          try {
            const [r] = await c.query("SHOW SLAVE STATUS");
            const st = (r as Array<Record<string, unknown>>)[0];
            if (st?.Slave_IO_Running !== "Yes" || st?.Slave_SQL_Running !== "Yes") return null;
          } finally {
            await c.end();
          }
        } catch {
          return null;
        }
      }
      return true;
    };
    /** The promotion is complete once its incident is written (after the schema migration). */
    const promoted = async (id: number) => {
      try {
        const c = await connectNode(lab, id);
        try {
          const [r] = await c.query(`SELECT COUNT(*) AS n FROM ${APP_DATABASE}.incidents WHERE kind = 'db-promotion' AND nodeid = ?`, [id]);
          return Number((r as Array<{ n: number }>)[0]!.n) > 0 ? true : null;
        } finally {
          await c.end();
        }
      } catch {
        return null;
      }
    };
    let master = await until(writableNode, 90_000, "a writable primary");
    for (let i = 1; i <= AGENT_KILLS; i++) {
      await until(() => promoted(master), 60_000, `n${master}'s promotion finished`);
      await until(() => replicasRunning(master), 90_000, `every replica of n${master} running`);
      const t0 = performance.now();
      await lab.crash(master);
      const others = lab.topo.nodes.map((n) => n.id).filter((id) => id !== master);
      let winner = 0;
      const got = await Promise.all(others.map(async (id) => {
        const t = await firstAcceptedWrite(lab, id, 60_000, () => winner !== 0);
        if (t !== null && !winner) winner = id;
        return t;
      }));
      if (!winner) {
        console.log(`  crash ${i}: n${master}: no other node accepted a write within 60 s; stopping`);
        break;
      }
      const t = Math.min(...got.filter((x): x is number => x !== null));
      times.push(Math.round(t - t0));
      console.log(`  crash ${i}: n${master} -> n${winner} accepted a write after ${Math.round(t - t0)} ms`);
      await lab.boot(master);
      await lab.waitQuorate(lab.topo.nodes.map((n) => n.id), 60_000);
      master = winner;
    }
    console.log(`DB failover with agents, node crash -> first accepted write on the new primary (detection + election + promotion): ${stats(times)}`);
  } catch (err) {
    console.log(`DB failover with agents stopped after ${times.length} crashes (${stats(times)}): ${(err as Error).message}`);
    await diagnose(lab);
  } finally {
    await lab.down();
  }
}

/** What each node's database and agent say, before the lab (and its logs) is torn down. */
async function diagnose(lab: Lab) {
  for (const n of lab.topo.nodes) {
    try {
      const c = await connectNode(lab, n.id);
      try {
        const [v] = await c.query("SELECT @@global.read_only AS ro, @@global.gtid_current_pos AS pos");
        const [r] = await c.query("SHOW SLAVE STATUS");
        const st = (r as Array<Record<string, unknown>>)[0];
        console.log(`  n${n.id}: ${JSON.stringify((v as unknown[])[0])} replica: ${st ? JSON.stringify({ host: st.Master_Host, io: st.Slave_IO_Running, sql: st.Slave_SQL_Running, ioError: st.Last_IO_Error, sqlError: st.Last_SQL_Error }) : "none"}`);
      } finally {
        await c.end();
      }
    } catch (err) {
      console.log(`  n${n.id}: ${(err as Error).message}`);
    }
    const log = await lab.exec(n.id, ["sh", "-c", "grep -E 'Database|database|promot' /var/log/corosync/corolistener.log | tail -n 8 | cut -c1-700"]);
    console.log(log.stdout.split("\n").filter(Boolean).map((l) => `    ${l}`).join("\n"));
  }
}

async function main() {
  console.log(`lab: 3 nodes, one mariadbd each, GTID replication, semi-sync AFTER_SYNC (timeout 10 s), no fsync per commit (lab)`);
  if (KILLS > 0 || SECONDS > 0) {
    const lab = await setUp("dbx");
    try {
      const primary = KILLS > 0 ? await killRuns(lab) : 1;
      if (SECONDS > 0) await lagRun(lab, primary);
    } finally {
      await lab.down();
    }
  }
  if (AGENT_KILLS > 0) await agentKills();
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);

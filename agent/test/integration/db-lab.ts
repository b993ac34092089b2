// Helpers for the database tests on a real lab: one mariadbd per node, DbReplication driven from
// the test process (it reaches every node's socket through /proc/<pid>/root, so it needs no
// address on the lab network; the replicas themselves replicate over the lab's control network).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import type { Lab } from "../../../lab/src/index.ts";
import { APP_DATABASE, LAB_DB_USERS, connectNode, hostSocketPath } from "../../../lab/src/mariadb.ts";
import { migrate, DbTarget } from "@ha/db";
import { DbReplication, type DbReplicationOptions } from "../../src/effects/db/replication.ts";
import { DbEffects, DatabaseConfigSchema, type DatabaseConfig } from "../../src/effects/db/effects.ts";
import { readState } from "../../src/effects/db/state.ts";
import { containsPos, formatGtidPos } from "../../src/effects/db/gtid.ts";

export function replicationOf(lab: Lab, self: number, off: Set<number>, opts: Partial<DbReplicationOptions> = {}): DbReplication {
  return new DbReplication({
    self,
    peers: () => lab.topo.nodes.map((n) => ({ nodeid: n.id, host: n.ctlAddr, replication: !off.has(n.id) })),
    connect: (id) => connectNode(lab, id),
    repl: LAB_DB_USERS.repl,
    appDatabase: APP_DATABASE,
    reachTimeoutMs: 1000,
    masterWaitMs: 10_000,
    ...opts,
  });
}

/**
 * The daemon's facade for a node, reaching nodes the test's way (the re-clone's tools too: every
 * node's socket; what a re-clone discards goes to the node's lab directory).
 */
export function effectsOf(lab: Lab, self: number, off: Set<number>, log: string[] = [], config: Partial<DatabaseConfig> = {}): DbEffects {
  return new DbEffects({
    self,
    config: DatabaseConfigSchema.parse({ adminPassword: LAB_DB_USERS.agent.password, replPassword: LAB_DB_USERS.repl.password, retryMs: 1000, discardDir: join(lab.nodeDir(self), "db-discarded"), ...config }),
    peers: () => lab.topo.nodes.map((n) => ({ nodeid: n.id, host: n.ctlAddr, replication: !off.has(n.id) })),
    log: (level, msg) => void log.push(`${level}: ${msg}`),
    connect: (id) => connectNode(lab, id),
    localTarget: DbTarget.parse({ socketPath: hostSocketPath(lab, self), user: "root", database: APP_DATABASE }),
    cli: (id) => ({ socketPath: hostSocketPath(lab, id) }),
  });
}

/** Applies the schema on a node (its primary), over its socket. */
export async function migrateNode(lab: Lab, id: number) {
  return migrate(DbTarget.parse({ socketPath: hostSocketPath(lab, id), user: "root", database: APP_DATABASE }));
}

export const panelConn = (lab: Lab, id: number) => connectNode(lab, id, { ...LAB_DB_USERS.panel, database: APP_DATABASE });

export async function q<T = Record<string, unknown>>(c: mysql.Connection, sql: string, params: unknown[] = []): Promise<T[]> {
  const [rows] = await c.query(sql, params);
  return rows as T[];
}

export async function withConn<T>(lab: Lab, id: number, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const c = await connectNode(lab, id);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Waits until node `id` has applied everything the primary has committed. */
export async function waitConverged(lab: Lab, id: number, primary: number, timeoutMs = 20_000) {
  const target = await withConn(lab, primary, async (c) => (await readState(c)).binlogPos);
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const st = await withConn(lab, id, (c) => readState(c));
    if (containsPos(st.pos, target)) return;
    last = `${formatGtidPos(st.pos)} (replica: ${JSON.stringify(st.replica)})`;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`n${id} did not converge to n${primary}'s ${formatGtidPos(target)} within ${timeoutMs} ms; at ${last}`);
}

export type Stream = { acked: string[]; errors: string[]; stop: () => Promise<void> };

/**
 * Writers insert rows into incidents (kind 'stream') as the panel user; a row counts as
 * acknowledged only once its INSERT returned OK (autocommit: that is a commit).
 */
export async function startStream(lab: Lab, primary: number, writers: number, round: number): Promise<Stream> {
  const acked: string[] = [];
  const errors: string[] = [];
  let running = true;
  const conns = await Promise.all(Array.from({ length: writers }, () => panelConn(lab, primary)));
  const loops = conns.map(async (c, w) => {
    for (let i = 0; running; i++) {
      const tag = `r${round}-w${w}-${i}-${randomBytes(3).toString("hex")}`;
      try {
        await c.query("INSERT INTO incidents (actor, kind, summary, reason) VALUES ('writer', 'stream', ?, '')", [tag]);
        acked.push(tag);
      } catch (err) {
        errors.push((err as Error).message);
        return;
      }
    }
  });
  return {
    acked,
    errors,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
    },
  };
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Every acknowledged tag is on the node exactly once. */
export async function assertAllPresentOnce(lab: Lab, id: number, acked: string[]) {
  const rows = await withConn(lab, id, (c) => q<{ summary: string; n: number }>(c, `SELECT summary, COUNT(*) AS n FROM ${APP_DATABASE}.incidents WHERE kind = 'stream' GROUP BY summary`));
  const seen = new Map(rows.map((r) => [r.summary, Number(r.n)]));
  const missing = acked.filter((t) => !seen.has(t));
  const dup = rows.filter((r) => Number(r.n) > 1).map((r) => r.summary);
  assert.deepEqual(missing, [], `n${id} lacks ${missing.length} acknowledged rows`);
  assert.deepEqual(dup, [], `n${id} has duplicated rows`);
  return { rows: rows.length };
}

export async function semiSyncStatus(lab: Lab, id: number): Promise<Record<string, string>> {
  const st = await withConn(lab, id, (r) => q<{ Variable_name: string; Value: string }>(r, "SHOW STATUS LIKE 'Rpl_semi_sync_master_%'"));
  return Object.fromEntries(st.map((x) => [x.Variable_name, x.Value]));
}

/** Inserts `n` rows on the primary as the panel user; returns their tags. */
export async function writeRows(lab: Lab, primary: number, n: number, prefix: string): Promise<string[]> {
  const c = await panelConn(lab, primary);
  const tags: string[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const tag = `${prefix}-${i}`;
      await c.query("INSERT INTO incidents (actor, kind, summary, reason) VALUES ('writer', 'stream', ?, '')", [tag]);
      tags.push(tag);
    }
  } finally {
    await c.end();
  }
  return tags;
}

// The master keeps the DB's `nodes` table and corosync.conf in step, both ways:
//  - nodes from corosync.conf are inserted, and live status/last_seen are written every pass;
//  - an admin's change in the panel (prio, replication, maintenance in the DB) becomes desired state, which the
//    core turns into a new corosync.conf for every node;
//  - a change made outside the panel (`corolistener set-node`) is copied into the DB, so the DB
//    never reverts it.
import type { NodeConfig, NodeView } from "../../core/types.ts";
import { assertWritable, rows, type SqlConn } from "./state.ts";

type Wanted = { prio: number; replication: boolean; maintenance?: boolean };
const key = (w: Wanted) => `${w.prio}/${w.replication}/${w.maintenance === true}`;

export type SyncMemory = { applied: Map<number, string>; pending: Map<number, string> };

/**
 * Pure decision of one pass. `applied`: DB values already acted upon per node; `pending`: desired
 * values sent and not yet seen in corosync.conf (while pending, corosync is not copied back to the DB).
 */
export function syncDecisions(config: NodeConfig[], db: Map<number, Wanted>, mem: SyncMemory): { copyToDb: NodeConfig[]; desired: NodeConfig[] | null } {
  const copyToDb: NodeConfig[] = [];
  let changed = false;
  const desired = config.map((n) => {
    const conf = key({ prio: n.prio, replication: n.replication ?? true, maintenance: n.maintenance ?? false });
    const row = db.get(n.nodeid);
    if (mem.pending.get(n.nodeid) === conf) mem.pending.delete(n.nodeid);
    if (!row) {
      copyToDb.push(n);
      mem.applied.set(n.nodeid, conf);
      return n;
    }
    // First sight (a new master): what corosync runs with is what was applied. A row that differs
    // is an admin's intent not applied yet (edited just now, or before the old master could).
    if (mem.applied.get(n.nodeid) === undefined) mem.applied.set(n.nodeid, conf);
    if (key(row) !== mem.applied.get(n.nodeid)) {
      changed = true; // an admin edited the row
      mem.applied.set(n.nodeid, key(row));
      mem.pending.set(n.nodeid, key(row));
      return { ...n, prio: row.prio, replication: row.replication, maintenance: row.maintenance ?? false };
    }
    if (!mem.pending.has(n.nodeid) && key(row) !== conf) {
      copyToDb.push(n); // changed outside the panel (corolistener set-node)
      mem.applied.set(n.nodeid, conf);
    }
    return n;
  });
  return { copyToDb, desired: changed ? desired : null };
}

export class NodeSync {
  private readonly memory: SyncMemory = { applied: new Map(), pending: new Map() };
  constructor(
    private readonly connect: () => Promise<SqlConn>,
    private readonly database: string,
  ) {}

  /** One pass on the master. Returns the desired node list when an admin changed something. */
  async pass(config: NodeConfig[], view: NodeView): Promise<NodeConfig[] | null> {
    const c = await this.connect();
    try {
      await assertWritable(c, "node sync"); // the master's DB may still be read-only while it is promoted
      const t = `\`${this.database}\`.nodes`;
      for (const n of config) {
        const live = view.nodes.find((v) => v.nodeid === n.nodeid);
        await rows(c, `INSERT INTO ${t} (nodeid, name, address, prio, replication) VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE address = VALUES(address)`, [
          n.nodeid, `n${n.nodeid}`, n.addr ?? "", n.prio, n.replication ?? true,
        ]);
        if (live) await rows(c, `UPDATE ${t} SET status = ?, last_seen = NOW(3) WHERE nodeid = ?`, [live.status, n.nodeid]);
      }
      const db = new Map<number, Wanted>();
      for (const r of await rows(c, `SELECT nodeid, prio, replication, maintenance FROM ${t}`)) {
        db.set(Number(r["nodeid"]), { prio: Number(r["prio"]), replication: Boolean(Number(r["replication"])), maintenance: Boolean(Number(r["maintenance"])) });
      }
      const { copyToDb, desired } = syncDecisions(config, db, this.memory);
      for (const n of copyToDb) await rows(c, `UPDATE ${t} SET prio = ?, replication = ?, maintenance = ? WHERE nodeid = ?`, [n.prio, n.replication ?? true, n.maintenance ?? false, n.nodeid]);
      return desired;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** A new master starts from corosync.conf again. */
  reset() {
    this.memory.applied.clear();
    this.memory.pending.clear();
  }
}

// The database role decisions, pure: which copies count, which copy a promotion starts from, and
// when a write is acknowledged. The effect layer (effects/db/replication.ts) reads the servers and
// acts; the simulator (sim/) runs the same functions over modeled copies.
//
// The rule, Raft-like (a write is a log entry, a promotion an election among copies):
//  - A write is acknowledged only once a majority of the database nodes (replication on) has it.
//  - A promotion starts from the most advanced copy among a majority of the database nodes it
//    reached, ordered by (epoch, position): any two majorities intersect, so that copy has every
//    acknowledged write.
//  - Every promotion writes an epoch row (a number larger than every epoch it saw and than the
//    master's term) before the first client write, and becomes writable only once a majority has
//    that row. So a later writable primary always has a larger epoch than an earlier one, and a copy
//    with a lower epoch that is not contained in the chosen copy holds only writes that were never
//    acknowledged (errant: it is rebuilt, what it discards is kept).
import { containsPos, errantGtids, mostAdvanced, type Gtid, type GtidPos } from './gtid.ts';
import type { NodeId } from './types.ts';

/** One node's copy of the database: its last epoch and everything it has (applied + received). */
export interface DbCopy {
  nodeid: NodeId;
  epoch: number;
  pos: GtidPos;
}

/** Copies needed for a majority of `dbNodeCount` database nodes. */
export function copiesQuorum(dbNodeCount: number): number {
  return Math.floor(dbNodeCount / 2) + 1;
}

export type SourceChoice =
  | { ok: true; source: DbCopy; diverged: Array<{ copy: DbCopy; errant: Gtid[] }>; counted: NodeId[] }
  | { ok: false; reason: string };

const list = (ids: readonly NodeId[]) => (ids.length ? ids.map((n) => `n${n}`).join(', ') : 'none');

/**
 * The copy a promotion must start from. `dbNodes`: the nodes with replication on; `reached`: the
 * copies that answered (others are ignored). Ties go to `prefer` (no catch-up needed).
 */
export function chooseSource(dbNodes: readonly NodeId[], reached: readonly DbCopy[], prefer: NodeId): SourceChoice {
  const members = new Set(dbNodes);
  const counted = reached.filter((c) => members.has(c.nodeid));
  const need = copiesQuorum(members.size);
  const ids = counted.map((c) => c.nodeid).sort((a, b) => a - b);
  if (counted.length < need) {
    return {
      ok: false,
      reason: `reached ${counted.length} of ${members.size} database nodes (${list(ids)}), need ${need}: a copy that did not answer may hold acknowledged writes`,
    };
  }
  const top = Math.max(...counted.map((c) => c.epoch));
  const { best } = mostAdvanced(counted.filter((c) => c.epoch === top), prefer);
  const diverged = counted
    .filter((c) => !containsPos(best.pos, c.pos))
    .map((copy) => ({ copy, errant: errantGtids(copy.pos, best.pos) }));
  return { ok: true, source: best, diverged, counted: ids };
}

/** The epoch a new primary writes: above every epoch it saw and at least the master's term. */
export function nextEpoch(seen: readonly number[], term: number): number {
  return Math.max(term, ...seen.map((e) => e + 1), 1);
}

/**
 * Is a write at `target` acknowledged? `confirmed`: the nodes (the primary included) known to have
 * it in the primary's history. Only database nodes count.
 */
export function acknowledged(dbNodes: readonly NodeId[], confirmed: readonly NodeId[]): boolean {
  const members = new Set(dbNodes);
  return new Set(confirmed.filter((n) => members.has(n))).size >= copiesQuorum(members.size);
}

/** Transactions `copy` has that `primary` lacks: non-empty means it must be rebuilt from the primary. */
export function mustRebuild(copy: DbCopy, primary: DbCopy): Gtid[] {
  return errantGtids(copy.pos, primary.pos);
}

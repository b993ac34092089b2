// End-of-run liveness check, and the database checkers. The other safety invariants are checked
// online by the world after every step and every effect (see world.ts: one-ip, one-panel,
// one-master, agreement, minority-holds, lease, vm-exclusive, vm-epoch, self-fence); the database
// ones (db-ack-lost, db-split-brain, one-db-primary, db-discard) by database.ts with the functions
// at the end of this file.

import type { World } from './world.ts';

/**
 * After faults healed and a quiet period: one master everywhere, IP/panel on it, VMs running.
 * `firstOnly` stops at the first problem (cheap polling while the cluster settles).
 */
export function livenessProblems(w: World, firstOnly = false): string[] {
  const problems: string[] = [];
  const nodes = w.nodes;
  const down = nodes.filter((n) => !n.up || n.core === null);
  if (down.length > 0) problems.push(`nodes not up: ${down.map((n) => `n${n.id}`).join(', ')}`);
  const rings = new Set(nodes.map((n) => n.ringId));
  if (rings.size !== 1 || rings.has(null)) problems.push(`nodes are not in one ring: ${nodes.map((n) => `n${n.id}:r${n.ringId}`).join(' ')}`);
  if (firstOnly && problems.length > 0) return problems;

  const roles = nodes.filter((n) => n.core !== null).map((n) => ({ id: n.id, role: n.core!.role() }));
  const masters = new Set(roles.map((r) => r.role.master));
  const unsynced = roles.filter((r) => !r.role.synced);
  if (unsynced.length > 0) problems.push(`not synced: ${unsynced.map((r) => `n${r.id}`).join(', ')}`);
  if (masters.size !== 1) problems.push(`members disagree on the master: ${roles.map((r) => `n${r.id}->${r.role.master}`).join(' ')}`);
  const master = roles[0]?.role.master ?? null;
  if (master === null) problems.push('no master after the quiet period');

  const ipHolders = nodes.filter((n) => n.phys.ip).map((n) => n.id);
  const panelHolders = nodes.filter((n) => n.phys.panel).map((n) => n.id);
  if (master !== null && (ipHolders.length !== 1 || ipHolders[0] !== master)) problems.push(`cluster IP on [${ipHolders.join(',')}], master is n${master}`);
  if (master !== null && (panelHolders.length !== 1 || panelHolders[0] !== master)) problems.push(`panel on [${panelHolders.join(',')}], master is n${master}`);
  // The database follows the master: writable there, every other copy replicating from it.
  if (master !== null && masters.size === 1) problems.push(...w.db.livenessProblems(master));

  // Every VM that should run runs exactly once, on its recorded owner; a VM without an owner
  // is acceptable only if it really fits nowhere.
  if (firstOnly && problems.length > 0) return problems;
  const usedRam = new Map<number, number>();
  for (const spec of w.cfg.vms) {
    const o = w.metadata.get(spec.id);
    if (o !== undefined && o.node !== null) usedRam.set(o.node, (usedRam.get(o.node) ?? 0) + spec.ramMb);
  }
  for (const spec of w.cfg.vms) {
    if (spec.desired === 'stopped') continue;
    if (firstOnly && problems.length > 0) return problems;
    const running: number[] = [];
    for (const n of nodes) if (n.phys.vms.get(spec.id) === 'running') running.push(n.id);
    const owner = w.metadata.get(spec.id)?.node ?? null;
    if (owner === null) {
      const fits = w.clusterConfig.nodes.some((c) => !c.maintenance && (c.ramMb === undefined || c.ramMb - (usedRam.get(c.nodeid) ?? 0) >= spec.ramMb));
      if (fits) problems.push(`${spec.id} has no owner although it fits somewhere`);
      continue;
    }
    if (running.length !== 1 || running[0] !== owner) problems.push(`${spec.id} owned by n${owner} runs on [${running.join(',')}]`);
    // Maintenance drain: a shared-storage VM does not stay on a node in maintenance if it fits elsewhere.
    const ownerCfg = w.clusterConfig.nodes.find((c) => c.nodeid === owner);
    if (ownerCfg?.maintenance === true && spec.storage === 'shared') {
      const fits = w.clusterConfig.nodes.some((c) => !c.maintenance && (c.ramMb === undefined || c.ramMb - (usedRam.get(c.nodeid) ?? 0) >= spec.ramMb));
      if (fits) problems.push(`${spec.id} stays on n${owner}, which is in maintenance, although it fits elsewhere`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------
// The database (checked online by database.ts). Log entries are shared objects: the entry at
// position k of a log stands for the whole history up to k (see database.ts).

export interface DbProblem {
  invariant: string;
  message: string;
}

/** What a log position holds, for the checkers. */
interface Positioned {
  id: string;
  seq: number;
  acked?: boolean;
  discarded?: boolean;
}

/**
 * (a) No acknowledged write is lost: a copy that becomes a writable primary has every write
 * acknowledged so far (`lastAcked`: the furthest one; (b) makes every other one part of its history).
 */
export function ackLostProblem(node: number, log: readonly Positioned[], lastAcked: Positioned | null): DbProblem | null {
  if (lastAcked === null || log[lastAcked.seq - 1] === lastAcked) return null;
  const at = log[lastAcked.seq - 1];
  return {
    invariant: 'db-ack-lost',
    message: `n${node} became a writable primary without acknowledged write ${lastAcked.id} (position ${lastAcked.seq}; its copy has ${at === undefined ? `only ${log.length} entries` : `${at.id} there`})`,
  };
}

/**
 * (b) One history: the primary acknowledging a write has every write acknowledged before (two
 * primaries acknowledging in histories that diverged is a database split brain).
 */
export function historyProblem(node: number, log: readonly Positioned[], lastAcked: Positioned | null): DbProblem | null {
  if (lastAcked === null || log[lastAcked.seq - 1] === lastAcked) return null;
  return { invariant: 'db-split-brain', message: `n${node} acknowledges a write in a history without the acknowledged write ${lastAcked.id} (position ${lastAcked.seq})` };
}

/** (b) At most one node can get a majority to acknowledge at a time (checked when one becomes writable). */
export function splitPrimaryProblem(dbs: { canAcknowledge(id: number): boolean; followersOf(id: number): number[]; readonly copies: ReadonlyArray<{ writable: boolean }> }, node: number): DbProblem | null {
  for (let id = 1; id < dbs.copies.length; id++) {
    if (id !== node && dbs.canAcknowledge(id)) {
      return { invariant: 'one-db-primary', message: `n${node} became writable while n${id} is writable with a majority of copies following it (${dbs.followersOf(id).map((f) => `n${f}`).join(', ')})` };
    }
  }
  return null;
}

/** (c) A rebuilt copy throws away only writes that were never acknowledged... */
export function discardProblem(lost: readonly Positioned[]): DbProblem | null {
  const e = lost.find((x) => x.acked === true);
  return e === undefined ? null : { invariant: 'db-discard', message: `acknowledged write ${e.id} (position ${e.seq}) is thrown away` };
}

/** (c) ...and a write some copy threw away is never acknowledged afterwards. */
export function lateAckProblem(e: Positioned): DbProblem | null {
  return e.discarded === true ? { invariant: 'db-discard', message: `write ${e.id} (position ${e.seq}) is acknowledged after a copy threw it away` } : null;
}

// Master election: pure functions. Every member runs them on the same CPG-ordered input,
// so every member gets the same answer without any extra voting.

import type { NodeId, SelfStatus } from './types.ts';

export interface Candidate {
  nodeid: NodeId;
  prio: number;
  /** false = may not become master (e.g. bad status). Default true. */
  eligible?: boolean;
  /**
   * false = its database cannot become primary: passed over (even as the established master)
   * while another eligible candidate's database can. Default true.
   */
  dbEligible?: boolean;
  /** Why not (for the reasons). */
  dbReason?: string;
}

export interface ElectionResult {
  master: NodeId | null;
  reason: string;
}

/** Quorum for N configured nodes. */
export function quorumNeed(nodeCount: number): number {
  return Math.floor(nodeCount / 2) + 1;
}

/** Better candidate first: highest prio, then lowest nodeid. */
export function compareCandidates(a: Candidate, b: Candidate): number {
  return b.prio - a.prio || a.nodeid - b.nodeid;
}

const fmt = (c: Candidate): string => `n${c.nodeid}(${c.prio})`;

/** "database <reason>" (the reason may already say "database"). */
export function dbWhy(reason: string | undefined): string {
  const r = (reason ?? '').trim();
  if (r === '') return 'database cannot be primary';
  return /^database\b/i.test(r) ? r : `database ${r}`;
}

/**
 * Master = highest prio among eligible members, ties to the lowest nodeid.
 * An existing master that is still eligible is kept unless failback is on (no needless failback).
 * Database: candidates whose database cannot be primary are passed over while another one's can
 * (a master without a writable database loses every write); if none can, all eligible members
 * compete as usual (VM HA must not stop because every database is down), and the reason says so.
 */
export function electMaster(
  members: readonly NodeId[],
  nodes: readonly Candidate[],
  currentMaster: NodeId | null,
  settings: { failback: boolean },
): ElectionResult {
  const byId = new Map(nodes.map((n) => [n.nodeid, n]));
  const eligible = members
    .map((m) => byId.get(m))
    .filter((c): c is Candidate => c !== undefined && c.eligible !== false)
    .sort(compareCandidates);
  const withDb = eligible.filter((c) => c.dbEligible !== false);
  const noDb = withDb.length === 0 && eligible.length > 0;
  const candidates = noDb ? eligible : withDb;
  const best = candidates[0];
  if (best === undefined) {
    return { master: null, reason: `no master: no eligible member among [${members.map((m) => `n${m}`).join(', ')}]` };
  }
  const r = decide(candidates, best, currentMaster === null ? undefined : eligible.find((c) => c.nodeid === currentMaster), currentMaster, settings);
  if (!noDb) return r;
  return { master: r.master, reason: `${r.reason}; no member's database can be primary: n${r.master} master without a writable database` };
}

function decide(candidates: readonly Candidate[], best: Candidate, currentEligible: Candidate | undefined, currentMaster: NodeId | null, settings: { failback: boolean }): ElectionResult {
  const current = candidates.find((c) => c === currentEligible);
  if (current !== undefined) {
    if (current === best) return { master: current.nodeid, reason: `n${current.nodeid} stays master: best candidate (prio ${current.prio})` };
    if (!settings.failback) {
      return {
        master: current.nodeid,
        reason: `n${current.nodeid} stays master: failback is off (n${best.nodeid} has prio ${best.prio} vs ${current.prio})`,
      };
    }
    return { master: best.nodeid, reason: `n${best.nodeid} takes over from n${current.nodeid}: failback on, prio ${best.prio} > ${current.prio}` };
  }
  const lost =
    currentEligible !== undefined
      ? ` (n${currentEligible.nodeid}: ${dbWhy(currentEligible.dbReason)})`
      : currentMaster === null
        ? ''
        : ` (n${currentMaster} is gone or not eligible)`;
  return { master: best.nodeid, reason: `n${best.nodeid} elected: highest prio among ${candidates.map(fmt).join(', ')}${lost}` };
}

/** Why a given node is not the master (for `corolistener -l`). */
export function notMasterReason(node: Candidate, master: Candidate | undefined): string {
  if (master === undefined) return `n${node.nodeid} not master: there is no master`;
  if (node.eligible === false) return `n${node.nodeid} not master: not eligible`;
  if (node.dbEligible === false && master.dbEligible !== false) return `n${node.nodeid} not master: ${dbWhy(node.dbReason)}`;
  if (node.prio < master.prio) return `n${node.nodeid} not master: prio ${node.prio} < ${master.prio} of n${master.nodeid}`;
  if (node.prio === master.prio && node.nodeid > master.nodeid) return `n${node.nodeid} not master: same prio ${node.prio}, n${master.nodeid} has the lower nodeid`;
  return `n${node.nodeid} not master: n${master.nodeid} is established and failback is off`;
}

/** One member's hello, as delivered in the round after a membership change. */
export interface RoundHello {
  from: NodeId;
  term: number;
  claim: boolean;
  majority: boolean;
  prio: number;
  status: SelfStatus;
  nodeCount: number;
  /** > 0: the sender is a freshly started agent still in its startup grace (see startupWait). */
  graceLeftMs?: number;
  /** The sender's votequorum members (if quorate). */
  quorumMembers?: readonly NodeId[];
  /** See ReportFields.dbEligible (absent = eligible). */
  dbEligible?: boolean;
  dbReason?: string;
}

/** What the startup grace looks at, per member of the view. */
export interface StartupInfo {
  from: NodeId;
  graceLeftMs?: number;
  quorumMembers?: readonly NodeId[];
  status?: SelfStatus;
  prio?: number;
  dbEligible?: boolean;
}

/**
 * Startup grace (pure; every member computes it from the same ordered hellos/reports).
 * Returns why a FRESH master must not be elected yet, or null if it may be: the election waits
 * only while every member of the view is still in its startup grace (young: started less than
 * startupGraceMs ago and never saw a master) and either some node of a member's quorate corosync
 * membership has no agent in the CPG view yet, or a member that would beat `winner` (the node the
 * election would pick) is still 'starting'. A member past its grace multicasts a report, which
 * ends the wait at the same ordered position for everyone.
 */
export function startupWait(members: readonly NodeId[], infos: readonly StartupInfo[], winner: Candidate | null): string | null {
  const byId = new Map(infos.map((i) => [i.from, i]));
  let left = Infinity;
  for (const m of members) {
    const g = byId.get(m)?.graceLeftMs ?? 0;
    if (!(g > 0)) return null;
    if (g < left) left = g;
  }
  if (members.length === 0) return null;
  const inView = new Set(members);
  const missing = new Set<NodeId>();
  for (const m of members) for (const q of byId.get(m)?.quorumMembers ?? []) if (!inView.has(q)) missing.add(q);
  // A starting member whose database cannot be primary would not beat a winner whose can.
  const better = (m: NodeId): boolean => {
    const i = byId.get(m);
    if (winner === null || i?.status !== 'starting') return false;
    if (i.dbEligible === false && winner.dbEligible !== false) return false;
    return compareCandidates({ nodeid: m, prio: i.prio ?? 0 }, winner) < 0;
  };
  const starting = members.filter(better).map((n) => `n${n}`);
  if (missing.size === 0 && starting.length === 0) return null;
  const why: string[] = [];
  if (missing.size > 0) {
    const list = [...missing].sort((a, b) => a - b).map((n) => `n${n}`);
    why.push(`${list.length === 1 ? `${list[0]}'s agent` : `the agents of ${list.join(', ')}`} to join (corosync member, not in the CPG group yet)`);
  }
  if (starting.length > 0) why.push(`${starting.join(', ')} (better than n${winner!.nodeid}) to finish starting`);
  return `waiting up to ${Math.ceil(left / 1000)}s for ${why.join(' and for ')}; every member is starting up`;
}

export interface RoundResult extends ElectionResult {
  term: number;
  majority: boolean;
  clusterSize: number;
}

/**
 * Decide the master once every member's hello of a new view is delivered.
 * A newcomer never wins against an established master: the established master claims in its
 * hello and a claim is kept (subject to failback). Only a view with a majority of the configured
 * nodes has a master at all.
 */
export function resolveRound(members: readonly NodeId[], hellos: readonly RoundHello[], settings: { failback: boolean }): RoundResult {
  // Largest reported cluster size: conservative if configs disagree during a rollout.
  const clusterSize = Math.max(1, ...hellos.map((h) => h.nodeCount));
  const need = quorumNeed(clusterSize);
  const term = Math.max(0, ...hellos.map((h) => h.term)) + 1;
  const majority = members.length >= need;
  if (!majority) {
    return { master: null, term, majority, clusterSize, reason: `no master: ${members.length} of ${clusterSize} nodes in this view, need ${need}` };
  }
  const good = hellos.filter((h) => h.status === 'member');
  // Of two claimants (a healed split) one whose database can be primary first.
  const dbOk = (h: RoundHello): number => Number(h.dbEligible !== false);
  const claimant = good
    .filter((h) => h.claim)
    .sort((a, b) => dbOk(b) - dbOk(a) || Number(b.majority) - Number(a.majority) || b.term - a.term || compareCandidates({ nodeid: a.from, prio: a.prio }, { nodeid: b.from, prio: b.prio }))[0];
  const candidate = (h: RoundHello): Candidate => ({ nodeid: h.from, prio: h.prio, dbEligible: h.dbEligible, dbReason: h.dbReason });
  const result = electMaster(
    good.map((h) => h.from),
    good.map(candidate),
    claimant?.from ?? null,
    settings,
  );
  // Startup grace: no FRESH master while the cluster is still booting and a node's agent is missing.
  if (claimant === undefined && result.master !== null) {
    const winner = good.find((h) => h.from === result.master)!;
    const wait = startupWait(members, hellos, candidate(winner));
    if (wait !== null) return { master: null, term, majority, clusterSize, reason: wait };
  }
  return { ...result, term, majority, clusterSize };
}

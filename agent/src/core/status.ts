// Node status rules (pure): what a node says about itself, what the cluster shows for each node,
// link-flap detection, and when it is safe to restart a failed node's VM elsewhere.

import { provenStaleMs, heartbeatAgeMs, type HeartbeatSeen } from './heartbeats.ts';
import type { NodeId, NodeStatus, SelfStatus, Settings, VmId } from './types.ts';

// ---------------------------------------------------------------------------
// Self status: the three local facts (quorum, own storage heartbeat, test IP).

export interface SelfFacts {
  /** null = no votequorum notification yet. */
  quorate: boolean | null;
  /** null = no heartbeat write has succeeded yet. */
  storageOk: boolean | null;
  testIpReachable: boolean;
}

export function selfStatusFrom(f: SelfFacts): { status: SelfStatus; reason: string } {
  if (f.quorate === null) return { status: 'starting', reason: 'waiting for the first quorum notification' };
  if (f.storageOk === null) return { status: 'starting', reason: 'waiting for the first storage heartbeat write' };
  if (f.quorate) {
    return f.storageOk
      ? { status: 'member', reason: 'quorate and storage heartbeat fresh' }
      : { status: 'storage_isolation', reason: 'storage heartbeat writes failing: stop VMs so they can be restarted elsewhere' };
  }
  if (!f.testIpReachable) return { status: 'network_isolation', reason: 'quorum lost and test IP unreachable: self-fence (stop VMs)' };
  if (!f.storageOk) return { status: 'storage_isolation', reason: 'quorum lost and storage heartbeat failing: self-fence (stop VMs)' };
  return { status: 'excluded', reason: 'quorum lost but test IP answers and storage heartbeat is fresh: keep running VMs, release IP/panel' };
}

/** Statuses in which a node has promised to stop its VMs and not start any. */
export function isFencedStatus(s: SelfStatus | null): boolean {
  return s === 'network_isolation' || s === 'storage_isolation';
}

// ---------------------------------------------------------------------------
// Cluster view of one configured node.

export interface StatusInput {
  inView: boolean;
  isMaster: boolean;
  /** Latest status the node reported through CPG (ordered); undefined if never. */
  reported: SelfStatus | undefined;
  heartbeat: HeartbeatSeen | undefined;
  unstable: boolean;
  now: number;
  storageTimeoutMs: number;
}

export function clusterStatus(i: StatusInput): { status: NodeStatus; reason: string } {
  if (i.inView) {
    if (i.reported === 'member') {
      if (i.unstable) return { status: 'network_unstable', reason: 'member, but its link flapped repeatedly (shown only, no action)' };
      return i.isMaster ? { status: 'leader', reason: 'member and master' } : { status: 'member', reason: 'member' };
    }
    if (i.reported === undefined || i.reported === 'starting') return { status: 'unknown', reason: 'member, starting up' };
    return { status: i.reported, reason: `member reporting ${i.reported}` };
  }
  const hb = i.heartbeat;
  if (hb === undefined) return { status: 'offline', reason: 'not a member and no heartbeat read yet' };
  const age = heartbeatAgeMs(hb, i.now);
  if (hb.key === 'absent' || age >= i.storageTimeoutMs) {
    return { status: 'full_failure', reason: `not a member and storage heartbeat unchanged for ${age} ms` };
  }
  const s = hb.selfStatus;
  if (s === 'excluded' || s === 'network_isolation' || s === 'storage_isolation') {
    return { status: s, reason: `not a member; its heartbeat (${age} ms old) says ${s}` };
  }
  return { status: 'unknown', reason: `not a member; heartbeat still fresh (${age} ms) and says ${s ?? 'nothing'}` };
}

// ---------------------------------------------------------------------------
// Link flaps: 'network_unstable' = at least N short outages within the window.

export interface FlapHistory {
  lostAt: number | null;
  /** Times at which short outages ended. */
  flaps: number[];
}

export function newFlapHistory(): FlapHistory {
  return { lostAt: null, flaps: [] };
}

export function noteLinkLost(h: FlapHistory, now: number): void {
  if (h.lostAt === null) h.lostAt = now;
}

export function noteLinkBack(h: FlapHistory, now: number, s: Pick<Settings, 'unstableMaxOutageMs' | 'unstableWindowMs'>): void {
  if (h.lostAt !== null && now - h.lostAt < s.unstableMaxOutageMs) h.flaps.push(now);
  h.lostAt = null;
  pruneFlaps(h, now, s);
}

export function pruneFlaps(h: FlapHistory, now: number, s: Pick<Settings, 'unstableWindowMs'>): void {
  while (h.flaps.length > 0 && now - h.flaps[0]! > s.unstableWindowMs) h.flaps.shift();
}

export function isUnstable(h: FlapHistory, now: number, s: Pick<Settings, 'unstableWindowMs' | 'unstableFlaps'>): boolean {
  let n = 0;
  for (const t of h.flaps) if (now - t <= s.unstableWindowMs) n++;
  return n >= s.unstableFlaps;
}

// ---------------------------------------------------------------------------
// Recovery safety: may the master give a VM of a failed node to another node now?

export interface RecoveryInput {
  node: NodeId;
  vm: VmId;
  inView: boolean;
  /** Latest ordered CPG report of the node (only meaningful while it is in the view). */
  reported: { status: SelfStatus; running: readonly VmId[] } | undefined;
  heartbeat: HeartbeatSeen | undefined;
  /**
   * Local time after which the node can no longer have started anything: when we saw it leave,
   * or when our current run of majority views began, whichever is later.
   */
  goneAt: number;
  settings: Pick<Settings, 'startWindowMs' | 'leaseMarginMs' | 'storageTimeoutMs' | 'fenceTimeoutMs'>;
}

export function recoverySafety(r: RecoveryInput): { safe: boolean; reason: string } {
  const n = `n${r.node}`;
  if (r.inView) {
    // Ordered report: the node cannot start anything again before a later 'member' report,
    // and such a report would make the reassignment's preconditions fail everywhere.
    if (r.reported && isFencedStatus(r.reported.status) && !r.reported.running.includes(r.vm)) {
      return { safe: true, reason: `${n} reported ${r.reported.status} and has stopped ${r.vm}` };
    }
    return { safe: false, reason: `${n} is still a member and has not reported ${r.vm} stopped` };
  }
  const hb = r.heartbeat;
  if (hb === undefined) return { safe: false, reason: `${n} left; no storage heartbeat read yet` };
  const stale = provenStaleMs(hb);
  const slow = r.settings.storageTimeoutMs + r.settings.fenceTimeoutMs;
  // A start changes the heartbeat first, so "unchanged" proves nothing was started only up to the
  // proving read: it must have started after the node's last possible start (it may have been
  // reset and come back, started VMs and left again before we read its new heartbeat).
  const provedAfterGone = hb.lastReadStart >= r.goneAt + r.settings.startWindowMs + r.settings.leaseMarginMs;
  if (stale >= slow && provedAfterGone) {
    return { safe: true, reason: `${n} heartbeat unchanged for ${stale} ms >= storage ${r.settings.storageTimeoutMs} + fence ${r.settings.fenceTimeoutMs} ms: it has self-fenced or been reset` };
  }
  // Fast path: a heartbeat written after the node's last possible VM start says it stopped.
  const readAfter = r.goneAt + r.settings.startWindowMs + r.settings.leaseMarginMs;
  if (isFencedStatus(hb.selfStatus) && !hb.running.includes(r.vm) && hb.lastReadStart >= readAfter) {
    return { safe: true, reason: `${n} heartbeat says ${hb.selfStatus} with ${r.vm} stopped` };
  }
  if (hb.selfStatus === 'excluded' && hb.running.includes(r.vm)) {
    return { safe: false, reason: `${n} is excluded and keeps running ${r.vm}` };
  }
  return { safe: false, reason: `${n} left; waiting for its heartbeat to show ${r.vm} stopped or to be stale for ${slow} ms (now ${stale} ms)` };
}

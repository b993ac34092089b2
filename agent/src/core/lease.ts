// Lease and watchdog arithmetic (pure). All times are the local node's monotonic clock.
//
// The master's lease runs from the send time of its last renewal that was delivered back to it
// in a majority view. Using the SEND time (not the delivery time) matters: a master that was
// paused and then processes an old renewal from its backlog does not get a fresh lease.

import type { Settings } from './types.ts';

/**
 * What lease a master needs to hold through a corosync membership transition, during which
 * corosync delivers nothing (not even its own renewals). The worst case, from the send time t0 of
 * the last renewal delivered before a member fails:
 *   - the next renewal goes out at most leaseRenewMs + one step (tickMs) after t0, and a failure
 *     just after it was sent loses it: the failure is up to leaseRenewMs + tickMs after t0;
 *   - corosync notices the lost token `token` ms after the failure (the effective value: with
 *     token_coefficient already applied), waits `consensus`, then forms the new ring;
 *   - the new CPG view needs one hello round, then the master renews at once (cluster-ip.ts)
 *     and that renewal comes back: one CPG round each.
 * TRANSITION_SLACK_MS covers the step (tickMs 100) plus what comes after consensus: the ring
 * formation (join, commit and recovery: a few token rotations, milliseconds on a LAN), the hello
 * round and the renewal's round trip (one CPG round each, milliseconds), and scheduling delays of
 * a busy node, which leaves about 200 ms for those (lab, 3 nodes, token 1000 + consensus 1200:
 * control link cut -> the master's new CPG view took 2226 ms, i.e. 26 ms after consensus;
 * lab/test/integration/master-holds.test.ts prints it). Too short costs a blip (the old behaviour),
 * never safety: the new master waits for whatever lease the holder announced. Longer costs every
 * master failover the same amount.
 */
export const TRANSITION_SLACK_MS = 300;

export function transitionLeaseMs(corosync: { tokenMs: number; consensusMs: number }, leaseRenewMs: number): number {
  return corosync.tokenMs + corosync.consensusMs + leaseRenewMs + TRANSITION_SLACK_MS;
}

/**
 * The lease agents before lease terms used by default. While an older agent is in the view, the
 * master holds (and announces) at most this: the older agent waits out a holder's lease with its
 * own leaseMs and ignores the announced one. (An explicit ha.leaseMs is the same on old and new
 * agents; a shorter one is used as is.) Costs the blip during a mixed-version upgrade, not safety.
 */
export const LEGACY_LEASE_MS = 1000;

/** The terms a holder's renewal carries (or, for older agents' renewals, the receiver's own). */
export type LeaseTerms = Pick<Settings, 'leaseMs' | 'releaseBudgetMs'>;

/**
 * The terms to wait for when another node holds (or held) the IP: the longer of the holder's
 * announced terms and our own (nodes may disagree during a corosync.conf reload or an upgrade).
 */
export function holderTerms(announced: Partial<LeaseTerms> | undefined, own: Pick<Settings, 'leaseMs' | 'releaseBudgetMs' | 'leaseMarginMs'>): Pick<Settings, 'leaseMs' | 'releaseBudgetMs' | 'leaseMarginMs'> {
  return {
    leaseMs: Math.max(own.leaseMs, announced?.leaseMs ?? own.leaseMs),
    releaseBudgetMs: Math.max(own.releaseBudgetMs, announced?.releaseBudgetMs ?? own.releaseBudgetMs),
    leaseMarginMs: own.leaseMarginMs,
  };
}

/**
 * The terms our own lease runs on: what our last delivered renewal announced, or less if our
 * settings shrank since (a renewal never lets us hold longer than it told the others).
 */
export function ownTerms(announced: Partial<LeaseTerms> | undefined, own: LeaseTerms): LeaseTerms {
  return {
    leaseMs: Math.min(own.leaseMs, announced?.leaseMs ?? own.leaseMs),
    releaseBudgetMs: Math.min(own.releaseBudgetMs, announced?.releaseBudgetMs ?? own.releaseBudgetMs),
  };
}

export function leaseAgeMs(lastRenewalSentAt: number | null, now: number): number | null {
  return lastRenewalSentAt === null ? null : now - lastRenewalSentAt;
}

export function leaseFresh(lastRenewalSentAt: number | null, now: number, s: Pick<Settings, 'leaseMs'>): boolean {
  return lastRenewalSentAt !== null && now - lastRenewalSentAt <= s.leaseMs;
}

/**
 * When a node that saw a holder's renewal at `seenAt` may assume that holder has let go:
 * its lease ended at sentAt + leaseMs <= seenAt + leaseMs, it then had releaseBudgetMs to release
 * before its watchdog fires; leaseMarginMs is slack on top. Pass the holder's terms (holderTerms).
 */
export function holderGoneAt(seenAt: number, s: Pick<Settings, 'leaseMs' | 'releaseBudgetMs' | 'leaseMarginMs'>): number {
  return seenAt + s.leaseMs + s.releaseBudgetMs + s.leaseMarginMs;
}

/** Latest "gone" time over every possible other holder; the new master assigns the IP after it. */
export function ipSafeAt(evidence: ReadonlyMap<number, number>, self: number): number {
  let t = -Infinity;
  for (const [holder, at] of evidence) if (holder !== self && at > t) t = at;
  return t;
}

export interface WatchdogInput {
  now: number;
  startedAt: number;
  /**
   * The cluster IP may be held (assigned and not yet confirmed released). Only the IP: the panel
   * listens on it alone, so once the IP is gone no client reaches an old panel, however slowly it
   * stops (and the DB demote is not watchdog-bound either, see README).
   */
  mayHoldIp: boolean;
  lastRenewalSentAt: number | null;
  /** VMs may be active here (or we do not know yet). */
  mayHaveVms: boolean;
  /** Start time of the last heartbeat write that completed in time; null = none yet. */
  lastGoodWriteStart: number | null;
  /** Since when we must self-fence (quorum or storage lost); null = not fencing. */
  fencedSince: number | null;
  settings: Pick<Settings, 'leaseMs' | 'releaseBudgetMs' | 'leaseMarginMs' | 'fenceTimeoutMs' | 'storageTimeoutMs' | 'storageWriteMaxMs'>;
}

/**
 * Time by which this node must be reset unless the agent runs again. Each term matches a promise
 * other nodes rely on:
 *  - agent liveness: a hung agent is reset after fenceTimeoutMs;
 *  - IP lease: a holder has released the cluster IP by lastRenewal + leaseMs + releaseBudgetMs,
 *    with the terms that renewal announced or less (ownTerms; new masters wait at least those
 *    terms plus leaseMarginMs after the renewal they saw); a freshly started agent, which may
 *    inherit an address from its crashed predecessor, must have released it within leaseMarginMs.
 *    The panel is not part of this promise: it is reachable only on the IP, and a panel slow to
 *    exit (up to 2 s) must not reset a healthy node whose address is already gone;
 *  - storage: with VMs, gone by lastGoodWriteStart + storage + fence - writeMax (readers relocate
 *    after seeing the heartbeat unchanged for storage + fence);
 *  - self-fence: with VMs while fenced, gone by fencedSince + fenceTimeoutMs.
 */
export function watchdogDeadline(i: WatchdogInput): { deadline: number; reason: string } {
  const s = i.settings;
  let deadline = i.now + s.fenceTimeoutMs;
  let reason = 'agent liveness';
  if (i.mayHoldIp) {
    // Without a renewal of our own (fresh start) we may be a restarted agent of a master whose
    // old watchdog deadline is just about to pass: only the margin is left for the startup release.
    const t = i.lastRenewalSentAt === null ? i.startedAt + s.leaseMarginMs : i.lastRenewalSentAt + s.leaseMs + s.releaseBudgetMs;
    if (t < deadline) [deadline, reason] = [t, 'cluster IP not released within releaseBudgetMs after the lease expired'];
  }
  if (i.mayHaveVms) {
    const t =
      i.lastGoodWriteStart === null
        ? i.startedAt + s.storageWriteMaxMs
        : i.lastGoodWriteStart + s.storageTimeoutMs + s.fenceTimeoutMs - s.storageWriteMaxMs;
    if (t < deadline) [deadline, reason] = [t, i.lastGoodWriteStart === null ? 'VMs present but no storage heartbeat written since start' : 'VMs present but storage heartbeat failing'];
    if (i.fencedSince !== null && i.fencedSince + s.fenceTimeoutMs < deadline) {
      [deadline, reason] = [i.fencedSince + s.fenceTimeoutMs, 'self-fence: VMs not stopped within fenceTimeoutMs'];
    }
  }
  return { deadline, reason };
}

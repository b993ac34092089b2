// Lease and watchdog arithmetic (pure). All times are the local node's monotonic clock.
//
// The master's lease runs from the send time of its last renewal that was delivered back to it
// in a majority view. Using the SEND time (not the delivery time) matters: a master that was
// paused and then processes an old renewal from its backlog does not get a fresh lease.

import type { Settings } from './types.ts';

export function leaseAgeMs(lastRenewalSentAt: number | null, now: number): number | null {
  return lastRenewalSentAt === null ? null : now - lastRenewalSentAt;
}

export function leaseFresh(lastRenewalSentAt: number | null, now: number, s: Pick<Settings, 'leaseMs'>): boolean {
  return lastRenewalSentAt !== null && now - lastRenewalSentAt <= s.leaseMs;
}

/**
 * When a node that saw a holder's renewal at `seenAt` may assume that holder has let go:
 * its lease ended at sentAt + leaseMs <= seenAt + leaseMs, it then had releaseBudgetMs to release
 * before its watchdog fires; leaseMarginMs is slack on top.
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
  /** The IP or panel may be held (assigned and not yet confirmed released). */
  mayHoldIpOrPanel: boolean;
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
 *  - IP lease: a holder is gone by lastRenewal + leaseMs + releaseBudgetMs (new masters wait
 *    that plus leaseMarginMs after the renewal they saw); a freshly started agent, which may
 *    inherit an address from its crashed predecessor, must have released it within leaseMarginMs;
 *  - storage: with VMs, gone by lastGoodWriteStart + storage + fence - writeMax (readers relocate
 *    after seeing the heartbeat unchanged for storage + fence);
 *  - self-fence: with VMs while fenced, gone by fencedSince + fenceTimeoutMs.
 */
export function watchdogDeadline(i: WatchdogInput): { deadline: number; reason: string } {
  const s = i.settings;
  let deadline = i.now + s.fenceTimeoutMs;
  let reason = 'agent liveness';
  if (i.mayHoldIpOrPanel) {
    // Without a renewal of our own (fresh start) we may be a restarted agent of a master whose
    // old watchdog deadline is just about to pass: only the margin is left for the startup release.
    const t = i.lastRenewalSentAt === null ? i.startedAt + s.leaseMarginMs : i.lastRenewalSentAt + s.leaseMs + s.releaseBudgetMs;
    if (t < deadline) [deadline, reason] = [t, 'cluster IP / panel not released within releaseBudgetMs after the lease expired'];
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

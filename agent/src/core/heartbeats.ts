// Tracking other nodes' storage heartbeats. Staleness is measured on the READER's clock as the
// time since the heartbeat last changed; clocks of different nodes are never compared.

import type { Heartbeat, NodeId, SelfStatus, VmId } from './types.ts';

export interface HeartbeatSeen {
  /** `${incarnation}:${seq}`, or 'absent' when the file did not exist. */
  key: string;
  /** Completion time of the first read that showed this key (>= when it was written). */
  firstSeenAt: number;
  /** Start time of the latest successful read that still showed this key. */
  lastReadStart: number;
  selfStatus: SelfStatus | null;
  running: VmId[];
}

/**
 * Fold one successful read into the tracker. Nodes missing from the read are tracked as 'absent'
 * (their staleness grows from the first read that missed them).
 */
export function observeHeartbeats(
  seen: Map<NodeId, HeartbeatSeen>,
  nodeIds: readonly NodeId[],
  heartbeats: readonly Heartbeat[],
  startedAt: number,
  completedAt: number,
): void {
  const byNode = new Map<NodeId, Heartbeat>();
  for (const hb of heartbeats) byNode.set(hb.nodeid, hb);
  for (const id of nodeIds) {
    const hb = byNode.get(id);
    const key = hb === undefined ? 'absent' : `${hb.incarnation}:${hb.seq}`;
    const prev = seen.get(id);
    if (prev === undefined || prev.key !== key) {
      seen.set(id, {
        key,
        firstSeenAt: completedAt,
        lastReadStart: startedAt,
        selfStatus: hb?.selfStatus ?? null,
        running: hb === undefined ? [] : [...hb.runningVms],
      });
    } else if (startedAt > prev.lastReadStart) {
      prev.lastReadStart = startedAt;
    }
  }
}

/**
 * How long the heartbeat is proven unchanged: from when we first saw its current value to the
 * start of the latest read that still showed it. Conservative: never more than the truth.
 */
export function provenStaleMs(hb: HeartbeatSeen): number {
  return Math.max(0, hb.lastReadStart - hb.firstSeenAt);
}

/** Age for display: time since the heartbeat last changed, on our clock. */
export function heartbeatAgeMs(hb: HeartbeatSeen, now: number): number {
  return Math.max(0, now - hb.firstSeenAt);
}

// Public API of the corosync bindings (see client.ts for how dispatch works).
import { CorosyncClient } from './client.ts';
import type { ClusterSnapshot } from './types.ts';

export type { ClusterEvent, ClusterSnapshot, CorosyncClientOptions, NodelistEntry, VotequorumInfo } from './types.ts';
export { CorosyncClient } from './client.ts';
export { CorosyncError, csErrorName } from './errors.ts';
export { decodeVotequorumFlags, parseNodelist } from './parse.ts';

/**
 * One-shot read: connect (without joining a cpg group), wait until quorum, votequorum and
 * config are known, disconnect. Throws a clear error when corosync is not reachable in time.
 */
export async function readClusterState(opts: { timeoutMs?: number } = {}): Promise<ClusterSnapshot> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const deadline = Date.now() + timeoutMs;
  const client = new CorosyncClient({ cpgGroup: null, minBackoffMs: 50, maxBackoffMs: 500 });
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const why = client.lastError ?? 'timeout';
        reject(new Error(`cannot connect to corosync: is corosync running on this node? (${why})`));
      }, timeoutMs);
    });
    await Promise.race([client.start(), timedOut]);
    const known = (s: ClusterSnapshot) => s.ringSeq !== undefined && !!s.votequorum && s.configVersion !== undefined;
    return await client.waitFor(known, Math.max(1, deadline - Date.now()));
  } finally {
    clearTimeout(timer);
    await client.stop();
  }
}

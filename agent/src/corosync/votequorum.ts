// libvotequorum (votequorum.h): getinfo + notifications on quorum / expected votes / nodelist changes.
import { check } from './errors.ts';
import { CS_DISPATCH_ALL, CS_TRACK_CHANGES, CS_TRACK_CURRENT, koffi, lazy, loadLib } from './ffi.ts';
import { VOTEQUORUM_INFO_QUORATE, decodeVotequorumFlags } from './parse.ts';
import type { VotequorumInfo } from './types.ts';

const VOTEQUORUM_QDEVICE_MAX_NAME_LEN = 255;

koffi.struct('votequorum_info', {
  node_id: 'unsigned int',
  node_state: 'unsigned int',
  node_votes: 'unsigned int',
  node_expected_votes: 'unsigned int',
  highest_expected: 'unsigned int',
  total_votes: 'unsigned int',
  quorum: 'unsigned int',
  flags: 'unsigned int',
  qdevice_votes: 'unsigned int',
  qdevice_name: koffi.array('char', VOTEQUORUM_QDEVICE_MAX_NAME_LEN),
});
koffi.struct('votequorum_node_t', { nodeid: 'uint32_t', state: 'uint32_t' });
koffi.struct('votequorum_ring_id_t', { nodeid: 'uint32_t', seq: 'uint64_t' });

// All three callbacks only tell us "something changed"; we re-read getinfo afterwards.
export const VqQuorumFn = koffi.proto(
  'void votequorum_quorum_notification_fn_t(uint64_t handle, uint64_t context, uint32_t quorate, uint32_t node_list_entries, votequorum_node_t *node_list)',
);
export const VqExpectedFn = koffi.proto(
  'void votequorum_expectedvotes_notification_fn_t(uint64_t handle, uint64_t context, uint32_t expected_votes)',
);
export const VqNodelistFn = koffi.proto(
  'void votequorum_nodelist_notification_fn_t(uint64_t handle, uint64_t context, votequorum_ring_id_t ring_id, uint32_t node_list_entries, uint32_t *node_list)',
);
koffi.struct('votequorum_callbacks_t', {
  votequorum_quorum_notify_fn: koffi.pointer(VqQuorumFn),
  votequorum_expectedvotes_notify_fn: koffi.pointer(VqExpectedFn),
  votequorum_nodelist_notify_fn: koffi.pointer(VqNodelistFn),
});

const lib = lazy(() => {
  const l = loadLib('libvotequorum.so.8');
  return {
    initialize: l.func('cs_error_t votequorum_initialize(_Out_ uint64_t *handle, votequorum_callbacks_t *callbacks)'),
    finalize: l.func('cs_error_t votequorum_finalize(uint64_t handle)'),
    fd_get: l.func('cs_error_t votequorum_fd_get(uint64_t handle, _Out_ int *fd)'),
    dispatch: l.func('cs_error_t votequorum_dispatch(uint64_t handle, int dispatch_types)'),
    getinfo: l.func('cs_error_t votequorum_getinfo(uint64_t handle, unsigned int nodeid, _Out_ votequorum_info *info)'),
    trackstart: l.func('cs_error_t votequorum_trackstart(uint64_t handle, uint64_t context, unsigned int flags)'),
  };
});

export type VotequorumCallbacks = { quorum: unknown; expected: unknown; nodelist: unknown };

export const votequorum = {
  initialize(cbs: VotequorumCallbacks): bigint {
    const h = [0n];
    const callbacks = {
      votequorum_quorum_notify_fn: cbs.quorum,
      votequorum_expectedvotes_notify_fn: cbs.expected,
      votequorum_nodelist_notify_fn: cbs.nodelist,
    };
    check('votequorum_initialize', lib().initialize(h, callbacks));
    return BigInt(h[0]!);
  },
  finalize: (h: bigint) => lib().finalize(h) as number,
  fdGet(h: bigint): number {
    const fd = [0];
    check('votequorum_fd_get', lib().fd_get(h, fd));
    return fd[0]!;
  },
  dispatch: (h: bigint) => lib().dispatch(h, CS_DISPATCH_ALL) as number,
  /** Info as seen for `nodeId` (pass the local nodeid; 0 means the qdevice). */
  getInfo(h: bigint, nodeId: number): VotequorumInfo {
    const out: Record<string, number> = {};
    check('votequorum_getinfo', lib().getinfo(h, nodeId, out));
    const flags = out.flags ?? 0;
    return {
      nodeId: out.node_id ?? nodeId,
      expectedVotes: out.node_expected_votes ?? 0,
      highestExpected: out.highest_expected ?? 0,
      totalVotes: out.total_votes ?? 0,
      quorum: out.quorum ?? 0,
      quorate: (flags & VOTEQUORUM_INFO_QUORATE) !== 0,
      flags: decodeVotequorumFlags(flags),
    };
  },
  trackStart(h: bigint): void {
    check('votequorum_trackstart', lib().trackstart(h, 0n, CS_TRACK_CHANGES | CS_TRACK_CURRENT));
  },
};

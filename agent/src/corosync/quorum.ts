// libquorum (quorum.h): v0 model, which reports quorate + ring_seq + member list on every change.
import { check } from './errors.ts';
import { CS_DISPATCH_ALL, CS_TRACK_CHANGES, CS_TRACK_CURRENT, decodeArray, koffi, lazy, loadLib } from './ffi.ts';

// void (*quorum_notification_fn_t)(handle, uint32_t quorate, uint64_t ring_seq, uint32_t n, uint32_t *list)
export const QuorumNotifyFn = koffi.proto(
  'void quorum_notification_fn_t(uint64_t handle, uint32_t quorate, uint64_t ring_seq, uint32_t view_list_entries, uint32_t *view_list)',
);
koffi.struct('quorum_callbacks_t', {
  quorum_notify_fn: koffi.pointer(QuorumNotifyFn),
});

const lib = lazy(() => {
  const l = loadLib('libquorum.so.5');
  return {
    initialize: l.func('cs_error_t quorum_initialize(_Out_ uint64_t *handle, quorum_callbacks_t *callbacks, _Out_ uint32_t *quorum_type)'),
    finalize: l.func('cs_error_t quorum_finalize(uint64_t handle)'),
    fd_get: l.func('cs_error_t quorum_fd_get(uint64_t handle, _Out_ int *fd)'),
    dispatch: l.func('cs_error_t quorum_dispatch(uint64_t handle, int dispatch_types)'),
    getquorate: l.func('cs_error_t quorum_getquorate(uint64_t handle, _Out_ int *quorate)'),
    trackstart: l.func('cs_error_t quorum_trackstart(uint64_t handle, unsigned int flags)'),
  };
});

export type QuorumNotify = (handle: bigint, quorate: boolean, ringSeq: bigint, members: number[]) => void;

/** Wraps a JS handler into the raw C callback signature (decoding the member array). */
export function quorumNotifyAdapter(fn: QuorumNotify) {
  return (h: number | bigint, quorate: number, seq: number | bigint, n: number, list: unknown) =>
    fn(BigInt(h), quorate !== 0, BigInt(seq), decodeArray<number>(list, 'uint32_t', n));
}

export const quorum = {
  initialize(notify: unknown): bigint {
    const h = [0n];
    const type = [0];
    check('quorum_initialize', lib().initialize(h, { quorum_notify_fn: notify }, type));
    return BigInt(h[0]!);
  },
  finalize: (h: bigint) => lib().finalize(h) as number,
  fdGet(h: bigint): number {
    const fd = [0];
    check('quorum_fd_get', lib().fd_get(h, fd));
    return fd[0]!;
  },
  dispatch: (h: bigint) => lib().dispatch(h, CS_DISPATCH_ALL) as number,
  getQuorate(h: bigint): boolean {
    const q = [0];
    check('quorum_getquorate', lib().getquorate(h, q));
    return q[0] !== 0;
  },
  trackStart(h: bigint): void {
    check('quorum_trackstart', lib().trackstart(h, CS_TRACK_CHANGES | CS_TRACK_CURRENT));
  },
};

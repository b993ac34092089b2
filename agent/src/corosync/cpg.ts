// libcpg (cpg.h): process group membership and totally ordered (AGREED) multicast.
import { check } from './errors.ts';
import { CS_DISPATCH_ALL, copyBytes, decodeArray, koffi, lazy, loadLib } from './ffi.ts';
import type { CpgMember } from './types.ts';

const CPG_MAX_NAME_LENGTH = 128;
const CPG_MEMBERS_MAX = 128;
const CPG_TYPE_AGREED = 2;

koffi.struct('cpg_name', {
  length: 'uint32_t',
  value: koffi.array('uint8_t', CPG_MAX_NAME_LENGTH, 'Array'), // bytes, not NUL-terminated
});
const CpgAddress = koffi.struct('cpg_address', { nodeid: 'uint32_t', pid: 'uint32_t', reason: 'uint32_t' });
koffi.struct('corosync_iovec', { iov_base: 'void *', iov_len: 'size_t' }); // struct iovec (unique koffi name)

export const CpgDeliverFn = koffi.proto(
  'void cpg_deliver_fn_t(uint64_t handle, const cpg_name *group_name, uint32_t nodeid, uint32_t pid, void *msg, size_t msg_len)',
);
export const CpgConfchgFn = koffi.proto(
  'void cpg_confchg_fn_t(uint64_t handle, const cpg_name *group_name, const cpg_address *member_list, size_t member_list_entries, const cpg_address *left_list, size_t left_list_entries, const cpg_address *joined_list, size_t joined_list_entries)',
);
koffi.struct('cpg_callbacks_t', {
  cpg_deliver_fn: koffi.pointer(CpgDeliverFn),
  cpg_confchg_fn: koffi.pointer(CpgConfchgFn),
});

const lib = lazy(() => {
  const l = loadLib('libcpg.so.4');
  return {
    initialize: l.func('cs_error_t cpg_initialize(_Out_ uint64_t *handle, cpg_callbacks_t *callbacks)'),
    finalize: l.func('cs_error_t cpg_finalize(uint64_t handle)'),
    fd_get: l.func('cs_error_t cpg_fd_get(uint64_t handle, _Out_ int *fd)'),
    dispatch: l.func('cs_error_t cpg_dispatch(uint64_t handle, int dispatch_types)'),
    join: l.func('cs_error_t cpg_join(uint64_t handle, const cpg_name *group)'),
    leave: l.func('cs_error_t cpg_leave(uint64_t handle, const cpg_name *group)'),
    mcast_joined: l.func('cs_error_t cpg_mcast_joined(uint64_t handle, int guarantee, const corosync_iovec *iovec, unsigned int iov_len)'),
    membership_get: l.func(
      'cs_error_t cpg_membership_get(uint64_t handle, cpg_name *groupName, void *member_list, _Inout_ int *member_list_entries)',
    ),
    local_get: l.func('cs_error_t cpg_local_get(uint64_t handle, _Out_ unsigned int *local_nodeid)'),
  };
});

/** Encodes a group name as struct cpg_name (length-prefixed, not NUL-terminated). */
export function cpgName(group: string): { length: number; value: number[] } {
  const bytes = Buffer.from(group, 'utf8');
  if (bytes.length === 0 || bytes.length > CPG_MAX_NAME_LENGTH) {
    throw new Error(`invalid cpg group name length ${bytes.length} (1..${CPG_MAX_NAME_LENGTH})`);
  }
  const value = new Array<number>(CPG_MAX_NAME_LENGTH).fill(0);
  bytes.forEach((b, i) => (value[i] = b));
  return { length: bytes.length, value };
}

/** Reads struct cpg_name: its uint32 length, then that many bytes (called for every message, so no full struct decode). */
function decodeName(ptr: unknown): string {
  const length = Math.min(koffi.decode(ptr, 'uint32_t') as number, CPG_MAX_NAME_LENGTH);
  return copyBytes(ptr, 4 + length).toString('utf8', 4);
}

type Addr = { nodeid: number; pid: number; reason: number };
const members = (a: Addr[]): CpgMember[] => a.map(({ nodeid, pid }) => ({ nodeid, pid }));

export type CpgDeliver = (handle: bigint, group: string, nodeid: number, pid: number, data: Buffer) => void;
export type CpgConfchg = (
  handle: bigint,
  group: string,
  members: CpgMember[],
  left: Addr[],
  joined: CpgMember[],
) => void;

/** Raw-signature adapters: decode pointers and copy the message while it is still valid. */
export function cpgDeliverAdapter(fn: CpgDeliver) {
  return (h: number | bigint, name: unknown, nodeid: number, pid: number, msg: unknown, len: number | bigint) =>
    fn(BigInt(h), decodeName(name), nodeid, pid, copyBytes(msg, Number(len)));
}
export function cpgConfchgAdapter(fn: CpgConfchg) {
  return (h: number | bigint, name: unknown, m: unknown, mn: number, l: unknown, ln: number, j: unknown, jn: number) =>
    fn(
      BigInt(h),
      decodeName(name),
      members(decodeArray<Addr>(m, CpgAddress, Number(mn))),
      decodeArray<Addr>(l, CpgAddress, Number(ln)).map(({ nodeid, pid, reason }) => ({ nodeid, pid, reason })),
      members(decodeArray<Addr>(j, CpgAddress, Number(jn))),
    );
}

export const cpg = {
  initialize(deliver: unknown, confchg: unknown): bigint {
    const h = [0n];
    check('cpg_initialize', lib().initialize(h, { cpg_deliver_fn: deliver, cpg_confchg_fn: confchg }));
    return BigInt(h[0]!);
  },
  finalize: (h: bigint) => lib().finalize(h) as number,
  fdGet(h: bigint): number {
    const fd = [0];
    check('cpg_fd_get', lib().fd_get(h, fd));
    return fd[0]!;
  },
  dispatch: (h: bigint) => lib().dispatch(h, CS_DISPATCH_ALL) as number,
  join: (h: bigint, group: string) => lib().join(h, cpgName(group)) as number,
  leave: (h: bigint, group: string) => lib().leave(h, cpgName(group)) as number,
  /** Returns the raw cs_error_t so the caller can retry CS_ERR_TRY_AGAIN (flow control). */
  mcastAgreed: (h: bigint, data: Buffer) =>
    lib().mcast_joined(h, CPG_TYPE_AGREED, { iov_base: data, iov_len: data.length }, 1) as number,
  membershipGet(h: bigint, group: string): CpgMember[] {
    const count = [CPG_MEMBERS_MAX];
    const buf = Buffer.alloc(koffi.sizeof(CpgAddress) * CPG_MEMBERS_MAX);
    check('cpg_membership_get', lib().membership_get(h, cpgName(group), buf, count));
    return members(decodeArray<Addr>(buf, CpgAddress, count[0]!));
  },
  localGet(h: bigint): number {
    const id = [0];
    check('cpg_local_get', lib().local_get(h, id));
    return id[0]!;
  },
};

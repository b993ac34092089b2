// koffi callback registration. The C libraries keep these function pointers, so they are
// registered once per client (not per call) and unregistered only when the client stops.
import { CmapNotifyFn, cmapNotifyAdapter } from './cmap.ts';
import { CpgConfchgFn, CpgDeliverFn, cpgConfchgAdapter, cpgDeliverAdapter } from './cpg.ts';
import { koffi } from './ffi.ts';
import { QuorumNotifyFn, quorumNotifyAdapter } from './quorum.ts';
import type { RegisteredCallbacks } from './session.ts';
import type { CpgMember, Logger } from './types.ts';
import { VqExpectedFn, VqNodelistFn, VqQuorumFn } from './votequorum.ts';

/** What the callbacks report to; all of it runs synchronously inside X_dispatch on the main thread. */
export type CallbackSink = {
  quorum(handle: bigint, quorate: boolean, ringSeq: bigint, members: number[]): void;
  votequorumChanged(handle: bigint): void;
  cpgMessage(handle: bigint, group: string, nodeid: number, pid: number, data: Buffer): void;
  cpgMembership(
    handle: bigint,
    group: string,
    members: CpgMember[],
    left: Array<CpgMember & { reason: number }>,
    joined: CpgMember[],
  ): void;
  configChanged(handle: bigint): void;
};

export function registerCallbacks(sink: CallbackSink, log: Logger): RegisteredCallbacks {
  // An exception must never unwind into C: log it and return normally.
  const guard =
    <A extends unknown[]>(name: string, fn: (...a: A) => void) =>
    (...a: A) => {
      try {
        fn(...a);
      } catch (err) {
        log.warn({ err: String(err), callback: name }, 'corosync callback failed');
      }
    };
  const reg = (fn: Function, proto: koffi.IKoffiCType) => koffi.register(fn, koffi.pointer(proto));
  const vqChanged = guard('votequorum', (h: number | bigint) => sink.votequorumChanged(BigInt(h)));
  return {
    quorum: reg(guard('quorum', quorumNotifyAdapter(sink.quorum)), QuorumNotifyFn),
    vqQuorum: reg(vqChanged, VqQuorumFn),
    vqExpected: reg(vqChanged, VqExpectedFn),
    vqNodelist: reg(vqChanged, VqNodelistFn),
    cpgDeliver: reg(guard('cpg_deliver', cpgDeliverAdapter(sink.cpgMessage)), CpgDeliverFn),
    cpgConfchg: reg(guard('cpg_confchg', cpgConfchgAdapter(sink.cpgMembership)), CpgConfchgFn),
    cmapNotify: reg(guard('cmap', cmapNotifyAdapter(sink.configChanged)), CmapNotifyFn),
  };
}

export function unregisterCallbacks(cbs: RegisteredCallbacks): void {
  for (const cb of Object.values(cbs)) koffi.unregister(cb as koffi.IKoffiRegisteredCallback);
}

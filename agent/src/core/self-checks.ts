// The node's own checks: its storage heartbeat (write ours, read everyone's) and the test-IP
// probe. They decide 'storage_isolation' and 'excluded' vs 'network_isolation'.

import type { CoreContext } from './context.ts';
import { observeHeartbeats, type HeartbeatSeen } from './heartbeats.ts';
import type { Heartbeat, NodeId, SelfStatus, VmId } from './types.ts';

export class SelfChecks {
  // Our heartbeat writes
  private seq = 0;
  private writeInFlight: { seq: number; startedAt: number } | null = null;
  private lastWriteAt = -Infinity;
  private writeSoon = false;
  private writeFailing = false;
  /** Start time of the latest write that completed OK within storageWriteMaxMs. */
  lastGoodWriteStart: number | null = null;
  lastGoodWriteSeq = 0;

  // Reading everyone's heartbeats
  private readInFlight: { startedAt: number } | null = null;
  private lastReadAt = -Infinity;
  private lastGoodReadAt: number | null = null;
  private readFailing = false;
  /** Other nodes' heartbeats as we have seen them (reader clock). */
  readonly seen = new Map<NodeId, HeartbeatSeen>();

  // Test IP
  private testIp: { reachable: boolean; at: number } | null = null;
  private probeInFlightSince: number | null = null;
  private lastProbeAt = -Infinity;

  constructor(
    private readonly ctx: CoreContext,
    private readonly incarnation: number,
  ) {}

  /** null = no good write yet; otherwise whether writes and reads both worked recently. */
  storageOk(): boolean | null {
    const { now, s, startedAt } = this.ctx;
    if (this.lastGoodWriteStart === null) return null;
    const readOk = (this.lastGoodReadAt ?? startedAt) > now - s.storageTimeoutMs;
    return now - this.lastGoodWriteStart < s.storageTimeoutMs && readOk;
  }

  testIpReachable(): boolean {
    const t = this.testIp;
    return t !== null && t.reachable && this.ctx.now - t.at <= this.ctx.s.testIpFreshMs;
  }

  /** Ask for a heartbeat write as soon as possible; returns the seq that write will carry. */
  requestWrite(): number {
    this.writeSoon = true;
    return this.seq + 1;
  }

  onWrite(ok: boolean, seq: number, eventStartedAt: number, error: string | undefined): void {
    const { ctx } = this;
    const mine = this.writeInFlight !== null && this.writeInFlight.seq === seq ? this.writeInFlight : null;
    if (mine) this.writeInFlight = null;
    // Our own record of the start is earlier than the effect layer's: conservative.
    const startedAt = mine ? mine.startedAt : eventStartedAt;
    const tookMs = ctx.now - startedAt;
    if (ok && tookMs <= ctx.s.storageWriteMaxMs) {
      this.lastGoodWriteStart = Math.max(this.lastGoodWriteStart ?? -Infinity, startedAt);
      this.lastGoodWriteSeq = Math.max(this.lastGoodWriteSeq, seq);
      if (this.writeFailing) ctx.out.decide('storage', 'storage heartbeat writes work again');
      this.writeFailing = false;
      return;
    }
    if (!this.writeFailing) {
      ctx.out.decide('storage', ok ? `storage heartbeat write took ${tookMs} ms > ${ctx.s.storageWriteMaxMs} ms: not counted` : `storage heartbeat write failed: ${error ?? 'error'}`);
    }
    this.writeFailing = true;
  }

  onRead(ok: boolean, eventStartedAt: number, heartbeats: readonly Heartbeat[], error: string | undefined, otherNodes: readonly NodeId[]): void {
    const { ctx } = this;
    // The snapshot is at least as new as the earlier of the two start times (a late answer to
    // an abandoned read must not be credited with a newer read's start).
    const startedAt = Math.min(this.readInFlight?.startedAt ?? Infinity, eventStartedAt);
    this.readInFlight = null;
    if (!ok) {
      if (!this.readFailing) ctx.out.decide('storage', `storage heartbeat read failed: ${error ?? 'error'}`);
      this.readFailing = true;
      return;
    }
    if (this.readFailing) ctx.out.decide('storage', 'storage heartbeat reads work again');
    this.readFailing = false;
    this.lastGoodReadAt = ctx.now;
    observeHeartbeats(this.seen, otherNodes, heartbeats, startedAt, ctx.now);
  }

  onTestIp(reachable: boolean): void {
    this.testIp = { reachable, at: this.ctx.now };
    this.probeInFlightSince = null;
  }

  /** Periodic I/O: heartbeat write, heartbeat read, test-IP probe. */
  periodic(selfStatus: SelfStatus, runningVms: VmId[]): void {
    const { ctx } = this;
    const { now, s, out } = ctx;
    // An operation the effect layer never answered is forgotten after storageTimeoutMs.
    if (this.writeInFlight && now - this.writeInFlight.startedAt > s.storageTimeoutMs) this.writeInFlight = null;
    if (this.writeInFlight === null && (this.writeSoon || now - this.lastWriteAt >= s.storageWriteMs)) {
      this.seq += 1;
      this.writeInFlight = { seq: this.seq, startedAt: now };
      this.lastWriteAt = now;
      this.writeSoon = false;
      out.act({
        type: 'WriteHeartbeat',
        heartbeat: { nodeid: ctx.id, incarnation: this.incarnation, seq: this.seq, selfStatus, runningVms },
        reason: 'storage heartbeat',
      });
    }
    if (this.readInFlight && now - this.readInFlight.startedAt > s.storageTimeoutMs) this.readInFlight = null;
    if (this.readInFlight === null && now - this.lastReadAt >= s.storageReadMs) {
      this.readInFlight = { startedAt: now };
      this.lastReadAt = now;
      out.act({ type: 'ReadHeartbeats', reason: 'storage heartbeat check' });
    }
    if (this.probeInFlightSince !== null && now - this.probeInFlightSince > s.testIpFreshMs) this.probeInFlightSince = null;
    if (this.probeInFlightSince === null && now - this.lastProbeAt >= s.testIpProbeMs) {
      this.probeInFlightSince = now;
      this.lastProbeAt = now;
      out.act({ type: 'ProbeTestIp', reason: 'test IP probe' });
    }
  }
}

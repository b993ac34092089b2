// VMs on this node. Starting one takes a handshake, so that a node acting on stale state can
// never start a VM the master has already given to someone else:
//   1. the owner multicasts `start {vm, epoch, sentAt}` ('requested');
//   2. on its delivery, if still a good member and owner and sentAt is less than startWindowMs ago
//      (the ring works, we are not a paused process replaying a backlog), the VM is written into
//      our heartbeat ('intent': write-ahead, so an older "stopped" heartbeat cannot be misread);
//   3. once that heartbeat write completed, StartVm ('starting').
// A node that must self-fence stops everything; an excluded node keeps what runs.

import type { CoreContext } from './context.ts';
import type { SelfChecks } from './self-checks.ts';
import type { CoreAction, VmId } from './types.ts';

interface LocalVm {
  state: 'requested' | 'intent' | 'starting' | 'running' | 'stopping';
  epoch: number;
  /** When the start message was sent (our clock). */
  sentAt: number;
  /** Heartbeat seq that must be written before the VM may start. */
  needSeq: number;
  /** Latest StartVm/StopVm we emitted for it; older results are stale. */
  op: number;
}

/** Listed in our heartbeat and reports: anything not confirmed stopped. */
const ACTIVE: ReadonlySet<LocalVm['state']> = new Set(['intent', 'starting', 'running', 'stopping']);

export class LocalVms {
  private readonly vms = new Map<VmId, LocalVm>();
  /** The driver told us what runs here (until then we assume VMs may run). */
  known = false;
  /** Bumped on every change, so reports know when to go out. */
  version = 0;
  private activeCache: VmId[] | null = null;
  /** Owners or table changed, or time passed: look for VMs to start. */
  private scanDue = true;
  private readonly startRetryAt = new Map<VmId, number>();
  /** Set when a stop failed: retry with force after vmRetryMs. */
  private readonly stopRetryAt = new Map<VmId, number>();
  private nextOp = 1;
  /** Drains we confirmed (`vm:epoch:term`), so each confirmation goes out once. */
  private readonly drainedSent = new Set<string>();

  constructor(
    private readonly ctx: CoreContext,
    private readonly checks: SelfChecks,
  ) {}

  stateOf(vm: VmId): string | null {
    return this.vms.get(vm)?.state ?? null;
  }

  ids(): VmId[] {
    return [...this.vms.keys()];
  }

  /** Sorted list of VMs that are not confirmed stopped. */
  active(): VmId[] {
    if (this.activeCache === null) {
      const out: VmId[] = [];
      for (const [vm, l] of this.vms) if (ACTIVE.has(l.state)) out.push(vm);
      this.activeCache = out.sort();
    }
    return this.activeCache;
  }

  /** Sorted list of active VMs not confirmed up yet (start announced or under way). */
  starting(): VmId[] {
    const out: VmId[] = [];
    for (const [vm, l] of this.vms) if (l.state === 'intent' || l.state === 'starting') out.push(vm);
    return out.sort();
  }

  hasActive(): boolean {
    for (const l of this.vms.values()) if (ACTIVE.has(l.state)) return true;
    return false;
  }

  requestScan(): void {
    this.scanDue = true;
  }

  // Every change goes through these, so the cached list and the report stay right.
  private set(vm: VmId, l: LocalVm): void {
    this.vms.set(vm, l);
    this.changed();
  }
  private delete(vm: VmId): void {
    if (this.vms.delete(vm)) this.changed();
  }
  private setState(l: LocalVm, state: LocalVm['state']): void {
    l.state = state;
    this.changed();
  }
  private changed(): void {
    this.activeCache = null;
    this.version += 1;
    this.scanDue = true;
  }

  /** The driver's list of VMs running here. */
  onDriverList(running: VmId[]): void {
    const { out, now } = this.ctx;
    const set = new Set(running);
    for (const vm of set) {
      if (!this.vms.has(vm)) {
        this.set(vm, { state: 'running', epoch: 0, sentAt: now, needSeq: 0, op: 0 });
        out.decide('vm', `${vm} found running locally`);
      }
    }
    for (const [vm, l] of this.vms) {
      if (l.state === 'running' && !set.has(vm)) {
        this.delete(vm);
        out.decide('vm', `${vm} is no longer running locally`);
      }
    }
    this.known = true;
  }

  onResult(a: CoreAction, ok: boolean, error: string | undefined): void {
    const { out, now, s } = this.ctx;
    if (a.type !== 'StartVm' && a.type !== 'StopVm') return;
    if (!ok) out.decide('action', `${a.type} ${a.vm} failed: ${error ?? 'error'}`);
    const l = this.vms.get(a.vm);
    // Operations on one VM complete in order: only the latest one tells the state.
    if (l === undefined || a.opId !== l.op) return;
    if (a.type === 'StartVm') {
      if (ok && l.state === 'starting') this.setState(l, 'running');
      if (!ok) {
        if (l.state === 'starting') this.delete(a.vm);
        this.startRetryAt.set(a.vm, now + s.vmRetryMs);
      }
      return;
    }
    if (ok && l.state === 'stopping') this.delete(a.vm);
    // A failed stop stays 'stopping' (still listed) and is retried with force; the watchdog
    // resets the node if it must self-fence and cannot.
    if (!ok) this.stopRetryAt.set(a.vm, now + s.vmRetryMs);
  }

  /** Step 2 of the handshake: our own start message came back. */
  onOwnStartDelivered(vm: VmId, epoch: number, sentAt: number, canStart: boolean, selfStatus: string): void {
    const { ctx } = this;
    const l = this.vms.get(vm);
    if (l === undefined || l.state !== 'requested' || l.epoch !== epoch) return;
    const o = ctx.rep.ownerOf(vm);
    const age = ctx.now - sentAt;
    let why = '';
    if (age > ctx.s.startWindowMs) why = `its start message took ${age} ms > startWindowMs`;
    else if (o.node !== ctx.id || o.epoch !== epoch) why = `owner is now n${o.node} epoch ${o.epoch}`;
    else if (!canStart) why = `not a good member (${selfStatus})`;
    if (why !== '') {
      this.delete(vm);
      ctx.out.decide('vm', `start of ${vm} abandoned: ${why}`);
      return;
    }
    this.setState(l, 'intent');
    l.needSeq = this.checks.requestWrite();
  }

  /** Every step: stop what must stop, advance the handshake, announce starts of owned VMs. */
  reconcile(fenced: boolean, canStart: boolean, selfStatus: string): void {
    const { ctx } = this;
    const { rep, out, now, s, id } = ctx;
    for (const [vm, l] of this.vms) {
      const drainHere = this.drainingHere(vm);
      switch (l.state) {
        case 'requested':
        case 'intent': {
          const expired = now - l.sentAt > s.startWindowMs;
          if (drainHere) {
            this.delete(vm);
            out.decide('vm', `start of ${vm} abandoned: it is being drained off n${id}`);
          } else if (fenced || expired) {
            this.delete(vm);
            if (expired) out.decide('vm', `start of ${vm} abandoned: not confirmed within startWindowMs`);
          } else if (l.state === 'intent' && canStart && this.checks.lastGoodWriteSeq >= l.needSeq) {
            const o = rep.ownerOf(vm);
            if (o.node !== id || o.epoch !== l.epoch) this.delete(vm);
            else {
              this.setState(l, 'starting');
              l.op = this.nextOp++;
              out.act({ type: 'StartVm', vm, epoch: l.epoch, opId: l.op, reason: `${vm} owned by n${id} (epoch ${l.epoch}), good member, start announced and written to the heartbeat` });
            }
          }
          break;
        }
        case 'starting':
        case 'running': {
          if (fenced) {
            this.stop(vm, l, `${selfStatus}: self-fence`);
            break;
          }
          if (drainHere) {
            this.stop(vm, l, `${vm}: maintenance drain of n${id}, it restarts elsewhere`);
            break;
          }
          if (!canStart) break; // excluded, starting or unsynced: keep what runs
          const o = rep.owners.get(vm);
          if (o !== undefined && o.node !== id) this.stop(vm, l, `${vm} is owned by n${o.node} (epoch ${o.epoch})`);
          else if (rep.specs.get(vm)?.desired === 'stopped') this.stop(vm, l, `${vm} desired state is stopped`);
          break;
        }
        case 'stopping':
          if ((this.stopRetryAt.get(vm) ?? Infinity) <= now) {
            this.stopRetryAt.delete(vm);
            l.op = this.nextOp++;
            out.act({ type: 'StopVm', vm, force: true, opId: l.op, reason: `${vm}: stop failed, retry with force` });
          }
          break;
      }
    }
    this.confirmDrains();
    if (!canStart || !this.scanDue) return;
    this.scanDue = false;
    for (const [vm, o] of rep.owners) {
      if (o.node !== id || this.vms.has(vm) || this.drainingHere(vm)) continue;
      const spec = rep.specs.get(vm);
      if (spec === undefined || spec.desired === 'stopped' || (this.startRetryAt.get(vm) ?? 0) > now) continue;
      if (ctx.sabotage === 'no-start-handshake') {
        const op = this.nextOp++;
        this.set(vm, { state: 'starting', epoch: o.epoch, sentAt: now, needSeq: 0, op });
        out.act({ type: 'StartVm', vm, epoch: o.epoch, opId: op, reason: 'sabotaged: no start handshake' });
        continue;
      }
      this.set(vm, { state: 'requested', epoch: o.epoch, sentAt: now, needSeq: 0, op: 0 });
      out.send({ v: 1, kind: 'start', vm, epoch: o.epoch, sentAt: now }, `${vm} is owned by n${id} (epoch ${o.epoch}): announce start`);
    }
  }

  /**
   * The master asked us to stop this VM for a maintenance drain: keep it stopped (also after we
   * confirmed it, until the master moves it or the drain is forgotten).
   */
  private drainingHere(vm: VmId): boolean {
    return this.ctx.rep.draining.get(vm)?.node === this.ctx.id;
  }

  /** Drain step 2: tell everyone (ordered) once a drained VM is confirmed stopped here. */
  private confirmDrains(): void {
    const { rep, id, out } = this.ctx;
    if (rep.draining.size === 0) {
      this.drainedSent.clear();
      return;
    }
    for (const [vm, d] of rep.draining) {
      if (d.node !== id || d.stopped || !this.known || this.vms.has(vm)) continue;
      const key = `${vm}:${d.epoch}:${d.term}`;
      if (this.drainedSent.has(key)) continue;
      this.drainedSent.add(key);
      out.send({ v: 1, kind: 'drained', term: d.term, vm, epoch: d.epoch }, `${vm} is stopped on n${id}: drain step done`);
    }
  }

  private stop(vm: VmId, l: LocalVm, reason: string): void {
    this.setState(l, 'stopping');
    this.stopRetryAt.delete(vm);
    l.op = this.nextOp++;
    this.ctx.out.act({ type: 'StopVm', vm, opId: l.op, reason });
  }
}

// A small synchronous cluster for scenario tests: real node cores, one global CPG order per
// partition, effects that complete instantly (unless held back), time advanced by hand.
// Much simpler than the simulator: no latencies, no randomness; easy to script and read.

import assert from 'node:assert/strict';
import { createNodeCore, type CoreOptions, type NodeCore } from '../../../src/core/node-core.ts';
import type { CoreAction, CoreEvent, Decision, Heartbeat, NodeConfig, NodeId, Settings, StepResult, VmId, VmSpec } from '../../../src/core/types.ts';

type EventBody = CoreEvent extends infer E ? (E extends CoreEvent ? Omit<E, 'now'> : never) : never;

export interface HarnessOptions {
  nodes: NodeConfig[];
  vms?: VmSpec[];
  /** Initial owners (epoch 1). */
  owners?: Record<VmId, NodeId>;
  settings?: Partial<Settings>;
  options?: (id: NodeId) => CoreOptions;
  /** Rewrite a node's multicasts on the wire (e.g. to play an older agent version). */
  wire?: (from: NodeId, msg: Record<string, unknown>) => Record<string, unknown>;
}

/** An action the effect layer has not finished yet (see Harness.hold). */
export interface Held {
  node: NodeId;
  action: CoreAction;
}

export interface Logged {
  at: number;
  node: NodeId;
  action: CoreAction;
}

export class Harness {
  now = 0;
  readonly cores = new Map<NodeId, NodeCore>();
  readonly actions: Logged[] = [];
  readonly decisions: Array<Decision & { node: NodeId }> = [];
  /** Physical state, as the effect layer would have it. */
  readonly ip = new Set<NodeId>();
  readonly panel = new Set<NodeId>();
  readonly vms = new Map<NodeId, Set<VmId>>();
  readonly files = new Map<NodeId, Heartbeat>();
  readonly metadata = new Map<VmId, { node: NodeId | null; epoch: number }>();
  readonly storageUp = new Map<NodeId, boolean>();
  readonly testIpUp = new Map<NodeId, boolean>();
  readonly paused = new Set<NodeId>();
  /** Actions of these types are held back (not executed, not answered) until finish() (e.g. 'StopPanel'). */
  readonly hold = new Map<NodeId, Set<CoreAction['type']>>();
  readonly held: Held[] = [];
  /** Heartbeat writes of a node that take this long (the result comes in a later tick of run()). */
  readonly slowWrites = new Map<NodeId, number>();
  private readonly writesInFlight: Array<{ node: NodeId; dueAt: number; ev: EventBody }> = [];
  /** Partition of the control network: list of groups. Nodes not listed are down. */
  private groups: NodeId[][] = [];
  /** CPG view (agents that joined) and votequorum membership (corosync up) per running agent. */
  private readonly views = new Map<NodeId, NodeId[]>();
  private readonly quorumViews = new Map<NodeId, NodeId[]>();
  private readonly inbox: Array<{ node: NodeId; ev: EventBody }> = [];
  private readonly backlog = new Map<NodeId, EventBody[]>();
  private incarnation = 0;
  /** corosync is forming a new membership: nothing is delivered (see stopRing). */
  private ringStopped = false;
  private unordered: Array<{ from: NodeId; msg: unknown }> = [];

  constructor(readonly opts: HarnessOptions) {
    for (const v of opts.vms ?? []) this.metadata.set(v.id, { node: opts.owners?.[v.id] ?? null, epoch: opts.owners?.[v.id] ? 1 : 0 });
    for (const n of opts.nodes) {
      this.storageUp.set(n.nodeid, true);
      this.testIpUp.set(n.nodeid, true);
    }
  }

  get ids(): NodeId[] {
    return this.opts.nodes.map((n) => n.nodeid);
  }

  core(id: NodeId): NodeCore {
    const c = this.cores.get(id);
    assert.ok(c, `n${id} is not running`);
    return c;
  }

  /** Start agents on the given nodes (all by default) and form one partition of them. */
  start(ids: NodeId[] = this.ids): void {
    for (const id of ids) this.boot(id);
    this.partition([[...new Set([...this.groups.flat(), ...ids])]]);
  }

  boot(id: NodeId): void {
    this.incarnation += 1;
    this.cores.set(id, createNodeCore(id, this.opts.settings, { incarnation: this.incarnation, ...this.opts.options?.(id) }));
    this.vms.set(id, new Set());
    this.deliver(id, { type: 'config', version: 1, nodes: this.opts.nodes });
    this.deliver(id, { type: 'local-vms', running: [] });
    this.deliver(id, this.inventory());
  }

  /** Start the agent of a node whose corosync already runs (it is in a partition group): it joins the CPG group. */
  startAgent(id: NodeId): void {
    this.boot(id);
    this.partition(this.groups);
  }

  /** The agent process dies; corosync (votequorum) stays up, so the node stays in the quorum. */
  crashAgent(id: NodeId): void {
    this.cores.delete(id);
    this.paused.delete(id);
    this.partition(this.groups);
  }

  /**
   * Power off: everything on the node disappears. With `repartition: false` corosync has not
   * noticed yet (use during stopRing(); the next partition() must leave the node out).
   */
  crash(id: NodeId, repartition = true): void {
    this.cores.delete(id);
    this.ip.delete(id);
    this.panel.delete(id);
    this.vms.delete(id);
    this.paused.delete(id);
    if (repartition) this.partition(this.groups.map((g) => g.filter((x) => x !== id)));
  }

  /**
   * corosync lost the token: until the next partition() (the new membership, token + consensus
   * later in real life) nothing is delivered, neither CPG messages nor quorum changes. Messages
   * multicast meanwhile are ordered in their sender's next view, after its membership change.
   */
  stopRing(): void {
    this.pump();
    this.ringStopped = true;
  }

  inventory(): EventBody {
    return {
      type: 'vm-inventory',
      vms: this.opts.vms ?? [],
      owners: [...this.metadata].map(([vm, o]) => ({ vm, node: o.node, epoch: o.epoch })),
    };
  }

  /**
   * Change the control-network partition (groups of nodes whose corosync runs); running agents get
   * quorum (the whole group) and CPG membership (the group's nodes with a running agent) events.
   */
  partition(groups: NodeId[][]): void {
    this.pump(); // messages already sent are delivered in the old views first
    this.ringStopped = false;
    this.groups = groups.map((g) => [...g].sort((a, b) => a - b)).filter((g) => g.length > 0);
    const need = Math.floor(this.opts.nodes.length / 2) + 1;
    const inCpg = new Set<NodeId>();
    for (const g of this.groups) {
      const cpg = g.filter((id) => this.cores.has(id));
      for (const id of cpg) {
        inCpg.add(id);
        const prevQ = this.quorumViews.get(id);
        const prev = this.views.get(id);
        if (!prevQ || prevQ.join() !== g.join()) {
          this.quorumViews.set(id, g);
          this.post(id, { type: 'quorum', quorate: g.length >= need, members: g });
        }
        if (!prev || prev.join() !== cpg.join()) {
          this.views.set(id, cpg);
          this.post(id, { type: 'cpg-membership', members: cpg });
        }
      }
    }
    for (const id of [...this.views.keys()]) {
      if (!inCpg.has(id)) {
        this.views.delete(id);
        this.quorumViews.delete(id);
      }
    }
    const unordered = this.unordered;
    this.unordered = [];
    for (const u of unordered) {
      if (!this.cores.has(u.from)) continue; // its sender died before it was ordered
      for (const m of this.views.get(u.from) ?? []) this.post(m, { type: 'cpg-message', from: u.from, msg: u.msg });
    }
    this.pump();
  }

  /** Queue an event for a node (delivered by pump, in order). */
  post(node: NodeId, ev: EventBody): void {
    this.inbox.push({ node, ev });
  }

  /** Deliver queued events (and whatever they cause) until nothing is left. */
  pump(): void {
    for (let guard = 0; this.inbox.length > 0; guard++) {
      assert.ok(guard < 100_000, 'harness: event storm');
      const { node, ev } = this.inbox.shift()!;
      this.deliver(node, ev);
    }
  }

  /** Deliver one event now and return the core's answer (or undefined if it is down/paused). */
  deliver(node: NodeId, ev: EventBody): StepResult | undefined {
    const core = this.cores.get(node);
    if (!core) return undefined;
    if (this.paused.has(node)) {
      this.backlog.set(node, [...(this.backlog.get(node) ?? []), ev]);
      return undefined;
    }
    const r = core.step({ ...ev, now: this.now } as CoreEvent);
    for (const d of r.decisions) this.decisions.push({ ...d, node });
    for (const a of r.actions) {
      this.actions.push({ at: this.now, node, action: a });
      this.effect(node, a);
    }
    return r;
  }

  /** Advance time in ticks of `tickMs`, delivering a tick to every running node each time. */
  run(ms: number, tickMs = 100): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + tickMs);
      for (const w of this.writesInFlight.filter((w) => w.dueAt <= this.now)) {
        this.writesInFlight.splice(this.writesInFlight.indexOf(w), 1);
        this.post(w.node, w.ev);
      }
      for (const id of this.cores.keys()) this.post(id, { type: 'tick' });
      this.pump();
    }
  }

  /** SIGSTOP the agent: no ticks, events queue up. */
  pause(id: NodeId): void {
    this.paused.add(id);
  }

  /** SIGCONT: returns the result of the first step (the timer tick), then drains the backlog. */
  resume(id: NodeId, first: EventBody = { type: 'tick' }): StepResult | undefined {
    this.paused.delete(id);
    const r = this.deliver(id, first);
    const queued = this.backlog.get(id) ?? [];
    this.backlog.delete(id);
    for (const ev of queued) this.post(id, ev);
    this.pump();
    return r;
  }

  /** Execute and answer the held-back actions of `type` on `node` (in order). */
  finish(node: NodeId, type: CoreAction['type']): void {
    const mine = this.held.filter((x) => x.node === node && x.action.type === type);
    for (const x of mine) this.held.splice(this.held.indexOf(x), 1);
    this.hold.get(node)?.delete(type);
    for (const x of mine) this.effect(node, x.action);
    this.pump();
  }

  private effect(node: NodeId, a: CoreAction): void {
    if (this.hold.get(node)?.has(a.type)) {
      this.held.push({ node, action: a });
      return;
    }
    const ok = (): void => this.post(node, { type: 'action-result', action: a, ok: true });
    switch (a.type) {
      case 'SendCpg': {
        const copy = JSON.parse(JSON.stringify(a.msg)) as Record<string, unknown>;
        const wire: unknown = this.opts.wire ? this.opts.wire(node, copy) : copy;
        if (this.ringStopped) this.unordered.push({ from: node, msg: wire });
        else for (const m of this.views.get(node) ?? []) this.post(m, { type: 'cpg-message', from: node, msg: wire });
        return;
      }
      case 'AssignClusterIp':
        assert.ok(![...this.ip].some((x) => x !== node), `n${node} assigns the cluster IP while ${[...this.ip]} hold it`);
        this.ip.add(node);
        return ok();
      case 'ReleaseClusterIp':
        this.ip.delete(node);
        return ok();
      case 'StartPanel':
        assert.ok(![...this.panel].some((x) => x !== node), `n${node} starts the panel while ${[...this.panel]} run it`);
        this.panel.add(node);
        return ok();
      case 'StopPanel':
        this.panel.delete(node);
        return ok();
      case 'StartVm':
        for (const [other, set] of this.vms) assert.ok(other === node || !set.has(a.vm), `n${node} starts ${a.vm} while n${other} runs it`);
        this.vms.get(node)?.add(a.vm);
        return ok();
      case 'StopVm':
        this.vms.get(node)?.delete(a.vm);
        return ok();
      case 'WriteHeartbeat': {
        if (this.storageUp.get(node)) this.files.set(node, a.heartbeat);
        const ev: EventBody = { type: 'storage-write', ok: this.storageUp.get(node) === true, seq: a.heartbeat.seq, startedAt: this.now };
        const slow = this.slowWrites.get(node);
        if (slow === undefined) this.post(node, ev);
        else this.writesInFlight.push({ node, dueAt: this.now + slow, ev });
        return;
      }
      case 'ReadHeartbeats': {
        const up = this.storageUp.get(node) === true;
        this.post(node, { type: 'storage-read', ok: up, startedAt: this.now, heartbeats: up ? [...this.files.values()] : [] });
        return;
      }
      case 'ProbeTestIp':
        this.post(node, { type: 'test-ip', reachable: this.testIpUp.get(node) === true });
        return;
      case 'SetOwnership': {
        const cur = this.metadata.get(a.vm);
        if (!cur || a.epoch > cur.epoch) this.metadata.set(a.vm, { node: a.node, epoch: a.epoch });
        return ok();
      }
      case 'Fence':
        this.crash(node);
        return;
      default:
        return ok();
    }
  }

  // ---- queries

  masterOf(id: NodeId): NodeId | null {
    return this.core(id).role().master;
  }

  actionsOf(node: NodeId, type?: CoreAction['type'], since = 0): CoreAction[] {
    return this.actions.filter((l) => l.node === node && l.at >= since && (type === undefined || l.action.type === type)).map((l) => l.action);
  }

  /** The VMs physically running, as node -> sorted list. */
  running(): Record<number, VmId[]> {
    const out: Record<number, VmId[]> = {};
    for (const [id, set] of this.vms) out[id] = [...set].sort();
    return out;
  }
}

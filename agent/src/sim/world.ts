// The simulated cluster: N nodes each running a node core, corosync (rings with total order and
// virtual-synchrony membership changes, votequorum per ring), shared storage, effects with
// latency, a watchdog per node, and faults. Discrete-event, single-threaded, seeded: a run is a
// pure function of its options.

import { quorumNeed } from '../core/election.ts';
import type { NodeCore, Sabotage, CoreOptions } from '../core/node-core.ts';
import type { CoreAction, CoreEvent, Heartbeat, NodeConfig, NodeId, Settings, VmId, VmSpec } from '../core/types.ts';
import { describeFault, type Fault } from './faults.ts';
import { EventHeap, type Scheduled } from './heap.ts';
import { livenessProblems } from './invariants.ts';
import type { Prng } from './prng.ts';

export type Range = readonly [number, number];

/** Latencies and corosync timing of the simulated environment. */
export interface SimTiming {
  /** corosync token timeout and consensus: a lost member is noticed after token + consensus. */
  tokenMs: number;
  consensusMs: number;
  /** New or returning members join a ring after this. */
  joinMs: number;
  /** Time to put a multicast into the total order, then to hand it to each member. */
  cpgMs: Range;
  deliverMs: Range;
  ipMs: Range;
  panelMs: Range;
  dbMs: Range;
  vmStartMs: Range;
  vmStopMs: Range;
  hbWriteMs: Range;
  /** Some writes succeed but too slowly to count. */
  slowWriteChance: number;
  hbReadMs: Range;
  storageErrorMs: Range;
  probeMs: Range;
  metaMs: Range;
  configMs: Range;
  vmStartFailChance: number;
  rebootMs: Range;
  /** Duration of a hung VM stop. */
  hangMs: number;
}

export const DEFAULT_TIMING: Readonly<SimTiming> = Object.freeze({
  tokenMs: 1000,
  consensusMs: 1200,
  joinMs: 300,
  cpgMs: [1, 3] as Range,
  deliverMs: [0, 2] as Range,
  ipMs: [20, 200] as Range,
  panelMs: [50, 400] as Range,
  dbMs: [20, 200] as Range,
  vmStartMs: [100, 800] as Range,
  vmStopMs: [100, 800] as Range,
  hbWriteMs: [2, 40] as Range,
  slowWriteChance: 0.02,
  hbReadMs: [2, 40] as Range,
  storageErrorMs: [50, 800] as Range,
  probeMs: [1, 30] as Range,
  metaMs: [5, 60] as Range,
  configMs: [50, 500] as Range,
  vmStartFailChance: 0.03,
  rebootMs: [1500, 4000] as Range,
  hangMs: 12_000,
});

export interface Violation {
  at: number;
  invariant: string;
  message: string;
}

type EvBody =
    | { kind: 'tick'; node: NodeId; gen: number }
    | { kind: 'arrive'; node: NodeId; gen: number; ev: CoreEvent; ring: number; pos: number; majority: boolean }
    | { kind: 'done'; node: NodeId; gen: number; key: string; action: CoreAction; ok: boolean; startedAt: number }
    | { kind: 'sequence'; ring: number; from: NodeId; gen: number; msg: unknown }
    | { kind: 'reform' }
    | { kind: 'fault'; fault: Fault }
    | { kind: 'watchdog'; node: NodeId; gen: number }
    | { kind: 'resume'; node: NodeId; gen: number; what: 'pause' | 'freeze' }
    | { kind: 'reboot'; node: NodeId; gen: number }
    | { kind: 'config-lands'; version: number; nodes: NodeConfig[] }
    | { kind: 'heal' }
    | { kind: 'settle'; deadline: number; stableMs: number }
    | { kind: 'end' };

type Ev = Scheduled & EvBody;

interface Ring {
  id: number;
  members: NodeId[];
  key: string;
  alive: boolean;
  majority: boolean;
  pos: number;
  /** Master seen by synced members after processing each position: they must agree. */
  masterAt: Map<number, NodeId | null>;
}

interface Queue {
  busy: boolean;
  items: CoreAction[];
}

interface Backlogged {
  ev: CoreEvent;
  ring: number;
  pos: number;
  majority: boolean;
}

export interface SimNode {
  id: NodeId;
  up: boolean;
  gen: number;
  incarnation: number;
  autoReboot: boolean;
  agentPaused: boolean;
  frozen: boolean;
  ctrlUp: boolean;
  pubUp: boolean;
  storageUp: boolean;
  group: number;
  core: NodeCore | null;
  backlog: Backlogged[];
  ringId: number | null;
  lastArrival: number;
  queues: Map<string, Queue>;
  /** Physical state: what the kernel / hypervisor really has. */
  phys: { ip: boolean; panel: boolean; vms: Map<VmId, 'starting' | 'running' | 'stopping'> };
  /** Mirrors of what the core asked for (from its actions). */
  wantIp: boolean;
  wantPanel: boolean;
  processedQuorate: boolean | null;
  lastOwnRenewSentAt: number | null;
  fencedAt: number | null;
  watchdogAt: number;
  wdScheduledAt: number;
  stopHang: boolean;
  lastInventoryAt: number;
  lastSequenced: number;
}

export interface WorldConfig {
  rng: Prng;
  nodeCount: number;
  nodes: NodeConfig[];
  vms: VmSpec[];
  owners: Map<VmId, { node: NodeId | null; epoch: number }>;
  settings: Settings;
  timing: SimTiming;
  makeCore: (id: NodeId, settings: Settings, options: CoreOptions) => NodeCore;
  sabotage: Sabotage | undefined;
  trace: boolean;
}

export class World {
  now = 0;
  events = 0;
  resets = 0;
  readonly violations: Violation[] = [];
  readonly trace: string[] = [];
  readonly nodes: SimNode[] = [];
  readonly rings = new Map<number, Ring>();
  /** Shared storage: heartbeat files and VM ownership metadata. */
  readonly files = new Map<NodeId, Heartbeat>();
  readonly metadata: Map<VmId, { node: NodeId | null; epoch: number }>;
  clusterConfig: { version: number; nodes: NodeConfig[] };
  desiredNodes: NodeConfig[];
  healed = false;
  private readonly heap = new EventHeap<Ev>();
  private seq = 0;
  private nextRingId = 1;
  private reformAt: number | null = null;
  private pending: Array<{ from: NodeId; gen: number; msg: unknown }> = [];
  private stopped = false;
  private readonly need: number;
  private readonly rng: Prng;
  private readonly s: Settings;
  private readonly t: SimTiming;
  private vmStartFailChance: number;
  private slowWriteChance: number;
  /** Per VM: which nodes have it active (starting/running/stopping). */
  private readonly active = new Map<VmId, Set<NodeId>>();

  constructor(readonly cfg: WorldConfig) {
    this.rng = cfg.rng;
    this.s = cfg.settings;
    this.t = cfg.timing;
    this.vmStartFailChance = cfg.timing.vmStartFailChance;
    this.slowWriteChance = cfg.timing.slowWriteChance;
    this.need = quorumNeed(cfg.nodeCount);
    this.metadata = new Map([...cfg.owners].map(([vm, o]) => [vm, { ...o }]));
    this.clusterConfig = { version: 1, nodes: cfg.nodes.map((n) => ({ ...n })) };
    this.desiredNodes = cfg.nodes.map((n) => ({ ...n }));
    for (let id = 1; id <= cfg.nodeCount; id++) {
      this.nodes.push({
        id,
        up: false,
        gen: 0,
        incarnation: 0,
        autoReboot: false,
        agentPaused: false,
        frozen: false,
        ctrlUp: true,
        pubUp: true,
        storageUp: true,
        group: 0,
        core: null,
        backlog: [],
        ringId: null,
        lastArrival: 0,
        queues: new Map(),
        phys: { ip: false, panel: false, vms: new Map() },
        wantIp: false,
        wantPanel: false,
        processedQuorate: null,
        lastOwnRenewSentAt: null,
        fencedAt: null,
        watchdogAt: Infinity,
        wdScheduledAt: Infinity,
        stopHang: false,
        lastInventoryAt: 0,
        lastSequenced: 0,
      });
    }
  }

  node(id: NodeId): SimNode {
    return this.nodes[id - 1]!;
  }

  // -------------------------------------------------------------------------
  // Scheduling and the main loop

  private schedule(at: number, ev: EvBody, prio = 1): void {
    // `ev` is always a fresh literal: stamp it in place instead of copying.
    const e = ev as Ev;
    e.at = at;
    e.prio = prio;
    e.seq = this.seq++;
    this.heap.push(e);
  }

  scheduleFault(at: number, fault: Fault): void {
    this.schedule(at, { kind: 'fault', fault });
  }

  bootAt(at: number, id: NodeId): void {
    this.schedule(at, { kind: 'reboot', node: id, gen: 0 });
  }

  healAt(at: number): void {
    this.schedule(at, { kind: 'heal' });
  }

  endAt(at: number): void {
    this.schedule(at, { kind: 'end' });
  }

  /**
   * Liveness: from `from` on, check every 500 ms; stop once the cluster has been converged for
   * `stableMs`, or report a violation if it is not converged by `deadline`.
   */
  settle(from: number, deadline: number, stableMs: number): void {
    this.schedule(from, { kind: 'settle', deadline, stableMs });
  }

  convergedSince: number | null = null;

  private onSettle(deadline: number, stableMs: number): void {
    const problems = livenessProblems(this, this.now < deadline);
    if (problems.length === 0) {
      if (this.convergedSince === null) this.convergedSince = this.now;
      if (this.now - this.convergedSince >= stableMs) {
        this.log(`converged since ${this.convergedSince}`);
        this.stopped = true;
        return;
      }
    } else {
      this.convergedSince = null;
      if (this.now >= deadline) {
        this.violate('liveness', problems.join('; '));
        return;
      }
    }
    this.schedule(this.now + 500, { kind: 'settle', deadline, stableMs });
  }

  run(): void {
    for (;;) {
      if (this.stopped) return;
      const e = this.heap.pop();
      if (e === undefined) return;
      this.now = e.at;
      this.dispatch(e);
    }
  }

  private dispatch(e: Ev): void {
    switch (e.kind) {
      case 'tick':
        return this.onTick(e.node, e.gen);
      case 'arrive': {
        const n = this.node(e.node);
        if (n.gen !== e.gen || !n.up) return;
        if (n.agentPaused || n.frozen) n.backlog.push({ ev: e.ev, ring: e.ring, pos: e.pos, majority: e.majority });
        else this.runStep(n, e.ev, e.ring, e.pos, e.majority);
        return;
      }
      case 'done':
        return this.onDone(e.node, e.gen, e.key, e.action, e.ok, e.startedAt);
      case 'sequence':
        return this.onSequence(e.ring, e.from, e.gen, e.msg);
      case 'reform':
        if (this.reformAt === e.at) {
          this.reformAt = null;
          this.reform();
        }
        return;
      case 'fault':
        if (!this.healed) this.applyFault(e.fault);
        return;
      case 'watchdog':
        return this.onWatchdog(e.node, e.gen);
      case 'resume':
        return this.onResume(e.node, e.gen, e.what);
      case 'reboot': {
        const n = this.node(e.node);
        if (n.gen === e.gen && !n.up) this.boot(n);
        return;
      }
      case 'config-lands':
        return this.onConfigLands(e.version, e.nodes);
      case 'heal':
        return this.heal();
      case 'settle':
        return this.onSettle(e.deadline, e.stableMs);
      case 'end':
        this.stopped = true;
        return;
    }
  }

  violate(invariant: string, message: string): void {
    if (this.violations.length === 0) {
      this.violations.push({ at: this.now, invariant, message });
      this.log(`VIOLATION ${invariant}: ${message}`);
    }
    this.stopped = true;
  }

  log(line: string): void {
    if (this.cfg.trace) this.trace.push(`${String(this.now).padStart(7)} ${line}`);
  }

  private rand(r: Range): number {
    return this.rng.int(r[0], r[1]);
  }

  // -------------------------------------------------------------------------
  // Node life cycle

  private boot(n: SimNode): void {
    if (n.up) return;
    n.up = true;
    n.gen += 1;
    n.incarnation += 1;
    n.autoReboot = false;
    n.agentPaused = false;
    n.frozen = false;
    n.lastArrival = this.now;
    n.core = this.cfg.makeCore(n.id, this.s, { incarnation: n.incarnation, sabotage: this.cfg.sabotage });
    this.log(`n${n.id} boots (incarnation ${n.incarnation})`);
    const cfg = this.clusterConfig;
    this.arrive(n, { type: 'config', now: 0, version: cfg.version, nodes: cfg.nodes.map((x) => ({ ...x })) }, -1, 0, false);
    this.arrive(n, { type: 'local-vms', now: 0, running: [] }, -1, 0, false);
    this.arrive(n, this.inventoryEvent(), -1, 0, false);
    this.schedule(this.now + this.rng.int(1, this.s.tickMs), { kind: 'tick', node: n.id, gen: n.gen });
    this.topologyChanged();
  }

  private inventoryEvent(): CoreEvent {
    return {
      type: 'vm-inventory',
      now: 0,
      vms: this.cfg.vms.map((v) => ({ ...v })),
      owners: [...this.metadata].map(([vm, o]) => ({ vm, node: o.node, epoch: o.epoch })),
    };
  }

  /** Power loss / watchdog / fence: everything on the node is gone at once. */
  reset(n: SimNode, why: string, autoReboot: boolean): void {
    if (!n.up) return;
    this.log(`n${n.id} RESET: ${why}`);
    this.resets += 1;
    for (const vm of n.phys.vms.keys()) this.active.get(vm)?.delete(n.id);
    n.up = false;
    n.gen += 1;
    n.core = null;
    n.phys = { ip: false, panel: false, vms: new Map() };
    n.queues.clear();
    n.backlog = [];
    n.wantIp = false;
    n.wantPanel = false;
    n.processedQuorate = null;
    n.lastOwnRenewSentAt = null;
    n.fencedAt = null;
    n.watchdogAt = Infinity;
    n.wdScheduledAt = Infinity;
    n.agentPaused = false;
    n.frozen = false;
    n.stopHang = false;
    n.ringId = null;
    n.autoReboot = autoReboot;
    this.topologyChanged();
    if (autoReboot) this.schedule(this.now + this.rand(this.t.rebootMs), { kind: 'reboot', node: n.id, gen: n.gen });
  }

  private onTick(id: NodeId, gen: number): void {
    const n = this.node(id);
    if (n.gen !== gen || !n.up) return;
    this.schedule(this.now + this.s.tickMs, { kind: 'tick', node: id, gen });
    // Invariant 4b: a node that must self-fence has no VMs after fenceTimeoutMs (+ a tick).
    if (n.fencedAt !== null && n.phys.vms.size > 0 && this.now > n.fencedAt + this.s.fenceTimeoutMs + this.s.tickMs) {
      this.violate('self-fence', `n${id} still has VMs [${[...n.phys.vms.keys()].join(', ')}] ${this.now - n.fencedAt} ms after it had to self-fence`);
      return;
    }
    if (!n.agentPaused && !n.frozen) this.runStep(n, { type: 'tick', now: 0 }, -1, 0, false);
  }

  private onResume(id: NodeId, gen: number, what: 'pause' | 'freeze'): void {
    const n = this.node(id);
    if (n.gen !== gen || !n.up) return;
    if (what === 'pause') n.agentPaused = false;
    else {
      n.frozen = false;
      this.topologyChanged();
    }
    this.log(`n${id} resumes (${what}), backlog ${n.backlog.length}`);
    this.drain(n);
  }

  /** SIGCONT: the agent's timer fires first, then the queued events in order. */
  private drain(n: SimNode): void {
    if (n.agentPaused || n.frozen) return;
    const gen = n.gen;
    this.runStep(n, { type: 'tick', now: 0 }, -1, 0, false);
    while (n.backlog.length > 0 && n.gen === gen && !n.agentPaused && !n.frozen && !this.stopped) {
      const b = n.backlog.shift()!;
      this.runStep(n, b.ev, b.ring, b.pos, b.majority);
    }
  }

  private onWatchdog(id: NodeId, gen: number): void {
    const n = this.node(id);
    if (n.gen !== gen || !n.up || this.now !== n.wdScheduledAt) return;
    n.wdScheduledAt = Infinity;
    if (this.now >= n.watchdogAt) this.reset(n, `watchdog (deadline ${n.watchdogAt})`, true);
    else this.armWatchdog(n);
  }

  private armWatchdog(n: SimNode): void {
    if (n.watchdogAt < n.wdScheduledAt) {
      n.wdScheduledAt = n.watchdogAt;
      this.schedule(n.watchdogAt, { kind: 'watchdog', node: n.id, gen: n.gen }, 0);
    }
  }

  // -------------------------------------------------------------------------
  // Running the core

  private arrive(n: SimNode, ev: CoreEvent, ring: number, pos: number, majority: boolean, delay = 0): void {
    let at = this.now + delay;
    if (at < n.lastArrival) at = n.lastArrival;
    n.lastArrival = at;
    this.schedule(at, { kind: 'arrive', node: n.id, gen: n.gen, ev, ring, pos, majority });
  }

  private runStep(n: SimNode, ev: CoreEvent, ringId: number, pos: number, majority: boolean): void {
    const core = n.core;
    if (core === null || this.stopped) return;
    (ev as { now: number }).now = this.now;
    if (ev.type === 'quorum') n.processedQuorate = ev.quorate;
    if (ev.type === 'cpg-message' && ev.from === n.id && majority) {
      const m = ev.msg as { kind?: string; sentAt?: number };
      if (m.kind === 'renew' && typeof m.sentAt === 'number' && (n.lastOwnRenewSentAt === null || m.sentAt > n.lastOwnRenewSentAt)) n.lastOwnRenewSentAt = m.sentAt;
    }
    const res = core.step(ev);
    this.events += 1;
    if (this.cfg.trace) this.traceStep(n, ev, res.actions, res.decisions);
    const gen = n.gen;
    for (const a of res.actions) {
      this.execute(n, a);
      if (n.gen !== gen || this.stopped) return;
    }
    this.afterStep(n, ringId, pos);
    if (n.gen !== gen || this.stopped) return;
    n.watchdogAt = res.watchdogDeadline;
    if (n.watchdogAt <= this.now) this.reset(n, `watchdog deadline ${n.watchdogAt} already passed`, true);
    else this.armWatchdog(n);
  }

  /** Invariants that concern what one node just decided. */
  private afterStep(n: SimNode, ringId: number, pos: number): void {
    const role = n.core!.role();
    const fenced = role.selfStatus === 'network_isolation' || role.selfStatus === 'storage_isolation';
    if (!fenced) n.fencedAt = null;
    else if (n.fencedAt === null) n.fencedAt = this.now;

    // Invariant 2: after processing quorum loss, no IP or panel is wanted.
    if (n.processedQuorate === false && (n.wantIp || n.wantPanel)) {
      this.violate('minority-holds', `n${n.id} still wants the cluster IP/panel after processing quorum loss`);
      return;
    }
    // Invariant 2: after lease expiry (by the simulator's own, more lenient, count), no IP/panel.
    if ((n.wantIp || n.wantPanel) && (n.lastOwnRenewSentAt === null || this.now - n.lastOwnRenewSentAt > this.s.leaseMs)) {
      const age = n.lastOwnRenewSentAt === null ? 'never renewed' : `last renewal sent ${this.now - n.lastOwnRenewSentAt} ms ago`;
      this.violate('lease', `n${n.id} wants the cluster IP/panel with an expired lease (${age})`);
      return;
    }
    // Invariant 1b: at most one acting master per quorate ring.
    if (n.wantIp && n.ringId !== null) {
      const ring = this.rings.get(n.ringId);
      if (ring && ring.alive && ring.majority) {
        for (const m of ring.members) {
          if (m !== n.id && this.node(m).wantIp) {
            this.violate('one-master', `n${n.id} and n${m} both act as master in ring ${ring.id} [${ring.members.join(',')}]`);
            return;
          }
        }
      }
    }
    // Agreement: members that processed the same ring position agree on the master.
    if (ringId >= 0 && role.synced) {
      const ring = this.rings.get(ringId);
      if (ring) {
        const seen = ring.masterAt.get(pos);
        if (seen === undefined) ring.masterAt.set(pos, role.master);
        else if (seen !== role.master) this.violate('agreement', `ring ${ringId} position ${pos}: n${n.id} says master n${role.master}, another member said n${seen}`);
      }
    }
  }

  // -------------------------------------------------------------------------
  // Effects

  private execute(n: SimNode, a: CoreAction): void {
    switch (a.type) {
      case 'SendCpg':
        return this.cpgSend(n, a.msg);
      case 'Fence':
        return this.reset(n, `fence: ${a.reason}`, true);
      case 'SetNodeStatus':
        return;
      case 'DistributeConfig':
        this.schedule(this.now + this.rand(this.t.configMs), { kind: 'config-lands', version: a.version, nodes: a.nodes.map((x) => ({ ...x })) });
        return;
      case 'AssignClusterIp':
        n.wantIp = true;
        return this.enqueue(n, 'ip', a);
      case 'ReleaseClusterIp':
        n.wantIp = false;
        return this.enqueue(n, 'ip', a);
      case 'StartPanel':
        n.wantPanel = true;
        return this.enqueue(n, 'panel', a);
      case 'StopPanel':
        n.wantPanel = false;
        return this.enqueue(n, 'panel', a);
      case 'PromoteDatabase':
      case 'FollowDatabase':
        return this.enqueue(n, 'db', a);
      case 'StartVm':
      case 'StopVm':
        return this.enqueue(n, `vm:${a.vm}`, a);
      case 'WriteHeartbeat':
        return this.enqueue(n, 'hbw', a);
      case 'ReadHeartbeats':
        return this.enqueue(n, 'hbr', a);
      case 'ProbeTestIp':
        return this.enqueue(n, 'probe', a);
      case 'SetOwnership':
        return this.enqueue(n, 'meta', a);
    }
  }

  /** Actions on one resource run one after another (as the effect layer must do). */
  private enqueue(n: SimNode, key: string, a: CoreAction): void {
    let q = n.queues.get(key);
    if (q === undefined) n.queues.set(key, (q = { busy: false, items: [] }));
    if (q.busy) q.items.push(a);
    else this.begin(n, key, q, a);
  }

  private begin(n: SimNode, key: string, q: Queue, a: CoreAction): void {
    q.busy = true;
    const t = this.t;
    let lat = 1;
    let ok = true;
    switch (a.type) {
      case 'AssignClusterIp':
      case 'ReleaseClusterIp':
        lat = this.rand(t.ipMs);
        break;
      case 'StartPanel':
      case 'StopPanel':
        lat = this.rand(t.panelMs);
        break;
      case 'PromoteDatabase':
      case 'FollowDatabase':
        lat = this.rand(t.dbMs);
        break;
      case 'StartVm': {
        // Invariant 3/4: nobody else may have this VM active when a start begins.
        const holders = this.active.get(a.vm);
        if (holders) {
          for (const other of holders) {
            if (other !== n.id) {
              this.violate('vm-exclusive', `n${n.id} starts ${a.vm} (epoch ${a.epoch}) while n${other} still has it ${this.node(other).phys.vms.get(a.vm)}`);
              return;
            }
          }
        }
        const meta = this.metadata.get(a.vm);
        if (meta && meta.epoch > a.epoch) {
          this.violate('vm-epoch', `n${n.id} starts ${a.vm} with epoch ${a.epoch} but metadata already has epoch ${meta.epoch} (n${meta.node})`);
          return;
        }
        if (!n.phys.vms.has(a.vm)) this.setVm(n, a.vm, 'starting');
        lat = this.rand(t.vmStartMs);
        ok = !this.rng.chance(this.vmStartFailChance);
        break;
      }
      case 'StopVm':
        if (n.phys.vms.has(a.vm)) this.setVm(n, a.vm, 'stopping');
        lat = n.stopHang ? t.hangMs : this.rand(t.vmStopMs);
        n.stopHang = false;
        break;
      case 'WriteHeartbeat':
        if (!n.storageUp) {
          lat = this.rand(t.storageErrorMs);
          ok = false;
        } else lat = this.rng.chance(this.slowWriteChance) ? this.s.storageWriteMaxMs + this.rng.int(1, 2000) : this.rand(t.hbWriteMs);
        break;
      case 'ReadHeartbeats':
        lat = n.storageUp ? this.rand(t.hbReadMs) : this.rand(t.storageErrorMs);
        break;
      case 'ProbeTestIp':
        lat = this.rand(t.probeMs);
        break;
      case 'SetOwnership':
        lat = this.rand(t.metaMs);
        break;
      default:
        break;
    }
    this.schedule(this.now + lat, { kind: 'done', node: n.id, gen: n.gen, key, action: a, ok, startedAt: this.now });
  }

  private setVm(n: SimNode, vm: VmId, state: 'starting' | 'running' | 'stopping' | null): void {
    if (state === null) {
      n.phys.vms.delete(vm);
      this.active.get(vm)?.delete(n.id);
      return;
    }
    n.phys.vms.set(vm, state);
    let s = this.active.get(vm);
    if (s === undefined) this.active.set(vm, (s = new Set()));
    s.add(n.id);
  }

  private onDone(id: NodeId, gen: number, key: string, a: CoreAction, okIn: boolean, startedAt: number): void {
    const n = this.node(id);
    if (n.gen !== gen || !n.up) return; // the node was reset: the effect never completed
    let ok = okIn;
    let result: CoreEvent | null = null;
    switch (a.type) {
      case 'AssignClusterIp':
        for (const m of this.nodes) {
          if (m !== n && m.phys.ip) return this.violate('one-ip', `n${n.id} got the cluster IP while n${m.id} still holds it`);
        }
        n.phys.ip = true;
        break;
      case 'ReleaseClusterIp':
        n.phys.ip = false;
        break;
      case 'StartPanel':
        for (const m of this.nodes) {
          if (m !== n && m.phys.panel) return this.violate('one-panel', `n${n.id} started the panel while n${m.id} still runs it`);
        }
        n.phys.panel = true;
        break;
      case 'StopPanel':
        n.phys.panel = false;
        break;
      case 'StartVm':
        if (ok) this.setVm(n, a.vm, 'running');
        else this.setVm(n, a.vm, null);
        break;
      case 'StopVm':
        this.setVm(n, a.vm, null);
        break;
      case 'WriteHeartbeat':
        ok = ok && n.storageUp;
        if (ok) this.files.set(n.id, a.heartbeat);
        result = { type: 'storage-write', now: 0, ok, seq: a.heartbeat.seq, startedAt, ...(ok ? {} : { error: 'storage unreachable' }) };
        break;
      case 'ReadHeartbeats':
        ok = n.storageUp;
        result = { type: 'storage-read', now: 0, ok, startedAt, heartbeats: ok ? [...this.files.values()] : [], ...(ok ? {} : { error: 'storage unreachable' }) };
        // The effect layer also re-reads the VM metadata now and then (a file watch in production).
        if (ok && this.now - n.lastInventoryAt >= 2000) {
          n.lastInventoryAt = this.now;
          this.arrive(n, this.inventoryEvent(), -1, 0, false);
        }
        break;
      case 'ProbeTestIp':
        result = { type: 'test-ip', now: 0, reachable: n.pubUp };
        break;
      case 'SetOwnership': {
        const cur = this.metadata.get(a.vm);
        if (cur === undefined || a.epoch > cur.epoch) this.metadata.set(a.vm, { node: a.node, epoch: a.epoch });
        break;
      }
      default:
        break;
    }
    this.arrive(n, result ?? { type: 'action-result', now: 0, action: a, ok }, -1, 0, false);
    const q = n.queues.get(key);
    if (q === undefined) return;
    q.busy = false;
    const next = q.items.shift();
    if (next !== undefined) this.begin(n, key, q, next);
  }

  private onConfigLands(version: number, nodes: NodeConfig[]): void {
    if (version <= this.clusterConfig.version) return;
    this.clusterConfig = { version, nodes };
    this.log(`config version ${version} lands: ${nodes.map((x) => `n${x.nodeid}:${x.prio}${x.maintenance ? 'M' : ''}`).join(' ')}`);
    for (const n of this.nodes) {
      if (n.up) this.arrive(n, { type: 'config', now: 0, version, nodes: nodes.map((x) => ({ ...x })) }, -1, 0, false, this.rng.int(0, 50));
    }
  }

  // -------------------------------------------------------------------------
  // Corosync model: rings, total order, membership

  private cpgSend(n: SimNode, msg: unknown): void {
    if (n.ringId === null) return; // not joined to any ring yet: cpg_mcast would fail
    // The effect layer serialises the message; receivers get their own copy.
    const wire: unknown = JSON.parse(JSON.stringify(msg));
    // Total order keeps each sender's messages in sending order (FIFO per sender).
    const at = Math.max(this.now + this.rand(this.t.cpgMs), n.lastSequenced);
    n.lastSequenced = at;
    this.schedule(at, { kind: 'sequence', ring: n.ringId, from: n.id, gen: n.gen, msg: wire });
  }

  private onSequence(ringId: number, from: NodeId, gen: number, msg: unknown): void {
    const sender = this.node(from);
    if (sender.gen !== gen || !sender.up) return; // the sender died before this left its node
    const ring = this.rings.get(ringId);
    if (ring !== undefined && ring.alive && sender.ringId === ringId) this.deliver(ring, from, msg);
    else this.pending.push({ from, gen, msg }); // ordered in the sender's next ring
  }

  private deliver(ring: Ring, from: NodeId, msg: unknown): void {
    ring.pos += 1;
    for (const m of ring.members) {
      const n = this.node(m);
      this.arrive(n, { type: 'cpg-message', now: 0, from, msg }, ring.id, ring.pos, ring.majority, this.rand(this.t.deliverMs));
    }
  }

  /** Nodes whose corosync runs, grouped by who can talk to whom. */
  private components(): NodeId[][] {
    const groups = new Map<string, NodeId[]>();
    for (const n of this.nodes) {
      if (!n.up || n.frozen) continue;
      const key = n.ctrlUp ? `g${n.group}` : `solo${n.id}`;
      let g = groups.get(key);
      if (g === undefined) groups.set(key, (g = []));
      g.push(n.id);
    }
    return [...groups.values()];
  }

  /** A ring is the same only if the same incarnations are in it (a rebooted node forms a new ring). */
  private ringKey(comp: NodeId[]): string {
    return comp.map((id) => `${id}.${this.node(id).gen}`).join(',');
  }

  topologyChanged(): void {
    const comps = this.components();
    const keys = new Set(comps.map((c) => this.ringKey(c)));
    let loss = false;
    for (const ring of this.rings.values()) {
      if (ring.alive && !keys.has(ring.key)) {
        // Someone left (the token is lost) or someone must join: either way the ring stops.
        if (!comps.some((c) => ring.members.every((m) => c.includes(m)))) loss = true;
        ring.alive = false;
      }
    }
    const ringKeys = new Set([...this.rings.values()].map((r) => r.key));
    const changed = loss || comps.some((c) => !ringKeys.has(this.ringKey(c))) || [...this.rings.values()].some((r) => !r.alive);
    if (!changed) return;
    const at = this.now + (loss ? this.t.tokenMs + this.t.consensusMs : this.t.joinMs);
    if (this.reformAt === null || at > this.reformAt) {
      this.reformAt = at;
      this.schedule(at, { kind: 'reform' });
    }
  }

  private reform(): void {
    const comps = this.components();
    const keep = new Set<number>();
    for (const comp of comps) {
      const key = this.ringKey(comp);
      let ring = [...this.rings.values()].find((r) => r.key === key);
      if (ring !== undefined) {
        ring.alive = true;
        keep.add(ring.id);
        continue;
      }
      ring = { id: this.nextRingId++, members: comp, key, alive: true, majority: comp.length >= this.need, pos: 0, masterAt: new Map() };
      this.rings.set(ring.id, ring);
      keep.add(ring.id);
      this.log(`ring ${ring.id} forms [${comp.map((m) => `n${m}`).join(',')}]${ring.majority ? ' (quorate)' : ''}`);
      for (const m of comp) {
        const n = this.node(m);
        n.ringId = ring.id;
        const membership: CoreEvent = { type: 'cpg-membership', now: 0, members: [...comp] };
        const quorum: CoreEvent = { type: 'quorum', now: 0, quorate: ring.majority, members: [...comp] };
        // votequorum and CPG are separate channels: either may arrive first.
        const first = this.rng.chance(0.5);
        this.arrive(n, first ? quorum : membership, first ? -1 : ring.id, 0, ring.majority, this.rand(this.t.deliverMs));
        this.arrive(n, first ? membership : quorum, first ? ring.id : -1, 0, ring.majority, this.rand(this.t.deliverMs));
      }
    }
    for (const [id] of this.rings) if (!keep.has(id)) this.rings.delete(id);
    for (const n of this.nodes) if (n.ringId !== null && !keep.has(n.ringId)) n.ringId = null;
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) {
      const sender = this.node(p.from);
      const ring = sender.ringId === null ? undefined : this.rings.get(sender.ringId);
      if (sender.gen === p.gen && sender.up && ring !== undefined) this.deliver(ring, p.from, p.msg);
    }
    // Components may have changed again meanwhile (a reform is already scheduled then).
    this.topologyChanged();
  }

  // -------------------------------------------------------------------------
  // Faults

  applyFault(f: Fault): void {
    this.log(`FAULT ${describeFault(f)}`);
    switch (f.kind) {
      case 'partition':
        f.groups.forEach((g, i) => {
          const n = this.nodes[i];
          if (n) n.group = g;
        });
        return this.topologyChanged();
      case 'heal-partition':
        for (const n of this.nodes) n.group = 0;
        return this.topologyChanged();
      case 'ctrl':
        this.node(f.node).ctrlUp = f.up;
        return this.topologyChanged();
      case 'pub':
        this.node(f.node).pubUp = f.up;
        return;
      case 'storage':
        this.node(f.node).storageUp = f.up;
        return;
      case 'crash':
        return this.reset(this.node(f.node), 'power loss', false);
      case 'boot': {
        const n = this.node(f.node);
        if (!n.up && !n.autoReboot) this.boot(n);
        return;
      }
      case 'pause': {
        const n = this.node(f.node);
        if (!n.up || n.agentPaused) return;
        n.agentPaused = true;
        this.schedule(this.now + f.ms, { kind: 'resume', node: n.id, gen: n.gen, what: 'pause' });
        return;
      }
      case 'freeze': {
        const n = this.node(f.node);
        if (!n.up || n.frozen) return;
        n.frozen = true;
        this.topologyChanged();
        this.schedule(this.now + f.ms, { kind: 'resume', node: n.id, gen: n.gen, what: 'freeze' });
        return;
      }
      case 'prio':
      case 'maintenance': {
        this.desiredNodes = this.desiredNodes.map((x) =>
          x.nodeid !== f.node ? x : f.kind === 'prio' ? { ...x, prio: f.prio } : { ...x, maintenance: f.on },
        );
        for (const n of this.nodes) {
          if (n.up) this.arrive(n, { type: 'desired-config', now: 0, nodes: this.desiredNodes.map((x) => ({ ...x })) }, -1, 0, false, this.rng.int(0, 20));
        }
        return;
      }
      case 'elect': {
        const n = this.node(f.node);
        if (n.up) this.arrive(n, { type: 'admin', now: 0, request: { kind: 'elect' } }, -1, 0, false);
        return;
      }
      case 'stop-hang':
        this.node(f.node).stopHang = true;
        return;
    }
  }

  /** End of the fault phase: repair everything, then let the cluster settle. */
  heal(): void {
    this.healed = true;
    this.vmStartFailChance = 0;
    this.slowWriteChance = 0;
    this.log('HEAL: all links, storage and nodes restored');
    for (const n of this.nodes) {
      n.group = 0;
      n.ctrlUp = true;
      n.pubUp = true;
      n.storageUp = true;
      n.stopHang = false;
    }
    for (const n of this.nodes) {
      if (!n.up) {
        if (!n.autoReboot) this.boot(n);
        continue;
      }
      if (n.frozen) {
        n.frozen = false;
        this.log(`n${n.id} thawed by heal`);
      }
      if (n.agentPaused) n.agentPaused = false;
      this.drain(n);
    }
    this.topologyChanged();
  }

  // -------------------------------------------------------------------------
  // Trace

  private traceStep(n: SimNode, ev: CoreEvent, actions: CoreAction[], decisions: Array<{ reason: string; kind: string }>): void {
    const quiet = ev.type === 'tick' || ev.type === 'storage-write' || ev.type === 'storage-read' || ev.type === 'test-ip';
    const interesting = actions.filter((a) => !ROUTINE.has(a.type) && !(a.type === 'SendCpg' && (a.msg.kind === 'renew')));
    if (quiet && interesting.length === 0 && decisions.length === 0) return;
    this.log(`n${n.id} <- ${summarizeEvent(ev)}`);
    for (const d of decisions) this.log(`n${n.id}    ${d.kind}: ${d.reason}`);
    for (const a of interesting) this.log(`n${n.id}    -> ${summarizeAction(a)}`);
  }
}

const ROUTINE: ReadonlySet<string> = new Set(['WriteHeartbeat', 'ReadHeartbeats', 'ProbeTestIp']);

function summarizeEvent(ev: CoreEvent): string {
  switch (ev.type) {
    case 'cpg-message': {
      const m = ev.msg as { kind?: string; term?: number };
      return `cpg ${m.kind ?? '?'} from n${ev.from}${m.term !== undefined ? ` t${m.term}` : ''}`;
    }
    case 'cpg-membership':
      return `cpg-membership [${ev.members.join(',')}]`;
    case 'quorum':
      return `quorum ${ev.quorate ? 'yes' : 'NO'} [${ev.members.join(',')}]`;
    case 'action-result':
      return `result ${ev.action.type}${'vm' in ev.action ? ` ${ev.action.vm}` : ''} ${ev.ok ? 'ok' : 'FAILED'}`;
    case 'storage-write':
      return `storage-write ${ev.ok ? 'ok' : 'FAILED'}`;
    case 'storage-read':
      return `storage-read ${ev.ok ? 'ok' : 'FAILED'}`;
    default:
      return ev.type;
  }
}

function summarizeAction(a: CoreAction): string {
  switch (a.type) {
    case 'SendCpg':
      return `SendCpg ${a.msg.kind}${a.msg.kind === 'assign' ? ` ${a.msg.vm} n${a.msg.from}->n${a.msg.to} e${a.msg.epoch}` : a.msg.kind === 'start' ? ` ${a.msg.vm}` : ''}`;
    case 'StartVm':
      return `StartVm ${a.vm} e${a.epoch}: ${a.reason}`;
    case 'StopVm':
      return `StopVm ${a.vm}: ${a.reason}`;
    case 'SetOwnership':
      return `SetOwnership ${a.vm} -> n${a.node} e${a.epoch}`;
    case 'SetNodeStatus':
      return `SetNodeStatus n${a.nodeid} ${a.status}`;
    default:
      return `${a.type}: ${a.reason}`;
  }
}

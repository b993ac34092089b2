// The simulated cluster: N nodes each running a node core, the corosync model (corosync.ts),
// the effect layer (effects.ts), a watchdog per node, and faults (faults.ts). Discrete-event,
// single-threaded, seeded: a run is a pure function of its options.
//
// This file holds the event loop, node and agent life cycles, and the invariants that concern
// what a node decided (the physical ones are checked in effects.ts).

import { quorumNeed } from '../core/election.ts';
import type { CoreEvent, Decision, Heartbeat, NodeConfig, NodeId, Settings, VmId } from '../core/types.ts';
import { Corosync } from './corosync.ts';
import { Databases } from './database.ts';
import { Effects } from './effects.ts';
import { applyFault, type Fault } from './faults.ts';
import { EventHeap } from './heap.ts';
import { livenessProblems } from './invariants.ts';
import { DB_SABOTAGES, newSimNode, type DbSabotage, type Ev, type EvBody, type Range, type SimNode, type SimTiming, type Violation, type WorldConfig } from './model.ts';
import type { Prng } from './prng.ts';
import { traceStep } from './trace.ts';

export { DEFAULT_TIMING, type SimTiming, type Violation } from './model.ts';

export class World {
  now = 0;
  events = 0;
  resets = 0;
  stopped = false;
  readonly violations: Violation[] = [];
  /** How often interesting things happened (to check that schedules exercise them). */
  readonly coverage: Record<string, number> = {};
  readonly trace: string[] = [];
  readonly nodes: SimNode[] = [];
  /** Shared storage: heartbeat files and VM ownership metadata. */
  readonly files = new Map<NodeId, Heartbeat>();
  readonly metadata: Map<VmId, { node: NodeId | null; epoch: number }>;
  /** corosync.conf as distributed, and the desired node list in the DB. */
  clusterConfig: { version: number; nodes: NodeConfig[] };
  desiredNodes: NodeConfig[];
  healed = false;
  /** The first master any node decided (what a cluster that boots together elects). */
  firstMaster: NodeId | null = null;
  readonly rng: Prng;
  readonly s: Settings;
  readonly t: SimTiming;
  readonly corosync: Corosync;
  readonly effects: Effects;
  readonly db: Databases;
  private readonly heap = new EventHeap<Ev>();
  private seq = 0;
  private convergedSince: number | null = null;

  constructor(readonly cfg: WorldConfig) {
    this.rng = cfg.rng;
    this.s = cfg.settings;
    this.t = cfg.timing;
    this.metadata = new Map([...cfg.owners].map(([vm, o]) => [vm, { ...o }]));
    this.clusterConfig = { version: 1, nodes: cfg.nodes.map((n) => ({ ...n })) };
    this.desiredNodes = cfg.nodes.map((n) => ({ ...n }));
    for (let id = 1; id <= cfg.nodeCount; id++) this.nodes.push(newSimNode(id));
    this.corosync = new Corosync(this, quorumNeed(cfg.nodeCount));
    this.effects = new Effects(this);
    this.db = new Databases(this);
  }

  node(id: NodeId): SimNode {
    return this.nodes[id - 1]!;
  }

  /** The settings a node's agent runs with (they may differ per node: see WorldConfig.nodeSettings). */
  settingsOf(id: NodeId): Settings {
    return this.cfg.nodeSettings?.get(id) ?? this.s;
  }

  /**
   * The lease timing on one node changes (its corosync.conf was reloaded with another token):
   * its running agent gets it in a config event; a restarted agent starts with it.
   */
  changeLease(id: NodeId, leaseMs: number): void {
    const s = { ...this.settingsOf(id), leaseMs };
    (this.cfg.nodeSettings ??= new Map()).set(id, s);
    const n = this.node(id);
    this.log(`n${id} lease timing now ${leaseMs} ms (corosync.conf reload)`);
    this.count('lease changed');
    if (!n.up || !n.agentUp) return;
    const cfg = this.clusterConfig;
    this.arrive(n, { type: 'config', now: 0, version: cfg.version, nodes: cfg.nodes.map((x) => ({ ...x })), settings: { leaseMs } }, -1, 0, false);
  }

  // -------------------------------------------------------------------------
  // Scheduling and the main loop

  schedule(at: number, ev: EvBody, prio = 1): void {
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

  run(): void {
    while (!this.stopped) {
      const e = this.heap.pop();
      if (e === undefined) return;
      this.now = e.at;
      this.dispatch(e);
    }
  }

  private dispatch(e: Ev): void {
    switch (e.kind) {
      case 'tick':
        return this.onTick(e.node, e.agentGen);
      case 'arrive': {
        const n = this.node(e.node);
        if (n.agentGen !== e.agentGen || !n.agentUp) return;
        if (n.agentPaused || n.frozen) n.backlog.push({ ev: e.ev, ring: e.ring, pos: e.pos, majority: e.majority });
        else this.runStep(n, e.ev, e.ring, e.pos, e.majority);
        return;
      }
      case 'done':
        return this.effects.onDone(e.node, e.gen, e.agentGen, e.key, e.action, e.ok, e.startedAt);
      case 'sequence':
        return this.corosync.onSequence(e.from, e.agentGen, e.msg);
      case 'reform':
        return this.corosync.onReform(e.at);
      case 'agent-start': {
        const n = this.node(e.node);
        if (n.gen === e.gen && n.up && !n.agentUp) this.startAgent(n);
        return;
      }
      case 'resume-agent': {
        const n = this.node(e.node);
        if (n.agentGen !== e.agentGen || !n.agentUp) return;
        n.agentPaused = false;
        this.log(`n${n.id} agent resumes (SIGCONT), backlog ${n.backlog.length}`);
        return this.drain(n);
      }
      case 'resume': {
        const n = this.node(e.node);
        if (n.gen !== e.gen || !n.up) return;
        n.frozen = false;
        this.corosync.topologyChanged();
        this.log(`n${n.id} resumes (${e.what}), backlog ${n.backlog.length}`);
        return this.drain(n);
      }
      case 'fault':
        if (!this.healed) applyFault(this, e.fault);
        return;
      case 'watchdog':
        return this.onWatchdog(e.node, e.gen);
      case 'reboot': {
        const n = this.node(e.node);
        if (n.gen === e.gen && !n.up) this.boot(n);
        return;
      }
      case 'config-lands':
        return this.effects.onConfigLands(e.version, e.nodes);
      case 'heal':
        return this.heal();
      case 'settle':
        return this.onSettle(e.deadline, e.stableMs);
      case 'db':
        return this.db.on(e.ev);
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

  rand(r: Range): number {
    return this.rng.int(r[0], r[1]);
  }

  count(what: string): void {
    this.coverage[what] = (this.coverage[what] ?? 0) + 1;
  }

  // -------------------------------------------------------------------------
  // Node and agent life cycle

  boot(n: SimNode): void {
    if (n.up) return;
    n.up = true;
    n.gen += 1;
    n.autoReboot = false;
    n.agentPaused = false;
    n.frozen = false;
    this.log(`n${n.id} boots`);
    this.db.boot(n);
    this.corosync.topologyChanged();
    // corosync is up now; the agent follows after a while (agents of a cluster start staggered).
    const t = this.t;
    const delay = this.rng.chance(t.agentLateChance) ? this.rand(t.agentLateMs) : this.rand(t.agentStartMs);
    if (delay <= 0) this.startAgent(n);
    else this.schedule(this.now + delay, { kind: 'agent-start', node: n.id, gen: n.gen });
  }

  /** Start (or restart) the agent: a new core, fed the way a daemon feeds it at startup. */
  private startAgent(n: SimNode): void {
    n.agentUp = true;
    n.agentGen += 1;
    n.incarnation += 1;
    n.agentPaused = false;
    n.needsQuorum = true;
    n.lastArrival = this.now;
    const sabotage = this.cfg.sabotage;
    const coreSabotage = sabotage === undefined || DB_SABOTAGES.includes(sabotage as DbSabotage) ? undefined : (sabotage as Exclude<typeof sabotage, DbSabotage>);
    // The daemon persists the term: a restarted agent continues from it.
    n.core = this.cfg.makeCore(n.id, this.settingsOf(n.id), { incarnation: n.incarnation, sabotage: coreSabotage, initialTerm: n.persistedTerm });
    if (n.phys.ip) this.count('agent restarted holding the IP');
    if (n.phys.vms.size > 0) this.count('agent restarted with VMs');
    this.log(`n${n.id} agent starts (incarnation ${n.incarnation})${n.phys.ip ? ', cluster IP still assigned' : ''}${n.phys.vms.size ? `, VMs ${[...n.phys.vms.keys()].join(',')} still running` : ''}`);
    const cfg = this.clusterConfig;
    this.arrive(n, { type: 'config', now: 0, version: cfg.version, nodes: cfg.nodes.map((x) => ({ ...x })) }, -1, 0, false);
    this.arrive(n, { type: 'local-vms', now: 0, running: [...n.phys.vms.keys()] }, -1, 0, false);
    this.arrive(n, this.inventoryEvent(), -1, 0, false);
    this.db.agentStarted(n);
    this.schedule(this.now + this.rng.int(1, this.s.tickMs), { kind: 'tick', node: n.id, agentGen: n.agentGen });
    this.corosync.agentStarted(n);
  }

  /** The agent process dies (VMs, addresses and corosync stay); it restarts after `downMs`. */
  crashAgent(n: SimNode, downMs: number): void {
    if (!n.up || !n.agentUp) return;
    this.log(`n${n.id} AGENT CRASH (restarts in ${downMs} ms)`);
    this.effects.settleInFlight(n);
    if (this.stopped) return;
    this.stopAgent(n);
    this.corosync.agentStopped(n);
    this.schedule(this.now + downMs, { kind: 'agent-start', node: n.id, gen: n.gen });
  }

  private stopAgent(n: SimNode): void {
    this.db.agentStopped(n);
    n.agentUp = false;
    n.agentGen += 1;
    n.core = null;
    n.backlog = [];
    n.queues.clear();
    n.wantIp = false;
    n.wantPanel = false;
    n.wantDb = false;
    n.processedQuorate = null;
    n.lastOwnRenewSentAt = null;
    n.lastOwnRenewLeaseMs = null;
    n.fencedAt = null;
    n.agentPaused = false;
  }

  inventoryEvent(): CoreEvent {
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
    this.count(why.startsWith('watchdog') ? 'watchdog reset' : why.startsWith('fence') ? 'fence' : 'power loss');
    this.effects.powerOff(n);
    n.up = false;
    n.gen += 1;
    if (n.agentUp) this.stopAgent(n);
    n.watchdogAt = Infinity;
    n.wdScheduledAt = Infinity;
    n.frozen = false;
    n.stopHang = false;
    n.ringId = null;
    n.autoReboot = autoReboot;
    this.corosync.topologyChanged();
    if (autoReboot) this.schedule(this.now + this.rand(this.t.rebootMs), { kind: 'reboot', node: n.id, gen: n.gen });
  }

  private onTick(id: NodeId, agentGen: number): void {
    const n = this.node(id);
    if (n.agentGen !== agentGen || !n.agentUp) return;
    this.schedule(this.now + this.s.tickMs, { kind: 'tick', node: id, agentGen });
    // Invariant 4b: a node that must self-fence has no VMs after fenceTimeoutMs (+ a tick).
    if (n.fencedAt !== null && n.phys.vms.size > 0 && this.now > n.fencedAt + this.s.fenceTimeoutMs + this.s.tickMs) {
      this.violate('self-fence', `n${id} still has VMs [${[...n.phys.vms.keys()].join(', ')}] ${this.now - n.fencedAt} ms after it had to self-fence`);
      return;
    }
    if (!n.agentPaused && !n.frozen) this.runStep(n, { type: 'tick', now: 0 }, -1, 0, false);
  }

  /** SIGCONT: the agent's timer fires first, then the queued events in order. */
  private drain(n: SimNode): void {
    if (!n.agentUp || n.agentPaused || n.frozen) return;
    const gen = n.agentGen;
    this.runStep(n, { type: 'tick', now: 0 }, -1, 0, false);
    while (n.backlog.length > 0 && n.agentGen === gen && !n.agentPaused && !n.frozen && !this.stopped) {
      const b = n.backlog.shift()!;
      this.runStep(n, b.ev, b.ring, b.pos, b.majority);
    }
  }

  /** The kernel watchdog: fires at the deadline the agent last set unless petted again. */
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

  /** Hand an event to the agent (FIFO per node). `ring`/`pos` identify CPG deliveries. */
  arrive(n: SimNode, ev: CoreEvent, ring: number, pos: number, majority: boolean, delay = 0): void {
    let at = this.now + delay;
    if (at < n.lastArrival) at = n.lastArrival;
    n.lastArrival = at;
    if (ev.type === 'quorum') n.needsQuorum = false;
    this.schedule(at, { kind: 'arrive', node: n.id, agentGen: n.agentGen, ev, ring, pos, majority });
  }

  private runStep(n: SimNode, ev: CoreEvent, ringId: number, pos: number, majority: boolean): void {
    const core = n.core;
    if (core === null || this.stopped) return;
    (ev as { now: number }).now = this.now;
    if (ev.type === 'quorum') n.processedQuorate = ev.quorate;
    if (ev.type === 'cpg-message' && ev.from === n.id && majority) {
      const m = ev.msg as { kind?: string; sentAt?: number; leaseMs?: number };
      if (m.kind === 'renew' && typeof m.sentAt === 'number' && (n.lastOwnRenewSentAt === null || m.sentAt > n.lastOwnRenewSentAt)) {
        n.lastOwnRenewSentAt = m.sentAt;
        n.lastOwnRenewLeaseMs = typeof m.leaseMs === 'number' ? m.leaseMs : null;
      }
    }
    const res = core.step(ev);
    this.events += 1;
    if (res.decisions.length > 0) this.countDecisions(n, res.decisions);
    if (this.cfg.trace) for (const line of traceStep(n.id, ev, res.actions, res.decisions)) this.log(line);
    const gen = n.agentGen;
    for (const a of res.actions) {
      this.effects.execute(n, a);
      if (n.agentGen !== gen || this.stopped) return;
    }
    this.afterStep(n, ringId, pos);
    if (n.agentGen !== gen || this.stopped) return;
    n.watchdogAt = res.watchdogDeadline;
    if (n.watchdogAt <= this.now) this.reset(n, `watchdog deadline ${n.watchdogAt} already passed`, true);
    else this.armWatchdog(n);
  }

  /** Invariants about what one node just decided. */
  private afterStep(n: SimNode, ringId: number, pos: number): void {
    const role = n.core!.role();
    if (role.term > n.persistedTerm) n.persistedTerm = role.term;
    const fenced = role.selfStatus === 'network_isolation' || role.selfStatus === 'storage_isolation';
    if (!fenced) n.fencedAt = null;
    else if (n.fencedAt === null) n.fencedAt = this.now;

    // Invariant 2: after processing quorum loss, no IP, panel or database primary is wanted.
    if (n.processedQuorate === false && (n.wantIp || n.wantPanel || n.wantDb)) {
      this.violate('minority-holds', `n${n.id} still wants the cluster IP/panel/DB primary after processing quorum loss`);
      return;
    }
    // The database is primary only together with the IP: every step-down demotes it in the same step.
    if (n.wantDb && !n.wantIp) {
      this.violate('db-demote', `n${n.id} released the cluster IP but did not demote its database`);
      return;
    }
    // Invariant 2: after lease expiry (by the simulator's own, more lenient, count), no IP/panel.
    // The lease is the one the node's last delivered renewal announced to the others.
    const leaseMs = n.lastOwnRenewLeaseMs ?? this.settingsOf(n.id).leaseMs;
    if ((n.wantIp || n.wantPanel || n.wantDb) && (n.lastOwnRenewSentAt === null || this.now - n.lastOwnRenewSentAt > leaseMs)) {
      const age = n.lastOwnRenewSentAt === null ? 'never renewed' : `last renewal sent ${this.now - n.lastOwnRenewSentAt} ms ago`;
      this.violate('lease', `n${n.id} wants the cluster IP/panel with an expired lease (${age})`);
      return;
    }
    // Invariant 1b: at most one acting master per quorate ring.
    const ring = this.corosync.ringOf(n);
    if (n.wantIp && ring !== undefined && ring.alive && ring.majority) {
      for (const m of ring.members) {
        if (m !== n.id && this.node(m).wantIp) {
          this.violate('one-master', `n${n.id} and n${m} both act as master in ring ${ring.id} [${ring.members.join(',')}]`);
          return;
        }
      }
    }
    // Agreement: members that processed the same ring position agree on the master.
    if (ringId >= 0 && role.synced) {
      const delivered = this.corosync.rings.get(ringId);
      if (delivered) {
        const seen = delivered.masterAt.get(pos);
        if (seen === undefined) delivered.masterAt.set(pos, role.master);
        else if (seen !== role.master) this.violate('agreement', `ring ${ringId} position ${pos}: n${n.id} says master n${role.master}, another member said n${seen}`);
      }
    }
  }

  private countDecisions(n: SimNode, decisions: readonly Decision[]): void {
    for (const d of decisions) {
      if (d.reason.startsWith('database read-only')) this.count('database demoted');
      else if (d.kind === 'lease' && d.reason.startsWith('taking')) this.count(n.phys.ip ? 'ip re-taken' : 'ip taken');
      else if (d.kind === 'lease' && d.reason.includes('lease expired')) this.count('lease expired');
      else if (d.kind === 'lease' && d.reason.includes('confirmed it released')) this.count('release confirmed');
      else if (d.kind === 'election' && d.reason.startsWith('releasing')) this.count('master stepped down');
      else if (d.kind === 'election' && d.reason.includes('waiting up to')) this.count('startup election deferred');
      else if (d.kind === 'election' && this.firstMaster === null && d.reason.startsWith('term ') && d.reason.includes(': master n')) {
        this.firstMaster = Number(/: master n(\d+)/.exec(d.reason)?.[1] ?? 0) || null;
      }
      else if (d.kind === 'election' && d.reason.startsWith('startup grace over')) this.count('startup grace expired');
      else if (d.kind === 'election' && d.reason.startsWith('term ') && d.reason.includes("no member's database can be primary")) this.count("master elected: no member's database can be primary");
      else if (d.kind === 'election' && d.reason.startsWith('term ') && d.reason.includes(': database ')) this.count('master elected: a better one whose database cannot be primary passed over');
      else if (d.kind === 'vm' && d.reason.includes('now owned by')) this.count('ownership changes (per member)');
      else if (d.kind === 'vm' && d.reason.startsWith('drain: ') && d.reason.includes('stopped')) this.count('drain step confirmed (per member)');
      else if (d.kind === 'status') {
        const m = / -> (\w+):/.exec(d.reason);
        if (m) this.count(`became ${m[1]}`);
      } else if (d.kind === 'placement' && d.reason.startsWith('draining ')) this.count('drain started');
      else if (d.kind === 'placement') this.count('vm unplaced');
      else if (d.kind === 'ignored') this.count('message ignored');
    }
  }

  // -------------------------------------------------------------------------
  // End of the run

  /** End of the fault phase: repair everything, then let the cluster settle. */
  private heal(): void {
    this.healed = true;
    this.effects.vmStartFailChance = 0;
    this.effects.slowWriteChance = 0;
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
      if (!n.agentUp) {
        this.startAgent(n);
        continue;
      }
      n.agentPaused = false;
      this.drain(n);
    }
    this.db.heal();
    this.corosync.topologyChanged();
  }

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
}


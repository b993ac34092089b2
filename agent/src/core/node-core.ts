// The HA decision logic of one node: a pure state machine. Events in, actions + decisions out.
// No I/O, no clock reads, no timers, no randomness: time only comes in `event.now`.
//
// Parts (each owns its state):
//  - Replica (replicated.ts): what every member of the CPG view agrees on (master, term, member
//    reports, VM owners); a deterministic function of the CPG-ordered stream only;
//  - ClusterIpRole (cluster-ip.ts): lease, cluster IP, panel, database role;
//  - SelfChecks (self-checks.ts): storage heartbeat and test-IP probe;
//  - LocalVms (local-vms.ts): VMs on this node, start handshake, self-fence;
//  - MasterDuties (master-duties.ts): VM table, config, statuses, recovery;
//  - this file: quorum, configuration, membership, self status, reports, and the step loop.

import { ClusterIpRole, type LocalFacts } from './cluster-ip.ts';
import { Output, type CoreContext, type Sabotage } from './context.ts';
import { dbWhy, notMasterReason, quorumNeed } from './election.ts';
import { leaseAgeMs, watchdogDeadline } from './lease.ts';
import { LocalVms } from './local-vms.ts';
import { MasterDuties, type MasterInputs } from './master-duties.ts';
import { validateCpgMessage } from './messages.ts';
import { Replica, type ReplicaNote } from './replicated.ts';
import { SelfChecks } from './self-checks.ts';
import { clusterStatus, isFencedStatus, isUnstable, newFlapHistory, noteLinkBack, noteLinkLost, selfStatusFrom, type FlapHistory } from './status.ts';
import {
  resolveSettings,
  type CoreEvent,
  type CoreRole,
  type NodeConfig,
  type NodeId,
  type NodeStatus,
  type NodeView,
  type SelfStatus,
  type Settings,
  type StepResult,
  type VmId,
} from './types.ts';

export type { Sabotage } from './context.ts';

export interface CoreOptions {
  /** Must differ between agent starts on a node (e.g. Date.now() at process start). */
  incarnation?: number;
  /** Simulator self-test only. */
  sabotage?: Sabotage;
  /**
   * The effect layer removed any cluster IP and panel an earlier run left behind before the first
   * event (the daemon does it synchronously at start), so the core need not release them first.
   */
  leftoversReleased?: boolean;
  /**
   * The term to start from: the last term the previous agent run saw (the daemon persists it), so
   * terms, and the database epochs a promotion writes (at least the term), keep growing across
   * agent restarts. Default 0.
   */
  initialTerm?: number;
}

export interface NodeCore {
  /** Feed one event; get the actions to execute, the decisions to log, the watchdog deadline. */
  step(event: CoreEvent): StepResult;
  /** Everything `corolistener -l` shows. */
  view(): NodeView;
  /** Cheap summary (master, status, what we hold) for the simulator and tests. */
  role(): CoreRole;
}

export function createNodeCore(localNodeId: NodeId, settings?: Partial<Settings>, options?: CoreOptions): NodeCore {
  return new Core(localNodeId, resolveSettings(settings), options ?? {});
}

class Core implements NodeCore, LocalFacts {
  private readonly ctx: CoreContext;
  private readonly ip: ClusterIpRole;
  private readonly checks: SelfChecks;
  private readonly vms: LocalVms;
  private readonly master: MasterDuties;
  private readonly incarnation: number;
  private started = false;
  private fenceSent = false;

  // Configuration (local corosync.conf + settings)
  private configVersion = 0;
  private nodes: NodeConfig[] = [];

  // Quorum (votequorum) and membership history
  quorate: boolean | null = null;
  private quorumMembers: NodeId[] = [];
  /** Bumped when quorate or the quorum members change (cheap report pre-check). */
  private quorumVersion = 0;
  /** A master was decided in a view of ours since this agent started: the startup grace is over. */
  private sawMaster = false;
  private graceOverNoted = false;
  /** Start of our current run of majority views (bounds what absent nodes can still do). */
  private majoritySince: number | null = null;
  private readonly goneAt = new Map<NodeId, number>();
  private readonly flaps = new Map<NodeId, FlapHistory>();

  // Can the local database become primary? (db-health events; not judged until the first one)
  private db: { judged: boolean; eligible: boolean; reason: string } = { judged: false, eligible: true, reason: '' };

  // Self status and reports
  selfStatus: SelfStatus = 'starting';
  selfReason = 'starting';
  private fencedSince: number | null = null;
  private lastReportKey = '';
  /** Inputs of the last report check (cheap to compare; the report itself is not). */
  private reportCheck = { vmsVersion: -1, status: '', configVersion: -1, nodeCount: -1, failback: false, prio: Number.NaN, young: false, quorumVersion: -1, db: '' };
  private readonly masterInputs: MasterInputs;

  constructor(id: NodeId, settings: Settings, options: CoreOptions) {
    const term = options.initialTerm;
    this.ctx = { id, rep: new Replica(id, term !== undefined && Number.isSafeInteger(term) && term > 0 ? term : 0), out: new Output(), sabotage: options.sabotage, leftoversReleased: options.leftoversReleased ?? false, s: settings, now: 0, startedAt: 0 };
    this.incarnation = options.incarnation ?? 0;
    this.ip = new ClusterIpRole(this.ctx);
    this.checks = new SelfChecks(this.ctx, this.incarnation);
    this.vms = new LocalVms(this.ctx, this.checks);
    this.master = new MasterDuties(this.ctx);
    this.masterInputs = {
      nodes: [],
      configVersion: 0,
      statusOf: (n) => this.statusOf(n),
      seen: this.checks.seen,
      goneAt: (n) => Math.max(this.goneAt.get(n) ?? -Infinity, this.majoritySince ?? this.ctx.now),
    };
  }

  // -------------------------------------------------------------------------
  // Public API

  step(event: CoreEvent): StepResult {
    const { ctx } = this;
    if (!this.started) {
      this.started = true;
      ctx.startedAt = ctx.now = event.now;
      ctx.out.reset(event.now);
      ctx.out.decide('startup', `n${ctx.id} starting (incarnation ${this.incarnation})`);
      this.ip.start();
    } else {
      if (event.now > ctx.now) ctx.now = event.now;
      ctx.out.reset(ctx.now);
    }
    // An expired lease is handled before anything else (e.g. the first event after SIGCONT).
    this.ip.enforceLease();
    this.handle(event);
    this.reconcile();
    const wd = this.watchdog();
    if (wd.deadline <= ctx.now && !this.fenceSent) {
      this.fenceSent = true;
      ctx.out.act({ type: 'Fence', reason: `watchdog deadline passed: ${wd.reason}` });
      ctx.out.decide('fence', `fencing now: ${wd.reason}`);
    }
    return { actions: ctx.out.actions, decisions: ctx.out.decisions, watchdogDeadline: wd.deadline };
  }

  role(): CoreRole {
    const { rep } = this.ctx;
    return {
      master: rep.synced ? rep.master : null,
      synced: rep.synced,
      term: rep.term,
      selfStatus: this.selfStatus,
      quorate: this.quorate,
      fencedSince: this.fencedSince,
      wantsClusterIp: this.ip.wantIp,
      wantsPanel: this.ip.wantPanel,
    };
  }

  view(): NodeView {
    const { rep, id, now, out } = this.ctx;
    const master = rep.synced ? rep.master : null;
    const masterCfg = master === null ? undefined : { nodeid: master, prio: this.prioOf(master), ...this.dbOf(master) };
    const nodes = this.nodes.map((n) => {
      const st = this.statusOf(n.nodeid);
      const isMaster = n.nodeid === master;
      const db = this.dbOf(n.nodeid);
      const role = isMaster ? `master (term ${rep.term})` : notMasterReason({ nodeid: n.nodeid, prio: n.prio, eligible: rep.isGoodMember(n.nodeid), ...db }, masterCfg);
      const reserve = n.reserve === true || this.ctx.s.reserveNodes.includes(n.nodeid);
      return { nodeid: n.nodeid, addr: n.addr, prio: n.prio, status: st.status, isMaster, reason: `${st.reason}; ${role}`, ramMb: n.ramMb, reserve, maintenance: n.maintenance === true, replication: n.replication !== false, ...db };
    });
    const vmIds = new Set<VmId>([...rep.specs.keys(), ...rep.owners.keys(), ...this.vms.ids()]);
    return {
      localNodeId: id,
      now,
      selfStatus: this.selfStatus,
      quorum: { quorate: this.quorate, have: this.quorumMembers.length, need: quorumNeed(this.nodeCount()), members: [...this.quorumMembers] },
      cpg: { members: [...rep.members], synced: rep.synced, term: rep.term, majority: rep.majority },
      master,
      isMaster: master === id,
      holdsClusterIp: this.ip.wantIp,
      panelRunning: this.ip.wantPanel,
      lease: { fresh: this.ip.leaseFresh(), ageMs: leaseAgeMs(this.ip.lastRenewalSentAt, now), ipSafeInMs: this.ip.ipSafeInMs() },
      nodes,
      vms: [...vmIds].sort().map((vm) => {
        const o = rep.ownerOf(vm);
        return { vm, owner: o.node, epoch: o.epoch, local: this.vms.stateOf(vm), note: this.master.vmNotes.get(vm) ?? '' };
      }),
      reasons: [...out.recent],
    };
  }

  // -------------------------------------------------------------------------
  // Small queries

  private prioOf(id: NodeId): number {
    return this.nodes.find((n) => n.nodeid === id)?.prio ?? 0;
  }

  /** A node's DB eligibility as judged (self: our own; others: their ordered report). */
  private dbOf(id: NodeId): { dbEligible?: boolean; dbReason?: string } {
    const r = id === this.ctx.id ? this.dbFields() : this.ctx.rep.isMember(id) ? this.ctx.rep.reports.get(id) : undefined;
    const out: { dbEligible?: boolean; dbReason?: string } = {};
    if (r?.dbEligible !== undefined) out.dbEligible = r.dbEligible;
    if (r?.dbReason !== undefined) out.dbReason = r.dbReason;
    return out;
  }

  /** What hellos and reports carry about our database: nothing until judged, the reason only when it cannot be primary. */
  private dbFields(): { dbEligible?: boolean; dbReason?: string } {
    const { db } = this;
    if (!db.judged) return {};
    return db.eligible ? { dbEligible: true } : { dbEligible: false, dbReason: db.reason };
  }

  private nodeCount(): number {
    return Math.max(1, this.nodes.length);
  }

  quorumLostReason(): string {
    const n = this.nodeCount();
    return `quorum lost: ${this.quorumMembers.length} of ${n} votes, need ${quorumNeed(n)}`;
  }

  /** May this node start VMs right now? Only as a good member of a synced majority view. */
  private canStartVms(): boolean {
    const { rep, id } = this.ctx;
    return this.selfStatus === 'member' && this.quorate === true && rep.synced && rep.majority && rep.tableKnown && rep.isGoodMember(id);
  }

  /** > 0 while this agent is in its startup grace (started recently, never saw a master). */
  private graceLeftMs(): number {
    const { ctx } = this;
    if (this.sawMaster) return 0;
    const left = ctx.startedAt + ctx.s.startupGraceMs - ctx.now;
    return left > 0 ? Math.ceil(left) : 0;
  }

  /** What hellos and reports carry for the startup grace. */
  private startupFields(): { graceLeftMs: number; quorumMembers: NodeId[] } {
    return { graceLeftMs: this.graceLeftMs(), quorumMembers: this.quorate === true ? [...this.quorumMembers] : [] };
  }

  private flapsOf(id: NodeId): FlapHistory {
    let h = this.flaps.get(id);
    if (h === undefined) this.flaps.set(id, (h = newFlapHistory()));
    return h;
  }

  /** Status of any configured node as this node sees it. */
  private statusOf(id: NodeId): { status: NodeStatus; reason: string } {
    const { rep, now, s } = this.ctx;
    if (id === this.ctx.id) {
      if (this.selfStatus === 'member') return { status: rep.synced && rep.master === id ? 'leader' : 'member', reason: this.selfReason };
      return { status: this.selfStatus === 'starting' ? 'unknown' : this.selfStatus, reason: this.selfReason };
    }
    const h = this.flaps.get(id);
    return clusterStatus({
      inView: rep.isMember(id),
      isMaster: rep.synced && rep.master === id,
      reported: rep.reports.get(id)?.status,
      heartbeat: this.checks.seen.get(id),
      unstable: h !== undefined && isUnstable(h, now, s),
      now,
      storageTimeoutMs: s.storageTimeoutMs,
    });
  }

  // -------------------------------------------------------------------------
  // Events

  private handle(e: CoreEvent): void {
    const { ctx } = this;
    switch (e.type) {
      case 'tick':
        return this.vms.requestScan(); // retry timers may have expired
      case 'quorum':
        return this.onQuorum(e.quorate, e.members);
      case 'config':
        return this.onConfig(e.version, e.nodes, e.settings);
      case 'desired-config':
        return this.master.onDesiredConfig(e.nodes);
      case 'cpg-membership':
        return this.onMembership(e.members);
      case 'cpg-message': {
        const v = validateCpgMessage(e.msg);
        if (!v.ok) return ctx.out.decide('ignored', `message from n${e.from} ignored: ${v.reason}`);
        return this.onNotes(ctx.rep.onMessage(e.from, v.msg));
      }
      case 'storage-write':
        return this.checks.onWrite(e.ok, e.seq, e.startedAt, e.error);
      case 'storage-read': {
        const others = this.nodes.map((n) => n.nodeid).filter((id) => id !== ctx.id);
        return this.checks.onRead(e.ok, e.startedAt, e.heartbeats, e.error, others);
      }
      case 'test-ip':
        return this.checks.onTestIp(e.reachable);
      case 'vm-inventory':
        return this.master.onInventory(e.vms, e.owners);
      case 'local-vms':
        return this.vms.onDriverList(e.running);
      case 'action-result':
        this.ip.onResult(e.action, e.ok, e.error);
        this.vms.onResult(e.action, e.ok, e.error);
        if (!e.ok && !['AssignClusterIp', 'ReleaseClusterIp', 'StartPanel', 'StopPanel', 'DemoteDatabase', 'StartVm', 'StopVm'].includes(e.action.type)) {
          ctx.out.decide('action', `${e.action.type} failed: ${e.error ?? 'error'}`);
        }
        return;
      case 'db-health':
        return this.onDbHealth(e.eligible, e.reason);
      case 'admin':
        if (ctx.rep.synced && ctx.rep.isMember(ctx.id)) {
          ctx.out.send({ v: 1, kind: 'elect', reason: 'admin request' }, 'admin asked for an election');
          ctx.out.decide('election', 'admin asked for an election: multicast to the group');
        } else {
          ctx.out.decide('election', 'admin election request refused: not in a synced view');
        }
        return;
    }
  }

  private onQuorum(quorate: boolean, members: NodeId[]): void {
    const was = this.quorate;
    const sorted = [...new Set(members)].sort((a, b) => a - b);
    if (was !== quorate || sorted.join() !== this.quorumMembers.join()) this.quorumVersion += 1;
    this.quorate = quorate;
    this.quorumMembers = sorted;
    if (was === quorate) return;
    const n = this.nodeCount();
    this.ctx.out.decide('quorum', quorate ? `quorate: ${members.length} of ${n} votes, need ${quorumNeed(n)}` : this.quorumLostReason());
  }

  /** Ordered via our next report: every member re-elects at the same position. */
  private onDbHealth(eligible: boolean, reasonIn: string): void {
    const reason = eligible ? '' : reasonIn.slice(0, 200);
    const was = this.db;
    this.db = { judged: true, eligible, reason };
    if (was.eligible === eligible && was.reason === reason) return;
    const { id } = this.ctx;
    this.ctx.out.decide('status', eligible ? `n${id}'s database can be primary again` : `n${id}'s database cannot be primary: ${reason || 'no reason given'}`);
  }

  private onConfig(version: number | undefined, nodes: NodeConfig[], settings: Partial<Settings> | undefined): void {
    if (version !== undefined) this.configVersion = version;
    this.nodes = nodes.map((n) => ({ ...n })).sort((a, b) => a.nodeid - b.nodeid);
    if (settings) this.ctx.s = resolveSettings({ ...this.ctx.s, ...settings });
    this.ctx.out.decide('config', `config version ${this.configVersion}: ${this.nodes.map((n) => `n${n.nodeid}(prio ${n.prio})`).join(', ')}`);
  }

  private onMembership(membersIn: NodeId[]): void {
    const { ctx } = this;
    const { rep, now, out, id } = ctx;
    const next = [...new Set(membersIn)].sort((a, b) => a - b);
    const prev = new Set(rep.members);
    const nextSet = new Set(next);
    const left = [...prev].filter((m) => !nextSet.has(m));
    const joined = next.filter((m) => !prev.has(m));
    for (const m of left) {
      this.goneAt.set(m, now);
      noteLinkLost(this.flapsOf(m), now);
    }
    for (const m of joined) noteLinkBack(this.flapsOf(m), now, ctx.s);

    // Claim: "I was the master of the last majority view". Kept by the round unless failback.
    const claim = rep.master === id && rep.majority;
    const prevMajority = rep.majority;
    if (next.length < quorumNeed(this.nodeCount())) this.majoritySince = null;
    else if (this.majoritySince === null) this.majoritySince = now;

    const delta = [...joined.map((m) => `+n${m}`), ...left.map((m) => `-n${m}`)].join(' ');
    out.decide('membership', `CPG view [${next.map((m) => `n${m}`).join(', ')}] ${delta}; waiting for every member's hello`);
    this.onNotes(rep.onMembership(next));
    if (!nextSet.has(id)) return;

    out.send(
      {
        v: 1,
        kind: 'hello',
        members: next,
        term: rep.term,
        claim,
        majority: prevMajority,
        prio: this.prioOf(id),
        status: this.selfStatus,
        running: this.vms.active(),
        starting: this.vms.starting(),
        configVersion: this.configVersion,
        nodeCount: this.nodeCount(),
        failback: ctx.s.failback,
        ...this.ip.helloLease(),
        owners: this.master.knownOwners(),
        ...this.startupFields(),
        leaseTerms: true,
        ...this.dbFields(),
      },
      'membership changed: state exchange',
    );
  }

  /** React to what the replicated state did with an ordered event. */
  private onNotes(notes: ReplicaNote[]): void {
    const { ctx } = this;
    const { rep, out, id } = ctx;
    for (const n of notes) {
      switch (n.kind) {
        case 'round-started':
          break;
        case 'round-complete': {
          this.ip.onRoundHellos(n.hellos);
          // The round may have used an older hello of ours (same member list, sent before a
          // quick A->B->A membership change): report again if that is not our current state.
          const mine = n.hellos.find((h) => h.from === id);
          this.lastReportKey = mine === undefined ? '' : reportKeyOf(mine);
          this.reportCheck.vmsVersion = -1;
          this.master.onNewTerm();
          this.vms.requestScan();
          break;
        }
        case 'master':
          out.decide('election', `term ${n.term}: ${n.master === null ? 'no master' : `master n${n.master}`}: ${n.reason}`);
          if (n.master !== null) this.sawMaster = true;
          this.ip.onMasterDecided(n.master);
          this.master.onNewTerm();
          this.vms.requestScan();
          break;
        case 'renewed':
          this.ip.onRenewed(n.from, n.sentAt, { leaseMs: n.leaseMs, releaseBudgetMs: n.releaseBudgetMs });
          break;
        case 'released':
          this.ip.onReleased(n.from);
          break;
        case 'table':
          this.master.onTable();
          this.vms.requestScan();
          out.decide('vm', `VM table from master n${rep.master}: ${rep.specs.size} VMs`);
          break;
        case 'owner-changed':
          out.decide('vm', `${n.vm} now owned by n${n.to} (epoch ${n.epoch}, was n${n.from}): ${n.reason}`);
          this.master.onOwnerChanged(n.vm, n.to, n.epoch, n.reason);
          this.vms.requestScan();
          break;
        case 'start-intent':
          if (n.from === id) this.vms.onOwnStartDelivered(n.vm, n.epoch, n.sentAt, this.canStartVms(), this.selfStatus);
          break;
        case 'drain':
          out.decide('vm', n.stopped ? `drain: ${n.reason}` : `drain: n${n.node} stops ${n.vm} (epoch ${n.epoch}): ${n.reason}`);
          this.vms.requestScan();
          break;
        case 'deferred':
          out.decide('election', `term ${rep.term}: no master yet: ${n.reason}`);
          break;
        case 'elect-requested':
          out.decide('election', `election requested by n${n.from}: ${n.reason}`);
          break;
        case 'ignored':
          out.decide('ignored', n.reason);
          break;
      }
    }
  }

  // -------------------------------------------------------------------------
  // Reconcile: turn the current state into actions

  private reconcile(): void {
    const { ctx } = this;
    this.updateSelfStatus();
    this.ip.reconcile(this);
    this.checks.periodic(this.selfStatus, this.vms.active());
    if (!this.graceOverNoted && this.graceLeftMs() === 0) {
      this.graceOverNoted = true;
      if (!this.sawMaster && ctx.s.startupGraceMs > 0) {
        ctx.out.decide('election', `startup grace over (${ctx.s.startupGraceMs} ms without a master): reporting it, a fresh master may be elected without the missing agents`);
      }
    }
    this.sendReport();
    const fenced = isFencedStatus(this.selfStatus) && ctx.sabotage !== 'keep-vms-on-quorum-loss';
    this.vms.reconcile(fenced, !fenced && this.canStartVms(), this.selfStatus);
    const { rep, id } = ctx;
    if (rep.synced && rep.master === id && rep.majority && this.quorate === true && this.selfStatus === 'member') {
      this.masterInputs.nodes = this.nodes;
      this.masterInputs.configVersion = this.configVersion;
      this.master.run(this.masterInputs);
    }
  }

  private updateSelfStatus(): void {
    const { status, reason } = selfStatusFrom({ quorate: this.quorate, storageOk: this.checks.storageOk(), testIpReachable: this.checks.testIpReachable() });
    if (status !== this.selfStatus) {
      this.ctx.out.decide('status', `n${this.ctx.id} ${this.selfStatus} -> ${status}: ${reason}`);
      this.vms.requestScan();
    }
    this.selfStatus = status;
    this.selfReason = reason;
    if (!isFencedStatus(status)) this.fencedSince = null;
    else if (this.fencedSince === null) this.fencedSince = this.ctx.now;
  }

  /** Multicast a report when anything in it changed (ordered: everyone sees the same). */
  private sendReport(): void {
    const { ctx } = this;
    const { rep, id, s } = ctx;
    if (!rep.synced || !rep.isMember(id)) return;
    // Cheap pre-check before building the report.
    const c = this.reportCheck;
    const prio = this.prioOf(id);
    const young = this.graceLeftMs() > 0;
    // Quorum members matter to the others only while we are young (startup grace).
    const quorumVersion = young ? this.quorumVersion : -1;
    const db = this.dbFields();
    const dbKey = `${db.dbEligible ?? ''}|${db.dbReason ?? ''}`;
    if (
      c.vmsVersion === this.vms.version &&
      c.status === this.selfStatus &&
      c.configVersion === this.configVersion &&
      c.nodeCount === this.nodeCount() &&
      c.failback === s.failback &&
      c.prio === prio &&
      c.young === young &&
      c.quorumVersion === quorumVersion &&
      c.db === dbKey
    ) {
      return;
    }
    Object.assign(c, { vmsVersion: this.vms.version, status: this.selfStatus, configVersion: this.configVersion, nodeCount: this.nodeCount(), failback: s.failback, prio, young, quorumVersion, db: dbKey });
    const report = {
      prio,
      status: this.selfStatus,
      running: this.vms.active(),
      starting: this.vms.starting(),
      configVersion: this.configVersion,
      nodeCount: this.nodeCount(),
      failback: s.failback,
      ...this.startupFields(),
      leaseTerms: true,
      ...db,
    };
    const key = reportKeyOf(report);
    if (key === this.lastReportKey) return;
    this.lastReportKey = key;
    const dbNote = db.dbEligible === false ? `, ${dbWhy(db.dbReason)}` : '';
    ctx.out.send({ v: 1, kind: 'report', ...report }, `status report: ${report.status}, prio ${report.prio}, ${report.running.length} VMs${dbNote}`);
  }

  private watchdog(): { deadline: number; reason: string } {
    const { ctx } = this;
    return watchdogDeadline({
      now: ctx.now,
      startedAt: ctx.startedAt,
      mayHoldIp: this.ip.mayHoldIp,
      lastRenewalSentAt: this.ip.lastRenewalSentAt,
      mayHaveVms: this.vms.hasActive() || !this.vms.known,
      lastGoodWriteStart: this.checks.lastGoodWriteStart,
      fencedSince: ctx.sabotage === 'keep-vms-on-quorum-loss' ? null : this.fencedSince,
      // Our lease's terms are those our last renewal announced (or less), not today's settings.
      settings: { ...ctx.s, ...this.ip.ownTerms() },
    });
  }
}

/**
 * What a report says, as a comparable string (hellos carry the same fields). Of the startup-grace
 * fields only "young" and, while young, the quorum members count (graceLeftMs itself ticks down).
 */
function reportKeyOf(r: {
  prio: number;
  status: SelfStatus;
  running: readonly VmId[];
  configVersion: number;
  nodeCount: number;
  failback: boolean;
  graceLeftMs?: number;
  quorumMembers?: readonly NodeId[];
  starting?: readonly VmId[];
  dbEligible?: boolean;
  dbReason?: string;
}): string {
  const young = (r.graceLeftMs ?? 0) > 0;
  const db = `${r.dbEligible ?? ''}|${r.dbReason ?? ''}`;
  return `${r.prio}|${r.status}|${r.running.join(',')}|${r.configVersion}|${r.nodeCount}|${r.failback}|${young ? `young:${(r.quorumMembers ?? []).join(',')}` : 'old'}|${(r.starting ?? []).join(',')}|${db}`;
}

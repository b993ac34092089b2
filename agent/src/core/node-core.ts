// The HA decision logic of one node: a pure state machine. Events in, actions + decisions out.
// No I/O, no clock reads, no timers, no randomness: time only comes in `event.now`.
//
// Two layers:
//  - Replica (replicated.ts): what every member of the CPG view agrees on (master, term, member
//    reports, VM owners), driven only by the ordered CPG stream;
//  - this file: the local side (quorum, lease, storage heartbeat, test IP, local VMs) that turns
//    the agreed state into actions, and the master's duties (VM recovery, config, statuses).

import { notMasterReason, quorumNeed } from './election.ts';
import { observeHeartbeats, type HeartbeatSeen } from './heartbeats.ts';
import { holderGoneAt, ipSafeAt, leaseAgeMs, leaseFresh, watchdogDeadline } from './lease.ts';
import { validateCpgMessage } from './messages.ts';
import { placeVms, type PlacementNode, type PlacementVm } from './placement.ts';
import { Replica, type Owner, type ReplicaNote } from './replicated.ts';
import {
  clusterStatus,
  isFencedStatus,
  isUnstable,
  newFlapHistory,
  noteLinkBack,
  noteLinkLost,
  recoverySafety,
  selfStatusFrom,
  type FlapHistory,
} from './status.ts';
import {
  resolveSettings,
  type CoreAction,
  type CoreEvent,
  type CoreRole,
  type CpgMessage,
  type Decision,
  type DecisionKind,
  type Heartbeat,
  type NodeConfig,
  type NodeId,
  type NodeStatus,
  type NodeView,
  type OwnerTriple,
  type Ownership,
  type SelfStatus,
  type Settings,
  type StepResult,
  type VmId,
  type VmSpec,
} from './types.ts';

/**
 * Deliberate bugs for the simulator's self-test (proves the checker catches them).
 * Never set in production.
 */
export type Sabotage = 'no-lease' | 'no-ip-wait' | 'no-fence-wait' | 'keep-vms-on-quorum-loss';

export interface CoreOptions {
  /** Must differ between agent starts on a node (e.g. Date.now() at process start). */
  incarnation?: number;
  sabotage?: Sabotage;
}

export interface NodeCore {
  step(event: CoreEvent): StepResult;
  view(): NodeView;
  role(): CoreRole;
}

export function createNodeCore(localNodeId: NodeId, settings?: Partial<Settings>, options?: CoreOptions): NodeCore {
  return new Core(localNodeId, resolveSettings(settings), options ?? {});
}

/** A VM on this node as the core sees it. */
interface LocalVm {
  /**
   * requested: 'start' message sent, waiting for its delivery;
   * intent: delivered fresh, waiting for a heartbeat write that lists it;
   * starting/running/stopping: as the driver reports.
   */
  state: 'requested' | 'intent' | 'starting' | 'running' | 'stopping';
  epoch: number;
  sentAt: number;
  needSeq: number;
}

const ACTIVE: ReadonlySet<LocalVm['state']> = new Set(['intent', 'starting', 'running', 'stopping']);
const MAX_REASONS = 30;

class Core implements NodeCore {
  private readonly rep: Replica;
  private readonly incarnation: number;
  private readonly sabotage: Sabotage | undefined;
  private actions: CoreAction[] = [];
  private decisions: Decision[] = [];

  private started = false;
  private startedAt = 0;
  private now = 0;

  // Configuration
  private configVersion = 0;
  private nodes: NodeConfig[] = [];
  private nodeById = new Map<NodeId, NodeConfig>();
  private desiredNodes: NodeConfig[] | null = null;
  private distributedVersion = 0;

  // Quorum (votequorum) and CPG bookkeeping
  private quorate: boolean | null = null;
  private quorumMembers: NodeId[] = [];
  private majoritySince: number | null = null;
  private readonly goneAt = new Map<NodeId, number>();
  private readonly flaps = new Map<NodeId, FlapHistory>();
  private actedMaster: NodeId | null = null;
  private lastReportKey = '';

  // Lease
  private myRenewalSentAt: number | null = null;
  private myRenewalTerm = -1;
  private lastRenewSentAt = -Infinity;
  private lastRenewalSeenAt: number | null = null;
  /** Possible other IP holders (0 = unknown holder) -> when they are certainly gone. */
  private readonly evidence = new Map<NodeId, number>();

  // Cluster IP, panel, database. "maybeHeld" stays true until a release is confirmed.
  private wantIp = false;
  private ipMaybeHeld = true;
  private wantPanel = false;
  private panelMaybeHeld = true;
  /** IP / panel actions emitted and not yet answered: only the last answer tells the state. */
  private ipOps = 0;
  private panelOps = 0;
  private ranPanelBefore = false;
  private owedReleased = false;
  private acquireRetryAt = 0;
  private dbPrimary = false;
  private dbFollowing: NodeId | null = null;

  // Storage heartbeat
  private hbSeq = 0;
  private writeInFlight: { seq: number; startedAt: number } | null = null;
  private lastWriteAt = -Infinity;
  private writeSoon = false;
  private lastGoodWriteStart: number | null = null;
  private lastGoodWriteSeq = 0;
  private storageWriteFailing = false;
  private readInFlight: { startedAt: number } | null = null;
  private lastReadAt = -Infinity;
  private lastGoodReadAt: number | null = null;
  private storageReadFailing = false;
  private readonly seen = new Map<NodeId, HeartbeatSeen>();

  // Test IP
  private testIp: { reachable: boolean; at: number } | null = null;
  private probeInFlightSince: number | null = null;
  private lastProbeAt = -Infinity;

  // Self status
  private selfStatus: SelfStatus = 'starting';
  private selfReason = 'starting';
  private fencedSince: number | null = null;
  private fenceSent = false;

  // Local VMs
  private readonly local = new Map<VmId, LocalVm>();
  private localKnown = false;
  private activeCache: VmId[] | null = null;
  /** Something a status report contains may have changed. */
  private reportDirty = true;
  /** Owners, table or local VMs changed (or a tick passed): look for VMs to start/stop. */
  private scanVms = true;
  /** Inventory or agreed owners changed: compare shared metadata with the agreed table. */
  private metaDirty = true;
  /** Earliest next start attempt after a failed start. */
  private readonly retryAt = new Map<VmId, number>();
  /** Earliest next forced stop while a stop is pending. */
  private readonly stopRetryAt = new Map<VmId, number>();

  // Master duties
  private inventory: { vms: VmSpec[]; owners: Ownership[] } | null = null;
  private inventoryDirty = false;
  private inventoryKey = '';
  private tableSentTerm = -1;
  private readonly pendingAssign = new Map<VmId, number>();
  /** Epochs we asked the effect layer to write to shared metadata. */
  private readonly metaWritten = new Map<VmId, number>();
  private readonly shownStatus = new Map<NodeId, NodeStatus>();
  private readonly vmNotes = new Map<VmId, string>();
  private readonly recent: string[] = [];

  constructor(
    private readonly id: NodeId,
    private s: Settings,
    options: CoreOptions,
  ) {
    this.rep = new Replica(id);
    this.incarnation = options.incarnation ?? 0;
    this.sabotage = options.sabotage;
  }

  // -------------------------------------------------------------------------
  // Public API

  step(event: CoreEvent): StepResult {
    this.actions = [];
    this.decisions = [];
    if (!this.started) this.start(event.now);
    if (event.now > this.now) this.now = event.now;
    // An expired lease is handled before anything else (e.g. the first event after SIGCONT).
    this.enforceLease();
    this.handle(event);
    this.reconcile();
    const wd = this.watchdog();
    if (wd.deadline <= this.now && !this.fenceSent) {
      this.fenceSent = true;
      this.act({ type: 'Fence', reason: `watchdog deadline passed: ${wd.reason}` });
      this.decide('fence', `fencing now: ${wd.reason}`);
    }
    return { actions: this.actions, decisions: this.decisions, watchdogDeadline: wd.deadline };
  }

  role(): CoreRole {
    return {
      master: this.rep.synced ? this.rep.master : null,
      synced: this.rep.synced,
      term: this.rep.term,
      selfStatus: this.selfStatus,
      quorate: this.quorate,
      fencedSince: this.fencedSince,
      wantsClusterIp: this.wantIp,
      wantsPanel: this.wantPanel,
    };
  }

  view(): NodeView {
    const need = quorumNeed(Math.max(1, this.nodes.length));
    const master = this.rep.synced ? this.rep.master : null;
    const masterCfg = master === null ? undefined : { nodeid: master, prio: this.prioOf(master) };
    const nodes = this.nodes.map((n) => {
      const st = n.nodeid === this.id ? this.ownStatus() : this.statusOf(n.nodeid);
      const isMaster = n.nodeid === master;
      const role = isMaster ? `master (term ${this.rep.term})` : notMasterReason({ nodeid: n.nodeid, prio: n.prio, eligible: this.rep.isGoodMember(n.nodeid) }, masterCfg);
      return { nodeid: n.nodeid, addr: n.addr, prio: n.prio, status: st.status, isMaster, reason: `${st.reason}; ${role}` };
    });
    const vmIds = new Set<VmId>([...this.rep.specs.keys(), ...this.rep.owners.keys(), ...this.local.keys()]);
    return {
      localNodeId: this.id,
      now: this.now,
      selfStatus: this.selfStatus,
      quorum: { quorate: this.quorate, have: this.quorumMembers.length, need, members: [...this.quorumMembers] },
      cpg: { members: [...this.rep.members], synced: this.rep.synced, term: this.rep.term, majority: this.rep.majority },
      master,
      isMaster: master === this.id,
      holdsClusterIp: this.wantIp,
      panelRunning: this.wantPanel,
      lease: {
        fresh: leaseFresh(this.myRenewalSentAt, this.now, this.s),
        ageMs: leaseAgeMs(this.myRenewalSentAt, this.now),
        ipSafeInMs: Math.max(0, ipSafeAt(this.evidence, this.id) - this.now),
      },
      nodes,
      vms: [...vmIds].sort().map((vm) => {
        const o = this.rep.ownerOf(vm);
        return { vm, owner: o.node, epoch: o.epoch, local: this.local.get(vm)?.state ?? null, note: this.vmNotes.get(vm) ?? '' };
      }),
      reasons: [...this.recent],
    };
  }

  // -------------------------------------------------------------------------
  // Output helpers

  private act(a: CoreAction): void {
    if (a.type === 'AssignClusterIp' || a.type === 'ReleaseClusterIp') this.ipOps += 1;
    if (a.type === 'StartPanel' || a.type === 'StopPanel') this.panelOps += 1;
    this.actions.push(a);
  }

  private decide(kind: DecisionKind, reason: string): void {
    this.decisions.push({ at: this.now, kind, reason });
    this.recent.push(`${this.now} ${kind}: ${reason}`);
    if (this.recent.length > MAX_REASONS) this.recent.shift();
  }

  private send(msg: CpgMessage, reason: string): void {
    this.act({ type: 'SendCpg', msg, reason });
  }

  // -------------------------------------------------------------------------
  // Small queries

  private prioOf(id: NodeId): number {
    return this.nodeById.get(id)?.prio ?? 0;
  }

  private nodeCount(): number {
    return Math.max(1, this.nodes.length);
  }

  private amMaster(): boolean {
    return this.rep.synced && this.rep.master === this.id && this.rep.majority;
  }

  private leaseIsFresh(): boolean {
    return leaseFresh(this.myRenewalSentAt, this.now, this.s);
  }

  // Local VM bookkeeping goes through these so cached views (active list, report) stay valid.
  private localSet(vm: VmId, l: LocalVm): void {
    this.local.set(vm, l);
    this.localChanged();
  }
  private localDelete(vm: VmId): void {
    if (this.local.delete(vm)) this.localChanged();
  }
  private setState(l: LocalVm, state: LocalVm['state']): void {
    l.state = state;
    this.localChanged();
  }
  private localChanged(): void {
    this.activeCache = null;
    this.reportDirty = true;
    this.scanVms = true;
  }

  private activeVms(): VmId[] {
    if (this.activeCache === null) {
      const out: VmId[] = [];
      for (const [vm, l] of this.local) if (ACTIVE.has(l.state)) out.push(vm);
      this.activeCache = out.sort();
    }
    return this.activeCache;
  }

  private hasActiveVms(): boolean {
    for (const l of this.local.values()) if (ACTIVE.has(l.state)) return true;
    return false;
  }

  /** May this node start VMs right now? Only as a good member of a synced majority view. */
  private canStartVms(): boolean {
    return (
      this.selfStatus === 'member' &&
      this.quorate === true &&
      this.rep.synced &&
      this.rep.majority &&
      this.rep.tableKnown &&
      this.rep.isGoodMember(this.id)
    );
  }

  private flapsOf(id: NodeId): FlapHistory {
    let h = this.flaps.get(id);
    if (h === undefined) this.flaps.set(id, (h = newFlapHistory()));
    return h;
  }

  // -------------------------------------------------------------------------
  // Startup and lease

  private start(now: number): void {
    this.started = true;
    this.startedAt = now;
    this.now = now;
    // We cannot know what an earlier run of the agent held: release first, and assume some
    // unknown holder may keep the IP for a full lease from now.
    this.evidence.set(0, holderGoneAt(now, this.s));
    this.decide('startup', `n${this.id} starting (incarnation ${this.incarnation})`);
    this.act({ type: 'ReleaseClusterIp', reason: 'startup: not master yet; remove any address left by an earlier run' });
    this.act({ type: 'StopPanel', reason: 'startup: not master yet; stop any panel left by an earlier run' });
  }

  private enforceLease(): void {
    if (!(this.wantIp || this.wantPanel) || this.leaseIsFresh() || this.sabotage === 'no-lease') return;
    const age = leaseAgeMs(this.myRenewalSentAt, this.now);
    this.stepDown(`lease expired: last renewal ${age === null ? 'never' : `${age} ms ago`} > leaseMs ${this.s.leaseMs}`, 'lease');
  }

  private stepDown(reason: string, kind: DecisionKind): void {
    if (this.wantIp) this.act({ type: 'ReleaseClusterIp', reason });
    if (this.wantPanel) this.act({ type: 'StopPanel', reason });
    if (this.wantIp || this.wantPanel) {
      this.decide(kind, `releasing cluster IP and panel: ${reason}`);
      this.owedReleased = true;
    }
    this.wantIp = false;
    this.wantPanel = false;
  }

  // -------------------------------------------------------------------------
  // Event handlers

  private handle(e: CoreEvent): void {
    switch (e.type) {
      case 'tick':
        this.scanVms = true; // retry timers
        return;
      case 'quorum':
        return this.onQuorum(e.quorate, e.members);
      case 'config':
        return this.onConfig(e.version, e.nodes, e.settings);
      case 'desired-config':
        this.desiredNodes = e.nodes.map((n) => ({ ...n }));
        return;
      case 'cpg-membership':
        return this.onMembership(e.members);
      case 'cpg-message': {
        const v = validateCpgMessage(e.msg);
        if (!v.ok) return this.decide('ignored', `message from n${e.from} ignored: ${v.reason}`);
        return this.onNotes(this.rep.onMessage(e.from, v.msg));
      }
      case 'storage-write':
        return this.onStorageWrite(e.ok, e.seq, e.startedAt, e.error);
      case 'storage-read':
        return this.onStorageRead(e.ok, e.startedAt, e.heartbeats, e.error);
      case 'test-ip':
        this.testIp = { reachable: e.reachable, at: this.now };
        this.probeInFlightSince = null;
        return;
      case 'vm-inventory': {
        const key = JSON.stringify([e.vms, e.owners]);
        if (key === this.inventoryKey) return;
        this.inventoryKey = key;
        this.inventory = { vms: e.vms.map((v) => ({ ...v })), owners: e.owners.map((o) => ({ ...o })) };
        this.inventoryDirty = true;
        this.metaDirty = true;
        return;
      }
      case 'local-vms':
        return this.onLocalVms(e.running);
      case 'action-result':
        return this.onActionResult(e.action, e.ok, e.error);
      case 'admin':
        if (this.rep.synced && this.rep.isMember(this.id)) {
          this.send({ v: 1, kind: 'elect', reason: 'admin request' }, 'admin asked for an election');
          this.decide('election', 'admin asked for an election: multicast to the group');
        } else {
          this.decide('election', 'admin election request refused: not in a synced view');
        }
        return;
    }
  }

  private onQuorum(quorate: boolean, members: NodeId[]): void {
    const was = this.quorate;
    this.quorate = quorate;
    this.quorumMembers = [...members].sort((a, b) => a - b);
    if (was === quorate) return;
    const n = this.nodeCount();
    const need = quorumNeed(n);
    const have = members.length;
    this.decide('quorum', quorate ? `quorate: ${have} of ${n} votes, need ${need}` : `quorum lost: ${have} of ${n} votes, need ${need}`);
  }

  private onConfig(version: number | undefined, nodes: NodeConfig[], settings: Partial<Settings> | undefined): void {
    if (version !== undefined) this.configVersion = version;
    this.nodes = nodes.map((n) => ({ ...n })).sort((a, b) => a.nodeid - b.nodeid);
    this.nodeById = new Map(this.nodes.map((n) => [n.nodeid, n]));
    if (settings) this.s = resolveSettings({ ...this.s, ...settings });
    this.reportDirty = true;
    this.decide('config', `config version ${this.configVersion}: ${this.nodes.map((n) => `n${n.nodeid}(prio ${n.prio})`).join(', ')}`);
  }

  private onMembership(membersIn: NodeId[]): void {
    const next = [...new Set(membersIn)].sort((a, b) => a - b);
    const prev = new Set(this.rep.members);
    const nextSet = new Set(next);
    const left = [...prev].filter((id) => !nextSet.has(id));
    const joined = next.filter((id) => !prev.has(id));
    for (const id of left) {
      this.goneAt.set(id, this.now);
      noteLinkLost(this.flapsOf(id), this.now);
    }
    for (const id of joined) noteLinkBack(this.flapsOf(id), this.now, this.s);

    // Claim: "I was the master of the last majority view". Kept by the round unless failback.
    const claim = this.rep.master === this.id && this.rep.majority;
    const prevMajority = this.rep.majority;
    const localMajority = next.length >= quorumNeed(this.nodeCount());
    if (!localMajority) this.majoritySince = null;
    else if (this.majoritySince === null) this.majoritySince = this.now;

    const delta = [...joined.map((id) => `+n${id}`), ...left.map((id) => `-n${id}`)].join(' ');
    this.decide('membership', `CPG view [${next.map((id) => `n${id}`).join(', ')}] ${delta}; waiting for every member's hello`);
    this.onNotes(this.rep.onMembership(next));
    if (!nextSet.has(this.id)) return;

    const running = this.activeVms();
    const prio = this.prioOf(this.id);
    this.send(
      {
        v: 1,
        kind: 'hello',
        members: next,
        term: this.rep.term,
        claim,
        majority: prevMajority,
        prio,
        status: this.selfStatus,
        running,
        configVersion: this.configVersion,
        nodeCount: this.nodeCount(),
        failback: this.s.failback,
        msSinceRenewal: Math.max(0, Math.round(this.now - (this.lastRenewalSeenAt ?? this.startedAt))),
        owners: this.knownOwners(),
      },
      'membership changed: state exchange',
    );
  }

  /** Owners we know: agreed ones plus what shared metadata said (the newest epoch wins). */
  private knownOwners(): OwnerTriple[] {
    const owners = new Map<VmId, Owner>(this.rep.owners);
    for (const o of this.inventory?.owners ?? []) {
      const cur = owners.get(o.vm);
      if (cur === undefined || o.epoch > cur.epoch) owners.set(o.vm, { node: o.node, epoch: o.epoch });
    }
    return [...owners].map(([vm, o]) => [vm, o.node, o.epoch] as OwnerTriple);
  }

  private onStorageWrite(ok: boolean, seq: number, eventStartedAt: number, error: string | undefined): void {
    const mine = this.writeInFlight !== null && this.writeInFlight.seq === seq ? this.writeInFlight : null;
    if (mine) this.writeInFlight = null;
    // Our own record of the start is earlier than the effect layer's: conservative.
    const startedAt = mine ? mine.startedAt : eventStartedAt;
    const tookMs = this.now - startedAt;
    if (ok && tookMs <= this.s.storageWriteMaxMs) {
      this.lastGoodWriteStart = Math.max(this.lastGoodWriteStart ?? -Infinity, startedAt);
      this.lastGoodWriteSeq = Math.max(this.lastGoodWriteSeq, seq);
      if (this.storageWriteFailing) this.decide('storage', 'storage heartbeat writes work again');
      this.storageWriteFailing = false;
    } else {
      if (!this.storageWriteFailing) {
        this.decide('storage', ok ? `storage heartbeat write took ${tookMs} ms > ${this.s.storageWriteMaxMs} ms: not counted` : `storage heartbeat write failed: ${error ?? 'error'}`);
      }
      this.storageWriteFailing = true;
    }
  }

  private onStorageRead(ok: boolean, eventStartedAt: number, heartbeats: readonly Heartbeat[], error: string | undefined): void {
    const startedAt = this.readInFlight?.startedAt ?? eventStartedAt;
    this.readInFlight = null;
    if (!ok) {
      if (!this.storageReadFailing) this.decide('storage', `storage heartbeat read failed: ${error ?? 'error'}`);
      this.storageReadFailing = true;
      return;
    }
    if (this.storageReadFailing) this.decide('storage', 'storage heartbeat reads work again');
    this.storageReadFailing = false;
    this.lastGoodReadAt = this.now;
    const others = this.nodes.map((n) => n.nodeid).filter((id) => id !== this.id);
    observeHeartbeats(this.seen, others, heartbeats, startedAt, this.now);
  }

  private onLocalVms(running: VmId[]): void {
    const set = new Set(running);
    for (const vm of set) {
      if (!this.local.has(vm)) {
        this.localSet(vm, { state: 'running', epoch: 0, sentAt: this.now, needSeq: 0 });
        this.decide('vm', `${vm} found running locally`);
      }
    }
    for (const [vm, l] of this.local) {
      if (l.state === 'running' && !set.has(vm)) {
        this.localDelete(vm);
        this.decide('vm', `${vm} is no longer running locally`);
      }
    }
    this.localKnown = true;
  }

  private onActionResult(a: CoreAction, ok: boolean, error: string | undefined): void {
    const failed = (what: string): void => this.decide('action', `${what} failed: ${error ?? 'error'}`);
    switch (a.type) {
      case 'ReleaseClusterIp':
        this.ipOps = Math.max(0, this.ipOps - 1);
        if (ok && !this.wantIp && this.ipOps === 0) this.ipMaybeHeld = false;
        if (!ok) failed('ReleaseClusterIp');
        return;
      case 'StopPanel':
        this.panelOps = Math.max(0, this.panelOps - 1);
        if (ok && !this.wantPanel && this.panelOps === 0) this.panelMaybeHeld = false;
        if (!ok) failed('StopPanel');
        return;
      case 'AssignClusterIp':
      case 'StartPanel':
        if (a.type === 'AssignClusterIp') this.ipOps = Math.max(0, this.ipOps - 1);
        else this.panelOps = Math.max(0, this.panelOps - 1);
        if (!ok) {
          failed(a.type);
          this.stepDown(`${a.type} failed; retry in ${this.s.vmRetryMs} ms`, 'action');
          this.acquireRetryAt = this.now + this.s.vmRetryMs;
        }
        return;
      case 'StartVm': {
        const l = this.local.get(a.vm);
        if (ok) {
          if (l && l.state === 'starting') this.setState(l, 'running');
        } else {
          if (l && l.state === 'starting') this.localDelete(a.vm);
          this.retryAt.set(a.vm, this.now + this.s.vmRetryMs);
          failed(`StartVm ${a.vm}`);
        }
        return;
      }
      case 'StopVm': {
        const l = this.local.get(a.vm);
        if (ok) {
          if (l && l.state === 'stopping') this.localDelete(a.vm);
        } else {
          // Stay 'stopping' (still listed as running); retried with force. The watchdog
          // resets the node if it must self-fence and cannot.
          this.stopRetryAt.set(a.vm, this.now + this.s.vmRetryMs);
          failed(`StopVm ${a.vm}`);
        }
        return;
      }
      default:
        if (!ok) failed(a.type);
        return;
    }
  }

  private onNotes(notes: ReplicaNote[]): void {
    for (const n of notes) {
      switch (n.kind) {
        case 'round-started':
          break;
        case 'round-complete':
          // Bound on renewals we did not see ourselves: a hello sender saw its last renewal at
          // least msSinceRenewal before we delivered its hello.
          for (const h of n.hellos) {
            if (h.from === this.id) continue;
            const at = holderGoneAt(this.now - h.msSinceRenewal, this.s);
            if (at > (this.evidence.get(0) ?? -Infinity)) this.evidence.set(0, at);
          }
          {
            // The round may have used an older hello of ours (same member list, sent before a
            // quick A->B->A membership change): report again if that is not our current state.
            const mine = n.hellos.find((h) => h.from === this.id);
            this.lastReportKey = mine === undefined ? '' : reportKeyOf(mine);
          }
          this.reportDirty = true;
          this.scanVms = true;
          this.metaDirty = true;
          this.pendingAssign.clear();
          this.tableSentTerm = -1;
          break;
        case 'master':
          this.onMasterDecided(n.master, n.term, n.reason);
          break;
        case 'renewed':
          this.lastRenewalSeenAt = this.now;
          if (n.from === this.id) {
            if (n.sentAt <= this.now && n.sentAt > (this.myRenewalSentAt ?? -Infinity)) this.myRenewalSentAt = n.sentAt;
            this.myRenewalTerm = this.rep.term;
          } else {
            this.evidence.set(n.from, holderGoneAt(this.now, this.s));
          }
          break;
        case 'released':
          if (n.from !== this.id && this.evidence.delete(n.from)) this.decide('lease', `n${n.from} confirmed it released the cluster IP and panel`);
          break;
        case 'table':
          this.scanVms = true;
          this.metaDirty = true;
          this.decide('vm', `VM table from master n${this.rep.master}: ${this.rep.specs.size} VMs`);
          break;
        case 'owner-changed':
          this.scanVms = true;
          this.metaDirty = true;
          this.pendingAssign.delete(n.vm);
          this.decide('vm', `${n.vm} now owned by n${n.to} (epoch ${n.epoch}, was n${n.from}): ${n.reason}`);
          if (this.rep.master === this.id) {
            this.metaWritten.set(n.vm, n.epoch);
            this.act({ type: 'SetOwnership', vm: n.vm, node: n.to, epoch: n.epoch, reason: n.reason });
          }
          break;
        case 'start-intent':
          if (n.from === this.id) this.onOwnStartIntent(n.vm, n.epoch, n.sentAt);
          break;
        case 'elect-requested':
          this.decide('election', `election requested by n${n.from}: ${n.reason}`);
          break;
        case 'ignored':
          this.decide('ignored', n.reason);
          break;
      }
    }
  }

  private onMasterDecided(master: NodeId | null, term: number, reason: string): void {
    const prev = this.actedMaster;
    this.actedMaster = master;
    this.pendingAssign.clear();
    this.tableSentTerm = -1;
    this.decide('election', `term ${term}: ${master === null ? 'no master' : `master n${master}`}: ${reason}`);
    if (prev === this.id && master !== this.id) {
      this.stepDown(master === null ? 'no master in this view' : `n${master} is master now`, 'election');
    }
    if (master === this.id && prev !== this.id) {
      this.lastRenewSentAt = -Infinity; // renew at once
      this.metaDirty = true;
    }
    this.scanVms = true;
  }

  /** Our own 'start' message came back: start only if it is still ours and the ring is fresh. */
  private onOwnStartIntent(vm: VmId, epoch: number, sentAt: number): void {
    const l = this.local.get(vm);
    if (l === undefined || l.state !== 'requested' || l.epoch !== epoch) return;
    const o = this.rep.ownerOf(vm);
    const age = this.now - sentAt;
    let why = '';
    if (age > this.s.leaseMs) why = `its start message took ${age} ms > leaseMs`;
    else if (o.node !== this.id || o.epoch !== epoch) why = `owner is now n${o.node} epoch ${o.epoch}`;
    else if (!this.canStartVms()) why = `not a good member (${this.selfStatus})`;
    if (why !== '') {
      this.localDelete(vm);
      this.decide('vm', `start of ${vm} abandoned: ${why}`);
      return;
    }
    // Write-ahead: the VM is listed in a heartbeat before it starts, so a reader that sees an
    // older "stopped" heartbeat knows the VM cannot have started yet.
    this.setState(l, 'intent');
    l.needSeq = this.hbSeq + 1;
    this.writeSoon = true;
  }

  // -------------------------------------------------------------------------
  // Reconcile: turn the current state into actions

  private reconcile(): void {
    this.updateSelfStatus();
    this.masterRole();
    this.periodicIo();
    this.sendReport();
    this.reconcileVms();
    if (this.amMaster() && this.quorate === true && this.selfStatus === 'member') this.masterDuties();
  }

  private updateSelfStatus(): void {
    const st = this.s.storageTimeoutMs;
    let storageOk: boolean | null = null;
    if (this.lastGoodWriteStart !== null) {
      const readOk = (this.lastGoodReadAt ?? this.startedAt) > this.now - st;
      storageOk = this.now - this.lastGoodWriteStart < st && readOk;
    }
    const t = this.testIp;
    const testIpReachable = t !== null && t.reachable && this.now - t.at <= this.s.testIpFreshMs;
    const { status, reason } = selfStatusFrom({ quorate: this.quorate, storageOk, testIpReachable });
    if (status !== this.selfStatus) {
      this.decide('status', `n${this.id} ${this.selfStatus} -> ${status}: ${reason}`);
      this.reportDirty = true;
      this.scanVms = true;
    }
    this.selfStatus = status;
    this.selfReason = reason;
    if (isFencedStatus(status)) {
      if (this.fencedSince === null) this.fencedSince = this.now;
    } else {
      this.fencedSince = null;
    }
  }

  private masterRole(): void {
    const amMaster = this.amMaster();
    if (amMaster && this.now - this.lastRenewSentAt >= this.s.leaseRenewMs) {
      this.lastRenewSentAt = this.now;
      this.send({ v: 1, kind: 'renew', term: this.rep.term, sentAt: this.now }, 'lease renewal');
    }

    // While a round runs (unsynced) the master keeps what it holds: its lease decides.
    const stillMaster = this.rep.synced ? amMaster : this.rep.master === this.id;
    if (this.wantIp || this.wantPanel) {
      let why = '';
      if (this.quorate !== true) why = `quorum lost: ${this.quorumMembers.length} of ${this.nodeCount()} votes, need ${quorumNeed(this.nodeCount())}`;
      else if (this.selfStatus !== 'member') why = `status ${this.selfStatus}: ${this.selfReason}`;
      else if (!stillMaster) why = this.rep.master === null ? 'no master in this view' : `n${this.rep.master} is master now`;
      if (why !== '') this.stepDown(why, 'election');
    }

    if (amMaster && !this.wantIp && this.quorate === true && this.selfStatus === 'member' && this.now >= this.acquireRetryAt) {
      const safeAt = ipSafeAt(this.evidence, this.id);
      const leaseOk = this.leaseIsFresh() && this.myRenewalTerm === this.rep.term;
      if (leaseOk && (this.now >= safeAt || this.sabotage === 'no-ip-wait')) this.acquire();
    }

    if (this.rep.synced && this.rep.master !== null && this.rep.master !== this.id && this.dbFollowing !== this.rep.master) {
      this.dbFollowing = this.rep.master;
      this.dbPrimary = false;
      this.act({ type: 'FollowDatabase', master: this.rep.master, reason: `n${this.rep.master} is master (term ${this.rep.term})` });
    }
    if (this.owedReleased && amMaster) this.owedReleased = false; // master again: nothing to confirm
    if (this.owedReleased && !this.ipMaybeHeld && !this.panelMaybeHeld && this.rep.synced && this.rep.isMember(this.id)) {
      this.owedReleased = false;
      this.send({ v: 1, kind: 'released', term: this.rep.term }, 'cluster IP and panel released: the new master need not wait for our lease');
    }
  }

  private acquire(): void {
    const reason = `n${this.id} is master (term ${this.rep.term}), quorate, lease fresh, previous holder's lease expired`;
    this.wantIp = true;
    this.ipMaybeHeld = true;
    this.wantPanel = true;
    this.panelMaybeHeld = true;
    this.decide('lease', `taking the cluster IP and panel: ${reason}`);
    this.act({ type: 'AssignClusterIp', reason });
    this.act({ type: 'StartPanel', kind: this.ranPanelBefore ? 'restarted' : 'moved', reason });
    this.ranPanelBefore = true;
    if (!this.dbPrimary) {
      this.dbPrimary = true;
      this.dbFollowing = null;
      this.act({ type: 'PromoteDatabase', reason });
    }
  }

  private periodicIo(): void {
    const s = this.s;
    // A write the effect layer never answered is forgotten after storageTimeoutMs.
    if (this.writeInFlight && this.now - this.writeInFlight.startedAt > s.storageTimeoutMs) this.writeInFlight = null;
    if (this.writeInFlight === null && (this.writeSoon || this.now - this.lastWriteAt >= s.storageWriteMs)) {
      this.hbSeq += 1;
      this.writeInFlight = { seq: this.hbSeq, startedAt: this.now };
      this.lastWriteAt = this.now;
      this.writeSoon = false;
      this.act({
        type: 'WriteHeartbeat',
        heartbeat: { nodeid: this.id, incarnation: this.incarnation, seq: this.hbSeq, selfStatus: this.selfStatus, runningVms: this.activeVms() },
        reason: 'storage heartbeat',
      });
    }
    if (this.readInFlight && this.now - this.readInFlight.startedAt > s.storageTimeoutMs) this.readInFlight = null;
    if (this.readInFlight === null && this.now - this.lastReadAt >= s.storageReadMs) {
      this.readInFlight = { startedAt: this.now };
      this.lastReadAt = this.now;
      this.act({ type: 'ReadHeartbeats', reason: 'storage heartbeat check' });
    }
    if (this.probeInFlightSince !== null && this.now - this.probeInFlightSince > s.testIpFreshMs) this.probeInFlightSince = null;
    if (this.probeInFlightSince === null && this.now - this.lastProbeAt >= s.testIpProbeMs) {
      this.probeInFlightSince = this.now;
      this.lastProbeAt = this.now;
      this.act({ type: 'ProbeTestIp', reason: 'test IP probe' });
    }
  }


  private sendReport(): void {
    if (!this.reportDirty || !this.rep.synced || !this.rep.isMember(this.id)) return;
    this.reportDirty = false;
    const prio = this.prioOf(this.id);
    const running = this.activeVms();
    const key = reportKeyOf({ prio, status: this.selfStatus, running, configVersion: this.configVersion, nodeCount: this.nodeCount(), failback: this.s.failback });
    if (key === this.lastReportKey) return;
    this.lastReportKey = key;
    this.send(
      { v: 1, kind: 'report', prio, status: this.selfStatus, running, configVersion: this.configVersion, nodeCount: this.nodeCount(), failback: this.s.failback },
      `status report: ${this.selfStatus}, prio ${prio}, ${running.length} VMs`,
    );
  }

  private reconcileVms(): void {
    const fenced = isFencedStatus(this.selfStatus) && this.sabotage !== 'keep-vms-on-quorum-loss';
    // Excluded, starting or unsynced: keep what runs, start nothing.
    const canStart = !fenced && this.canStartVms();
    for (const [vm, l] of this.local) {
      switch (l.state) {
        case 'requested':
        case 'intent': {
          const expired = this.now - l.sentAt > this.s.leaseMs;
          if (fenced || expired) {
            this.localDelete(vm);
            if (expired) this.decide('vm', `start of ${vm} abandoned: not confirmed within leaseMs`);
          } else if (l.state === 'intent' && canStart && this.lastGoodWriteSeq >= l.needSeq) {
            // Announced, delivered fresh, and listed in a completed heartbeat write: start now.
            const o = this.rep.ownerOf(vm);
            if (o.node !== this.id || o.epoch !== l.epoch) this.localDelete(vm);
            else {
              this.setState(l, 'starting');
              this.act({ type: 'StartVm', vm, epoch: l.epoch, reason: `${vm} owned by n${this.id} (epoch ${l.epoch}), good member, start announced and written to the heartbeat` });
            }
          }
          break;
        }
        case 'starting':
        case 'running': {
          if (fenced) {
            this.stopVm(vm, l, `${this.selfStatus}: self-fence`);
            break;
          }
          if (!canStart) break;
          const o = this.rep.owners.get(vm);
          if (o !== undefined && o.node !== this.id) this.stopVm(vm, l, `${vm} is owned by n${o.node} (epoch ${o.epoch})`);
          else if (this.rep.specs.get(vm)?.desired === 'stopped') this.stopVm(vm, l, `${vm} desired state is stopped`);
          break;
        }
        case 'stopping':
          this.retryStop(vm);
          break;
      }
    }
    if (!canStart || !this.scanVms) return;
    this.scanVms = false;
    for (const [vm, o] of this.rep.owners) {
      if (o.node !== this.id || this.local.has(vm)) continue;
      const spec = this.rep.specs.get(vm);
      if (spec === undefined || spec.desired === 'stopped' || (this.retryAt.get(vm) ?? 0) > this.now) continue;
      this.localSet(vm, { state: 'requested', epoch: o.epoch, sentAt: this.now, needSeq: 0 });
      this.send({ v: 1, kind: 'start', vm, epoch: o.epoch, sentAt: this.now }, `${vm} is owned by n${this.id} (epoch ${o.epoch}): announce start`);
    }
  }

  private stopVm(vm: VmId, l: LocalVm, reason: string): void {
    this.setState(l, 'stopping');
    this.stopRetryAt.set(vm, this.now + this.s.vmRetryMs);
    this.act({ type: 'StopVm', vm, reason });
  }

  private retryStop(vm: VmId): void {
    if ((this.stopRetryAt.get(vm) ?? 0) > this.now) return;
    this.stopRetryAt.set(vm, this.now + this.s.vmRetryMs);
    this.act({ type: 'StopVm', vm, force: true, reason: `${vm} still stopping: retry with force` });
  }

  // -------------------------------------------------------------------------
  // Master duties (only the acting master of a quorate, majority view)

  private masterDuties(): void {
    this.sendVmTable();
    this.distributeConfig();
    this.publishStatuses();
    if (this.rep.tableKnown) {
      this.repairMetadata();
      this.recoverVms();
    }
  }

  /** A previous master may have died before its SetOwnership landed: write what we agreed on. */
  private repairMetadata(): void {
    if (this.inventory === null || !this.metaDirty) return;
    this.metaDirty = false;
    const onStorage = new Map(this.inventory.owners.map((o) => [o.vm, o]));
    for (const [vm, o] of this.rep.owners) {
      const stored = onStorage.get(vm);
      if (stored !== undefined && stored.epoch >= o.epoch) continue;
      if (this.metaWritten.get(vm) === o.epoch) continue;
      this.metaWritten.set(vm, o.epoch);
      this.act({ type: 'SetOwnership', vm, node: o.node, epoch: o.epoch, reason: `shared metadata has epoch ${stored?.epoch ?? 'none'} for ${vm}, the cluster agreed on n${o.node} epoch ${o.epoch}` });
    }
  }

  private sendVmTable(): void {
    const needed = (!this.rep.tableKnown && this.tableSentTerm !== this.rep.term) || (this.rep.tableKnown && this.inventoryDirty);
    if (!needed) return;
    this.inventoryDirty = false;
    const specs = this.inventory?.vms ?? [...this.rep.specs.values()];
    const owners = new Map<VmId, Owner>();
    for (const spec of specs) owners.set(spec.id, this.rep.ownerOf(spec.id));
    // Shared metadata may know a newer epoch (e.g. after a full cluster restart).
    for (const o of this.inventory?.owners ?? []) {
      const cur = owners.get(o.vm);
      if (cur !== undefined && o.epoch > cur.epoch) owners.set(o.vm, { node: o.node, epoch: o.epoch });
    }
    const triples = [...owners].map(([vm, o]) => [vm, o.node, o.epoch] as [VmId, NodeId | null, number]);
    if (this.rep.tableKnown && sameTable(specs, triples, this.rep.specs, this.rep.owners)) return;
    this.tableSentTerm = this.rep.term;
    this.send({ v: 1, kind: 'vm-table', term: this.rep.term, vms: specs, owners: triples }, `master n${this.id}: VM table (${specs.length} VMs)`);
  }

  private distributeConfig(): void {
    const desired = this.desiredNodes;
    if (desired === null || this.distributedVersion > this.configVersion) return;
    if (sameNodes(desired, this.nodes)) {
      this.desiredNodes = null;
      return;
    }
    const version = this.configVersion + 1;
    this.distributedVersion = version;
    this.act({ type: 'DistributeConfig', version, nodes: desired, reason: `desired node list/priorities differ from config version ${this.configVersion}` });
    this.decide('config', `distributing config version ${version}`);
  }

  private publishStatuses(): void {
    for (const n of this.nodes) {
      const st = n.nodeid === this.id ? this.ownStatus() : this.statusOf(n.nodeid);
      if (this.shownStatus.get(n.nodeid) === st.status) continue;
      this.shownStatus.set(n.nodeid, st.status);
      this.act({ type: 'SetNodeStatus', nodeid: n.nodeid, status: st.status, reason: st.reason });
    }
  }

  private ownStatus(): { status: NodeStatus; reason: string } {
    if (this.selfStatus === 'member') {
      const isMaster = this.rep.synced && this.rep.master === this.id;
      return { status: isMaster ? 'leader' : 'member', reason: this.selfReason };
    }
    return { status: this.selfStatus === 'starting' ? 'unknown' : this.selfStatus, reason: this.selfReason };
  }

  private statusOf(id: NodeId): { status: NodeStatus; reason: string } {
    const h = this.flaps.get(id);
    return clusterStatus({
      inView: this.rep.isMember(id),
      isMaster: this.rep.synced && this.rep.master === id,
      reported: this.rep.reports.get(id)?.status,
      heartbeat: this.seen.get(id),
      unstable: h !== undefined && isUnstable(h, this.now, this.s),
      now: this.now,
      storageTimeoutMs: this.s.storageTimeoutMs,
    });
  }

  private noteVm(vm: VmId, text: string, kind: DecisionKind = 'recovery'): void {
    if (this.vmNotes.get(vm) === text) return;
    this.vmNotes.set(vm, text);
    if (text !== '') this.decide(kind, text);
  }

  private recoverVms(): void {
    const needs: PlacementVm[] = [];
    const why = new Map<VmId, { from: Owner; reason: string }>();
    for (const [vm, spec] of this.rep.specs) {
      if (spec.desired === 'stopped' || this.pendingAssign.get(vm) === this.rep.term) continue;
      const o = this.rep.ownerOf(vm);
      if (o.node !== null && this.rep.isGoodMember(o.node)) {
        this.noteVm(vm, '');
        continue;
      }
      let reason = `${vm} has no owner`;
      if (o.node !== null) {
        if (!spec.ha) {
          this.noteVm(vm, `${vm} stays down with n${o.node}: not HA-enabled`);
          continue;
        }
        if (spec.storage === 'local') {
          this.noteVm(vm, `${vm} unrecoverable: its disk is local to failed n${o.node}`);
          continue;
        }
        const safety = recoverySafety({
          node: o.node,
          vm,
          inView: this.rep.isMember(o.node),
          reported: this.rep.reports.get(o.node),
          heartbeat: this.seen.get(o.node),
          goneAt: Math.max(this.goneAt.get(o.node) ?? -Infinity, this.majoritySince ?? this.now),
          settings: this.s,
        });
        if (!safety.safe && this.sabotage !== 'no-fence-wait') {
          this.noteVm(vm, safety.reason);
          continue;
        }
        reason = safety.reason;
      }
      needs.push({ id: vm, ramMb: spec.ramMb, restartPriority: spec.restartPriority });
      why.set(vm, { from: o, reason });
    }
    if (needs.length === 0) return;

    const result = placeVms(this.placementNodes(), needs);
    for (const p of result.placements) {
      const w = why.get(p.vm)!;
      this.pendingAssign.set(p.vm, this.rep.term);
      this.noteVm(p.vm, '');
      this.send(
        { v: 1, kind: 'assign', term: this.rep.term, vm: p.vm, from: w.from.node, fromEpoch: w.from.epoch, to: p.node, epoch: w.from.epoch + 1, reason: `${w.reason}; ${p.reason}` },
        `recover ${p.vm}: ${w.reason}`,
      );
    }
    for (const u of result.unplaced) this.noteVm(u.vm, u.reason, 'placement');
  }

  private placementNodes(): PlacementNode[] {
    const load = new Map<NodeId, { count: number; ram: number }>();
    for (const [vm, o] of this.rep.owners) {
      const spec = this.rep.specs.get(vm);
      if (o.node === null || spec === undefined || spec.desired === 'stopped') continue;
      const l = load.get(o.node) ?? { count: 0, ram: 0 };
      l.count += 1;
      l.ram += spec.ramMb;
      load.set(o.node, l);
    }
    const reserve = new Set(this.s.reserveNodes);
    return this.rep.members
      .filter((id) => this.rep.isGoodMember(id))
      .map((id) => {
        const cfg = this.nodeById.get(id);
        const l = load.get(id) ?? { count: 0, ram: 0 };
        return {
          nodeid: id,
          ramMb: cfg?.ramMb,
          usedRamMb: l.ram,
          vmCount: l.count,
          reserve: cfg?.reserve === true || reserve.has(id),
          maintenance: cfg?.maintenance === true,
        };
      });
  }

  // -------------------------------------------------------------------------
  // Watchdog

  private watchdog(): { deadline: number; reason: string } {
    return watchdogDeadline({
      now: this.now,
      startedAt: this.startedAt,
      mayHoldIpOrPanel: this.ipMaybeHeld || this.panelMaybeHeld,
      lastRenewalSentAt: this.myRenewalSentAt,
      mayHaveVms: this.hasActiveVms() || !this.localKnown,
      lastGoodWriteStart: this.lastGoodWriteStart,
      fencedSince: this.sabotage === 'keep-vms-on-quorum-loss' ? null : this.fencedSince,
      settings: this.s,
    });
  }
}

/** What a report says, as a comparable string (hellos carry the same fields). */
function reportKeyOf(r: { prio: number; status: SelfStatus; running: readonly VmId[]; configVersion: number; nodeCount: number; failback: boolean }): string {
  return `${r.prio}|${r.status}|${r.running.join(',')}|${r.configVersion}|${r.nodeCount}|${r.failback}`;
}

function sameNodes(a: readonly NodeConfig[], b: readonly NodeConfig[]): boolean {
  const key = (l: readonly NodeConfig[]): string =>
    JSON.stringify([...l].sort((x, y) => x.nodeid - y.nodeid).map((n) => [n.nodeid, n.prio, n.addr ?? null, !!n.replication, !!n.maintenance, !!n.reserve, n.ramMb ?? null]));
  return key(a) === key(b);
}

function sameTable(specs: readonly VmSpec[], owners: ReadonlyArray<[VmId, NodeId | null, number]>, curSpecs: ReadonlyMap<VmId, VmSpec>, curOwners: ReadonlyMap<VmId, Owner>): boolean {
  if (specs.length !== curSpecs.size || owners.length !== curOwners.size) return false;
  for (const s of specs) if (JSON.stringify(s) !== JSON.stringify(curSpecs.get(s.id))) return false;
  for (const [vm, node, epoch] of owners) {
    const c = curOwners.get(vm);
    if (c === undefined || c.node !== node || c.epoch !== epoch) return false;
  }
  return true;
}


// The replicated part of the core: state that every member of a CPG view computes identically,
// because it is a deterministic function of the CPG-ordered stream only (membership changes and
// messages, never local clocks, quorum notifications or storage reads).
//
// After each membership change the view is "unsynced" until every member's hello is delivered
// (the round). The round merges what the members know, so a newcomer and an old member end up
// with the same master, term and VM owners.

import { dbWhy, electMaster, resolveRound, startupWait, type Candidate, type RoundHello } from './election.ts';
import type { CpgMessage, NodeId, OwnerTriple, ReportFields, VmId, VmSpec } from './types.ts';

export type HelloMsg = Extract<CpgMessage, { kind: 'hello' }>;

/**
 * A member's latest report; grace 0 = past it (or an older agent that does not send it). The DB
 * fields stay optional: absent (undefined) = not judged, i.e. eligible.
 */
export type MemberReport = Required<Omit<ReportFields, 'dbEligible' | 'dbReason'>> & Pick<ReportFields, 'dbEligible' | 'dbReason'>;

function memberReport(
  m: Omit<MemberReport, 'graceLeftMs' | 'quorumMembers' | 'starting' | 'leaseTerms'> & { graceLeftMs?: number; quorumMembers?: NodeId[]; starting?: VmId[]; leaseTerms?: boolean },
): MemberReport {
  // One object shape for every report (this runs for every report and hello).
  return {
    prio: m.prio,
    status: m.status,
    running: m.running,
    configVersion: m.configVersion,
    nodeCount: m.nodeCount,
    failback: m.failback,
    graceLeftMs: m.graceLeftMs ?? 0,
    quorumMembers: m.quorumMembers ?? [],
    starting: m.starting ?? [],
    leaseTerms: m.leaseTerms ?? false,
    dbEligible: m.dbEligible,
    dbReason: m.dbReason,
  };
}

export interface Owner {
  node: NodeId | null;
  epoch: number;
}

/**
 * A maintenance drain in progress: the master asked `node` (owner at `epoch`) to stop the VM;
 * `stopped` once that node confirmed it (ordered), which is what allows moving it elsewhere
 * while the node is still a good member. Forgotten on every membership change and master change
 * (the owner may then start the VM again; the master drains it anew).
 */
export interface Drain {
  node: NodeId;
  epoch: number;
  term: number;
  stopped: boolean;
}

/** What happened, for the local part of the core to act on. */
export type ReplicaNote =
  | { kind: 'round-started'; members: NodeId[] }
  | { kind: 'round-complete'; hellos: Array<HelloMsg & { from: NodeId }> }
  | { kind: 'master'; master: NodeId | null; term: number; reason: string }
  | { kind: 'renewed'; from: NodeId; sentAt: number; leaseMs?: number; releaseBudgetMs?: number }
  | { kind: 'released'; from: NodeId; term: number }
  | { kind: 'table' }
  | { kind: 'owner-changed'; vm: VmId; from: NodeId | null; to: NodeId; epoch: number; reason: string }
  | { kind: 'start-intent'; from: NodeId; vm: VmId; epoch: number; sentAt: number }
  | { kind: 'drain'; vm: VmId; node: NodeId; epoch: number; stopped: boolean; reason: string }
  | { kind: 'elect-requested'; from: NodeId; reason: string }
  /** An ordered event would have elected a fresh master, but the startup grace holds it back. */
  | { kind: 'deferred'; reason: string }
  | { kind: 'ignored'; reason: string };

const sortedUnique = (ids: readonly NodeId[]): NodeId[] => [...new Set(ids)].sort((a, b) => a - b);

function sameList(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Replica {
  members: NodeId[] = [];
  private memberSet = new Set<NodeId>();
  synced = false;
  private round: { waiting: Set<NodeId>; hellos: Map<NodeId, HelloMsg> } | null = null;
  term = 0;
  master: NodeId | null = null;
  majority = false;
  clusterSize = 1;
  reports = new Map<NodeId, MemberReport>();
  specs = new Map<VmId, VmSpec>();
  owners = new Map<VmId, Owner>();
  /** The master's VM table has been delivered in this view. */
  tableKnown = false;
  /** Maintenance drains in progress (see Drain). */
  draining = new Map<VmId, Drain>();

  /** `term`: where terms start (a restarted agent's persisted term: terms keep growing). */
  constructor(
    readonly local: NodeId,
    term = 0,
  ) {
    this.term = term;
  }

  isMember(id: NodeId): boolean {
    return this.memberSet.has(id);
  }

  /** A member of the view is an older agent that ignores the lease terms in renewals. */
  hasLegacyMember(): boolean {
    for (const id of this.members) if (this.reports.get(id)?.leaseTerms === false) return true;
    return false;
  }

  /** In the view and its latest ordered report says 'member'. */
  isGoodMember(id: NodeId): boolean {
    return this.memberSet.has(id) && this.reports.get(id)?.status === 'member';
  }

  ownerOf(vm: VmId): Owner {
    return this.owners.get(vm) ?? { node: null, epoch: 0 };
  }

  ownerTriples(): OwnerTriple[] {
    return [...this.owners].map(([vm, o]) => [vm, o.node, o.epoch] as OwnerTriple);
  }

  /** Failback as configured by the member with the newest config (ties: lowest nodeid). */
  failback(): boolean {
    let best: { v: number; id: NodeId; fb: boolean } | null = null;
    for (const [id, r] of this.reports) {
      if (!this.memberSet.has(id)) continue;
      if (best === null || r.configVersion > best.v || (r.configVersion === best.v && id < best.id)) best = { v: r.configVersion, id, fb: r.failback };
    }
    return best?.fb ?? false;
  }

  onMembership(members: readonly NodeId[]): ReplicaNote[] {
    this.members = sortedUnique(members);
    this.memberSet = new Set(this.members);
    this.synced = false;
    this.tableKnown = false;
    this.draining.clear();
    // The master and owners stay as they were until the round decides; nothing acts on them
    // while unsynced. Reports are rebuilt from the hellos.
    this.round = this.memberSet.has(this.local) ? { waiting: new Set(this.members), hellos: new Map() } : null;
    return [{ kind: 'round-started', members: this.members }];
  }

  onMessage(from: NodeId, msg: CpgMessage): ReplicaNote[] {
    if (!this.memberSet.has(from)) return [{ kind: 'ignored', reason: `${msg.kind} from n${from}, which is not in the view` }];
    if (msg.kind === 'hello') return this.onHello(from, msg);
    if (!this.synced) return []; // the round's outcome supersedes anything sent before it
    switch (msg.kind) {
      case 'renew':
        if (from === this.master && msg.term === this.term && this.majority) {
          const note: ReplicaNote = { kind: 'renewed', from, sentAt: msg.sentAt };
          if (msg.leaseMs !== undefined) note.leaseMs = msg.leaseMs;
          if (msg.releaseBudgetMs !== undefined) note.releaseBudgetMs = msg.releaseBudgetMs;
          return [note];
        }
        return [];
      case 'report': {
        this.reports.set(from, memberReport(msg));
        const db = msg.dbEligible === false ? `, ${dbWhy(msg.dbReason)}` : '';
        return this.reelect(false, `n${from} reported ${msg.status}, prio ${msg.prio}${db}`);
      }
      case 'elect':
        return [{ kind: 'elect-requested', from, reason: msg.reason }, ...this.reelect(true, `election requested by n${from}: ${msg.reason}`)];
      case 'released':
        // Only a deposed master's confirmation from this very term counts: if the sender has
        // been master again since it sent this, its renewals (and lease) are newer than it.
        if (msg.term !== this.term || from === this.master) return [];
        return [{ kind: 'released', from, term: msg.term }];
      case 'vm-table':
        if (from !== this.master || msg.term !== this.term) return [{ kind: 'ignored', reason: `vm-table from n${from} term ${msg.term}: not the master of term ${this.term}` }];
        this.specs = new Map(msg.vms.map((v) => [v.id, v]));
        this.owners = new Map(msg.owners.map(([vm, node, epoch]) => [vm, { node, epoch }]));
        this.tableKnown = true;
        return [{ kind: 'table' }];
      case 'assign':
        return this.onAssign(from, msg);
      case 'start':
        return [{ kind: 'start-intent', from, vm: msg.vm, epoch: msg.epoch, sentAt: msg.sentAt }];
      case 'drain':
        return this.onDrain(from, msg);
      case 'drained': {
        const d = this.draining.get(msg.vm);
        if (d === undefined || d.node !== from || d.epoch !== msg.epoch || d.term !== msg.term || d.stopped) return [];
        d.stopped = true;
        return [{ kind: 'drain', vm: msg.vm, node: from, epoch: d.epoch, stopped: true, reason: `n${from} stopped ${msg.vm} for the drain` }];
      }
    }
  }

  private onHello(from: NodeId, msg: HelloMsg): ReplicaNote[] {
    const round = this.round;
    // A hello for another view (sent before the sender saw this one) or a duplicate: the
    // sender also got this membership change and sends a matching hello.
    if (round === null || !round.waiting.has(from) || !sameList(sortedUnique(msg.members), this.members)) return [];
    round.hellos.set(from, msg);
    round.waiting.delete(from);
    return round.waiting.size === 0 ? this.completeRound(round.hellos) : [];
  }

  private completeRound(helloMap: Map<NodeId, HelloMsg>): ReplicaNote[] {
    const hellos = [...helloMap].sort((a, b) => a[0] - b[0]).map(([from, h]) => ({ ...h, from }));
    this.reports = new Map(hellos.map((h) => [h.from, memberReport(h)]));
    const roundHellos: RoundHello[] = hellos.map((h) => ({
      from: h.from,
      term: h.term,
      claim: h.claim,
      majority: h.majority,
      prio: h.prio,
      status: h.status,
      nodeCount: h.nodeCount,
      graceLeftMs: h.graceLeftMs ?? 0,
      quorumMembers: h.quorumMembers ?? [],
      dbEligible: h.dbEligible,
      dbReason: h.dbReason,
    }));
    const result = resolveRound(this.members, roundHellos, { failback: this.failback() });
    this.term = result.term;
    this.master = result.master;
    this.majority = result.majority;
    this.clusterSize = result.clusterSize;
    // VM owners: the newest epoch anyone knows wins (epochs only grow, only a master bumps them).
    const owners = new Map<VmId, Owner>();
    for (const h of hellos) {
      for (const [vm, node, epoch] of h.owners) {
        const cur = owners.get(vm);
        if (cur === undefined || epoch > cur.epoch) owners.set(vm, { node, epoch });
      }
    }
    this.owners = owners;
    this.specs = new Map(); // the master sends its table next
    this.synced = true;
    this.round = null;
    return [
      { kind: 'round-complete', hellos },
      { kind: 'master', master: this.master, term: this.term, reason: result.reason },
    ];
  }

  /** Re-run the election after an ordered event (report, elect request). */
  private reelect(force: boolean, cause: string): ReplicaNote[] {
    if (!this.majority) return [];
    const good = this.members.filter((id) => this.isGoodMember(id));
    const candidates: Candidate[] = good.map((id) => {
      const r = this.reports.get(id)!;
      return { nodeid: id, prio: r.prio, dbEligible: r.dbEligible, dbReason: r.dbReason };
    });
    const current = this.master !== null && this.isGoodMember(this.master) ? this.master : null;
    const result = electMaster(good, candidates, current, { failback: force || this.failback() });
    // Startup grace: only while there is no master at all in this view (never delays a failover);
    // an explicit elect request overrides it.
    if (!force && this.master === null && result.master !== null) {
      const winner = candidates.find((c) => c.nodeid === result.master) ?? null;
      const wait = startupWait(this.members, this.members.map((id) => ({ from: id, ...this.reports.get(id) })), winner);
      if (wait !== null) return [{ kind: 'deferred', reason: `${cause}: ${wait}` }];
    }
    if (result.master === this.master) return [];
    this.master = result.master;
    this.term += 1;
    this.draining.clear();
    return [{ kind: 'master', master: this.master, term: this.term, reason: `${cause}: ${result.reason}` }];
  }

  private onAssign(from: NodeId, msg: Extract<CpgMessage, { kind: 'assign' }>): ReplicaNote[] {
    const why = (r: string): ReplicaNote[] => [{ kind: 'ignored', reason: `assign ${msg.vm} -> n${msg.to} (epoch ${msg.epoch}) ignored: ${r}` }];
    if (from !== this.master || msg.term !== this.term) return why(`n${from} is not the master of term ${this.term}`);
    if (!this.majority || !this.tableKnown) return why('view has no majority or no VM table');
    if (!this.specs.has(msg.vm)) return why('unknown VM');
    const cur = this.ownerOf(msg.vm);
    if (cur.node !== msg.from || cur.epoch !== msg.fromEpoch) return why(`owner is now n${cur.node} epoch ${cur.epoch}`);
    // A good member keeps its VMs, except one it stopped for a maintenance drain (ordered proof).
    const d = this.draining.get(msg.vm);
    const drainedHere = d !== undefined && d.stopped && d.node === msg.from && d.epoch === msg.fromEpoch;
    if (msg.from !== null && this.isGoodMember(msg.from) && !drainedHere) return why(`n${msg.from} is a good member again`);
    if (!this.isGoodMember(msg.to)) return why(`n${msg.to} is not a good member`);
    this.owners.set(msg.vm, { node: msg.to, epoch: msg.epoch });
    this.draining.delete(msg.vm);
    return [{ kind: 'owner-changed', vm: msg.vm, from: msg.from, to: msg.to, epoch: msg.epoch, reason: msg.reason }];
  }

  private onDrain(from: NodeId, msg: Extract<CpgMessage, { kind: 'drain' }>): ReplicaNote[] {
    const why = (r: string): ReplicaNote[] => [{ kind: 'ignored', reason: `drain ${msg.vm} from n${msg.node} ignored: ${r}` }];
    if (from !== this.master || msg.term !== this.term) return why(`n${from} is not the master of term ${this.term}`);
    if (!this.majority || !this.tableKnown) return why('view has no majority or no VM table');
    if (!this.specs.has(msg.vm)) return why('unknown VM');
    const cur = this.ownerOf(msg.vm);
    if (cur.node !== msg.node || cur.epoch !== msg.epoch) return why(`owner is now n${cur.node} epoch ${cur.epoch}`);
    if (!this.isGoodMember(msg.node)) return why(`n${msg.node} is not a good member (recovery handles it)`);
    if (this.draining.has(msg.vm)) return why('already draining');
    this.draining.set(msg.vm, { node: msg.node, epoch: msg.epoch, term: msg.term, stopped: false });
    return [{ kind: 'drain', vm: msg.vm, node: msg.node, epoch: msg.epoch, stopped: false, reason: msg.reason }];
  }
}

// The master's resources (cluster IP, panel, database role) and the lease that guards them.
//
// - The master multicasts `renew` every leaseRenewMs; its lease runs from the send time of its
//   last renewal delivered back to it in a majority view. Expired lease -> release at once.
// - The database is primary only together with the IP and panel: every step-down (and the agent
//   start) demotes it first (`DemoteDatabase`: read-only at once), and `released` waits for it.
// - The lease outlasts a corosync membership transition (leaseMs >= transitionLeaseMs), so a
//   member's failure does not make the master step down: it holds while corosync forms the new
//   membership, and renews at once when the new view's round has kept it as master.
// - Every node keeps "evidence": for each possible other holder, when it is certainly gone
//   (renewal seen + leaseMs + releaseBudgetMs + leaseMarginMs, with the longer of the holder's
//   announced terms and our own). A new master assigns the IP only after all of that, unless the
//   old holder confirms its release (`released`).

import type { CoreContext } from './context.ts';
import { holderGoneAt, holderTerms, ipSafeAt, LEGACY_LEASE_MS, leaseAgeMs, leaseFresh, ownTerms, type LeaseTerms } from './lease.ts';
import type { HelloMsg } from './replicated.ts';
import type { CoreAction, DecisionKind, NodeId, SelfStatus } from './types.ts';

/** What the role needs to know about the node itself. */
export interface LocalFacts {
  readonly quorate: boolean | null;
  readonly selfStatus: SelfStatus;
  readonly selfReason: string;
  quorumLostReason(): string;
}

export class ClusterIpRole {
  // Lease
  lastRenewalSentAt: number | null = null;
  /** The terms our renewal at lastRenewalSentAt announced (undefined: none yet). */
  private lastRenewalTerms: LeaseTerms | undefined = undefined;
  private renewalTerm = -1;
  private lastRenewSent = -Infinity;
  private lastRenewalSeenAt: number | null = null;
  private lastRenewalBy: NodeId = 0;
  /** The terms the last renewal we saw (anyone's) announced, for our hello. */
  private lastRenewalSeenTerms: Partial<LeaseTerms> = {};
  /** Possible other holders (0 = unknown holder) -> when they are certainly gone. */
  readonly evidence = new Map<NodeId, number>();

  // What we asked for, and what may still be held until a release is confirmed.
  wantIp = false;
  wantPanel = false;
  private ipMaybeHeld = true;
  private panelMaybeHeld = true;
  /** IP / panel actions emitted and not yet answered: only the last answer tells the state. */
  private ipOps = 0;
  private panelOps = 0;
  private ranPanelBefore = false;
  private owedReleased = false;
  private acquireRetryAt = 0;
  private dbPrimary = false;
  private dbFollowing: NodeId | null = null;
  /** The database may still be writable here (promoted, or unknown at startup) until a demote is confirmed. */
  private dbMaybePrimary = true;
  /** DB role actions (promote/demote) emitted and not yet answered: only the last answer tells the state. */
  private dbOps = 0;
  private demoteRetryAt = Infinity;
  /** The master as last decided by the ordered stream (to notice our own demotion). */
  private decidedMaster: NodeId | null = null;

  constructor(private readonly ctx: CoreContext) {}

  /** What the watchdog covers: the IP only (lease.ts watchdogDeadline); `released` waits for all. */
  get mayHoldIp(): boolean {
    return this.ipMaybeHeld;
  }

  /**
   * The terms our renewals announce: our settings, capped at LEGACY_LEASE_MS while an older agent
   * (which ignores announced terms) is in the view.
   */
  private currentTerms(): LeaseTerms {
    const { s, rep } = this.ctx;
    const leaseMs = rep.hasLegacyMember() ? Math.min(s.leaseMs, LEGACY_LEASE_MS) : s.leaseMs;
    return { leaseMs, releaseBudgetMs: s.releaseBudgetMs };
  }

  /** What our own lease runs on: our last renewal's announced terms, or less (see ownTerms). */
  ownTerms(): LeaseTerms {
    return ownTerms(this.lastRenewalTerms, this.currentTerms());
  }

  leaseFresh(): boolean {
    return leaseFresh(this.lastRenewalSentAt, this.ctx.now, this.ownTerms());
  }

  ipSafeInMs(): number {
    return Math.max(0, ipSafeAt(this.evidence, this.ctx.id) - this.ctx.now);
  }

  /** For our hello: how long ago we saw a renewal, and whose. */
  helloLease(): { msSinceRenewal: number; renewedBy: NodeId | null; renewLeaseMs?: number; renewReleaseBudgetMs?: number } {
    const { now, startedAt } = this.ctx;
    const out: { msSinceRenewal: number; renewedBy: NodeId | null; renewLeaseMs?: number; renewReleaseBudgetMs?: number } = {
      msSinceRenewal: Math.max(0, Math.round(now - (this.lastRenewalSeenAt ?? startedAt))),
      renewedBy: this.lastRenewalSeenAt === null ? null : this.lastRenewalBy,
    };
    if (this.lastRenewalSeenAt !== null) {
      const t = this.lastRenewalSeenTerms;
      if (t.leaseMs !== undefined) out.renewLeaseMs = t.leaseMs;
      if (t.releaseBudgetMs !== undefined) out.renewReleaseBudgetMs = t.releaseBudgetMs;
    }
    return out;
  }

  private emit(a: CoreAction): void {
    if (a.type === 'AssignClusterIp' || a.type === 'ReleaseClusterIp') this.ipOps += 1;
    if (a.type === 'StartPanel' || a.type === 'StopPanel') this.panelOps += 1;
    if (a.type === 'PromoteDatabase' || a.type === 'DemoteDatabase') this.dbOps += 1;
    this.ctx.out.act(a);
  }

  /** First step of the agent: we cannot know what an earlier run held. */
  start(): void {
    this.evidence.set(0, holderGoneAt(this.ctx.now, this.ctx.s));
    this.emit({ type: 'DemoteDatabase', reason: 'startup: not master yet; make the database read-only (an earlier run may have left it primary)' });
    if (this.ctx.leftoversReleased) {
      // Already done before our first event: no release race against the old watchdog deadline.
      this.ipMaybeHeld = this.panelMaybeHeld = false;
      return;
    }
    this.emit({ type: 'ReleaseClusterIp', reason: 'startup: not master yet; remove any address left by an earlier run' });
    this.emit({ type: 'StopPanel', reason: 'startup: not master yet; stop any panel left by an earlier run' });
  }

  /** Checked before anything else in every step (e.g. the first event after SIGCONT). */
  enforceLease(): void {
    if (!(this.wantIp || this.wantPanel) || this.leaseFresh() || this.ctx.sabotage === 'no-lease') return;
    const age = leaseAgeMs(this.lastRenewalSentAt, this.ctx.now);
    this.stepDown(`lease expired: last renewal ${age === null ? 'never' : `${age} ms ago`} > leaseMs ${this.ownTerms().leaseMs}`, 'lease');
  }

  stepDown(reason: string, kind: DecisionKind): void {
    // The database first: a partitioned old primary must stop taking writes at once.
    if (this.dbPrimary) {
      this.dbPrimary = false;
      this.emit({ type: 'DemoteDatabase', reason });
      this.ctx.out.decide(kind, `database read-only: ${reason}`);
    }
    if (this.wantIp) this.emit({ type: 'ReleaseClusterIp', reason });
    if (this.wantPanel) this.emit({ type: 'StopPanel', reason });
    if (this.wantIp || this.wantPanel) {
      this.ctx.out.decide(kind, `releasing cluster IP and panel: ${reason}`);
      this.owedReleased = true;
    }
    this.wantIp = false;
    this.wantPanel = false;
  }

  // ---- ordered events

  /** A round completed: bound the renewals other members saw that we did not. */
  onRoundHellos(hellos: ReadonlyArray<HelloMsg & { from: NodeId }>): void {
    for (const h of hellos) {
      const holder = h.renewedBy ?? 0;
      if (h.from === this.ctx.id || holder === this.ctx.id) continue;
      const announced = { leaseMs: h.renewLeaseMs, releaseBudgetMs: h.renewReleaseBudgetMs };
      const at = holderGoneAt(this.ctx.now - h.msSinceRenewal, holderTerms(announced, this.ctx.s));
      if (at > (this.evidence.get(holder) ?? -Infinity)) this.evidence.set(holder, at);
    }
  }

  /** A renewal of the master was delivered; `announced`: the terms it carried (older agents: none). */
  onRenewed(from: NodeId, sentAt: number, announced: Partial<LeaseTerms>): void {
    const { ctx } = this;
    this.lastRenewalSeenAt = ctx.now;
    this.lastRenewalBy = from;
    this.lastRenewalSeenTerms = announced;
    if (from === ctx.id) {
      if (sentAt <= ctx.now && sentAt > (this.lastRenewalSentAt ?? -Infinity)) {
        this.lastRenewalSentAt = sentAt;
        // Our own renewals always carry their terms; the fallback only serves a hand-made message.
        this.lastRenewalTerms = { leaseMs: announced.leaseMs ?? ctx.s.leaseMs, releaseBudgetMs: announced.releaseBudgetMs ?? ctx.s.releaseBudgetMs };
      }
      this.renewalTerm = ctx.rep.term;
    } else {
      this.evidence.set(from, holderGoneAt(ctx.now, holderTerms(announced, ctx.s)));
    }
  }

  onReleased(from: NodeId): void {
    if (from !== this.ctx.id && this.evidence.delete(from)) this.ctx.out.decide('lease', `n${from} confirmed it released the cluster IP and panel`);
  }

  onMasterDecided(master: NodeId | null): void {
    const prev = this.decidedMaster;
    this.decidedMaster = master;
    if (prev === this.ctx.id && master !== this.ctx.id) this.stepDown(master === null ? 'no master in this view' : `n${master} is master now`, 'election');
    // Renew at once when we become master, and also when a round keeps us master: after a
    // membership transition our lease is as old as the transition is long (nothing was delivered
    // meanwhile), so the first renewal of the new view must not wait another leaseRenewMs.
    if (master === this.ctx.id) this.lastRenewSent = -Infinity;
  }

  /** Results of our IP / panel actions. */
  onResult(a: CoreAction, ok: boolean, error: string | undefined): void {
    const { ctx } = this;
    if (a.type === 'PromoteDatabase' || a.type === 'DemoteDatabase') return this.onDbResult(a.type, ok, error);
    const mine = a.type === 'AssignClusterIp' || a.type === 'ReleaseClusterIp' || a.type === 'StartPanel' || a.type === 'StopPanel';
    if (!mine) return;
    if (!ok) ctx.out.decide('action', `${a.type} failed: ${error ?? 'error'}`);
    switch (a.type) {
      case 'ReleaseClusterIp':
        this.ipOps = Math.max(0, this.ipOps - 1);
        if (ok && !this.wantIp && this.ipOps === 0) this.ipMaybeHeld = false;
        return;
      case 'StopPanel':
        this.panelOps = Math.max(0, this.panelOps - 1);
        if (ok && !this.wantPanel && this.panelOps === 0) this.panelMaybeHeld = false;
        return;
      case 'AssignClusterIp':
      case 'StartPanel':
        if (a.type === 'AssignClusterIp') this.ipOps = Math.max(0, this.ipOps - 1);
        else this.panelOps = Math.max(0, this.panelOps - 1);
        if (!ok) {
          this.stepDown(`${a.type} failed; retry in ${ctx.s.vmRetryMs} ms`, 'action');
          this.acquireRetryAt = ctx.now + ctx.s.vmRetryMs;
        }
        return;
      default:
        return;
    }
  }

  private onDbResult(type: 'PromoteDatabase' | 'DemoteDatabase', ok: boolean, error: string | undefined): void {
    const { ctx } = this;
    this.dbOps = Math.max(0, this.dbOps - 1);
    if (type === 'PromoteDatabase') return; // failures are logged by the core; the effect layer retries
    if (ok) {
      if (!this.dbPrimary && this.dbOps === 0) this.dbMaybePrimary = false;
      return;
    }
    ctx.out.decide('action', `DemoteDatabase failed: ${error ?? 'error'}; retry in ${ctx.s.vmRetryMs} ms`);
    if (!this.dbPrimary) this.demoteRetryAt = ctx.now + ctx.s.vmRetryMs;
  }

  // ---- every step

  reconcile(local: LocalFacts): void {
    const { ctx } = this;
    const { rep, out, now, s, id } = ctx;
    const amMaster = rep.synced && rep.master === id && rep.majority;
    if (amMaster && now - this.lastRenewSent >= s.leaseRenewMs) {
      this.lastRenewSent = now;
      out.send({ v: 1, kind: 'renew', term: rep.term, sentAt: now, ...this.currentTerms() }, 'lease renewal');
    }

    // While a round runs (unsynced) the master keeps what it holds: its lease decides.
    const stillMaster = rep.synced ? amMaster : rep.master === id;
    if (this.wantIp || this.wantPanel) {
      let why = '';
      if (local.quorate !== true) why = local.quorumLostReason();
      else if (local.selfStatus !== 'member') why = `status ${local.selfStatus}: ${local.selfReason}`;
      else if (!stillMaster) why = rep.master === null ? 'no master in this view' : `n${rep.master} is master now`;
      if (why !== '') this.stepDown(why, 'election');
    }

    if (amMaster && !this.wantIp && local.quorate === true && local.selfStatus === 'member' && now >= this.acquireRetryAt) {
      const leaseOk = this.leaseFresh() && this.renewalTerm === rep.term;
      const safe = now >= ipSafeAt(this.evidence, id) || ctx.sabotage === 'no-ip-wait';
      if (leaseOk && safe) this.acquire();
    }

    if (!this.dbPrimary && now >= this.demoteRetryAt) {
      this.demoteRetryAt = Infinity;
      this.emit({ type: 'DemoteDatabase', reason: 'retry: the last demote failed and this node is not the master' });
    }
    if (rep.synced && rep.master !== null && rep.master !== id && this.dbFollowing !== rep.master) {
      this.dbFollowing = rep.master;
      this.dbPrimary = false;
      out.act({ type: 'FollowDatabase', master: rep.master, reason: `n${rep.master} is master (term ${rep.term})` });
    }
    // Holding again: nothing to confirm. (Not merely "master": a step-down on quorum loss happens
    // while the old view, where we are master, is still the current one, and still owes it.)
    if (this.owedReleased && this.wantIp) this.owedReleased = false;
    if (this.owedReleased && !amMaster && !this.ipMaybeHeld && !this.panelMaybeHeld && !this.dbMaybePrimary && rep.synced && rep.isMember(id)) {
      this.owedReleased = false;
      out.send({ v: 1, kind: 'released', term: rep.term }, 'cluster IP and panel released, database read-only: the new master need not wait for our lease');
    }
  }

  private acquire(): void {
    const { ctx } = this;
    const reason = `n${ctx.id} is master (term ${ctx.rep.term}), quorate, lease fresh, previous holder's lease expired`;
    this.wantIp = this.ipMaybeHeld = true;
    this.wantPanel = this.panelMaybeHeld = true;
    ctx.out.decide('lease', `taking the cluster IP and panel: ${reason}`);
    this.emit({ type: 'AssignClusterIp', reason });
    this.emit({ type: 'StartPanel', kind: this.ranPanelBefore ? 'restarted' : 'moved', reason });
    this.ranPanelBefore = true;
    if (!this.dbPrimary) {
      this.dbPrimary = this.dbMaybePrimary = true;
      this.dbFollowing = null;
      this.demoteRetryAt = Infinity;
      this.emit({ type: 'PromoteDatabase', term: ctx.rep.term, reason });
    }
  }
}

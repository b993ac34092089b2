// The simulated database: a copy per node (a log of writes, each with its epoch and position),
// replication from a source to its replicas within a partition, a client writing through the
// cluster IP, and what the agent's database effects do for PromoteDatabase / FollowDatabase /
// DemoteDatabase (effects/db/replication.ts), with the decisions of core/db-role.ts:
//  - promote: survey the copies that answer (a majority, or fail), fence other writable servers,
//    freeze what replicas receive, chooseSource() by (epoch, GTID position), catch up from it,
//    write the epoch row (nextEpoch(seen, term)), point the others at us and become writable only
//    once a majority has the epoch row (and no newer role action came meanwhile);
//  - follow: read-only at once, wait until the master is writable, then replicate from it; a copy
//    that is not a prefix of the master's history is rebuilt from it (what it loses is recorded);
//  - a failed action is retried every dbRetryMs until a newer one replaces it; after a mariadbd
//    restart the last one is applied again (the DB watch);
//  - the effects feed `db-health` to the core when eligibility changes.
// The agent-driven steps stop while the agent is paused; mariadbd, replication and the panel's
// write barrier go on. Log entries are shared objects: the same entry at position k in two logs
// means the same history up to k (logs only grow by appending or by copying a prefix).

import { acknowledged, chooseSource, copiesQuorum, nextEpoch, type DbCopy } from '../core/db-role.ts';
import { containsPos } from '../core/gtid.ts';
import type { CoreAction, NodeId } from '../core/types.ts';
import { ackLostProblem, discardProblem, historyProblem, lateAckProblem, splitPrimaryProblem } from './invariants.ts';
import type { SimNode } from './model.ts';
import type { World } from './world.ts';

/** A transaction in a copy's history: a client write or a promotion's epoch row. */
export interface DbEntry {
  id: string;
  /** The epoch of the primary that wrote it (an epoch row: its own epoch). */
  epoch: number;
  /** Position in the history (1-based): the GTID sequence number. */
  seq: number;
  /** The server that wrote it (GTID server id). */
  by: NodeId;
  epochRow: boolean;
  /** A majority had it and the client was told so. */
  acked?: boolean;
  /** Some copy threw it away when it was rebuilt. */
  discarded?: boolean;
}

export type DbEv =
  | { what: 'client' }
  | { what: 'up'; node: NodeId; run: number }
  | { what: 'repl'; node: NodeId; stream: number }
  | { what: 'ack'; node: NodeId; from: NodeId; hist: number; len: number }
  | { what: 'op'; node: NodeId; op: number }
  | { what: 'retry'; node: NodeId; gen: number }
  | { what: 'rebuild'; node: NodeId; token: number };

type RoleAction = Extract<CoreAction, { type: 'PromoteDatabase' | 'DemoteDatabase' | 'FollowDatabase' }>;

interface Item {
  action: RoleAction;
  gen: number;
  /** The core got the first attempt's outcome (retries are not answered). */
  answered: boolean;
}

interface Op {
  id: number;
  item: Item;
  agentGen: number;
  phase: 'begin' | 'wait' | 'check' | 'catchup' | 'majority';
  deadline: number;
  reached: NodeId[];
  source: NodeId;
  target: DbEntry | null;
  targetLen: number;
  seen: number[];
  diverged: NodeId[];
  epochSeq: number;
}

export interface DbState {
  up: boolean;
  /** Bumped on every mariadbd stop: a pending start of an older run is void. */
  run: number;
  log: DbEntry[];
  /** Epoch of the last epoch row in the log. */
  epoch: number;
  /** Bumped when the log is replaced (rebuild): confirmations of the old history are void. */
  hist: number;
  writable: boolean;
  /** Replicating from (IO thread running); null = stopped. */
  source: NodeId | null;
  stream: number;
  replScheduled: boolean;
  /** Primary side: how much of our log each replica confirmed. */
  confirmed: Map<NodeId, number>;
  /** Client writes accepted here, waiting for a majority (the panel's barrier). */
  pending: DbEntry[];
  /** Found not to be a prefix of this primary's history: must be rebuilt from it. */
  diverged: NodeId | null;
  rebuilding: NodeId | null;
  rebuildToken: number;
  /** The last promotion failed because of this copy (behind and stuck, or diverged). */
  promoteFailed: string | null;
  // The agent's DB effect layer (lost with the agent).
  actGen: number;
  current: Item | null;
  queue: Item[];
  busy: boolean;
  op: Op | null;
  healthFed: string | null;
}

function newDbState(): DbState {
  return {
    up: false,
    run: 0,
    log: [],
    epoch: 0,
    hist: 0,
    writable: false,
    source: null,
    stream: 0,
    replScheduled: false,
    confirmed: new Map(),
    pending: [],
    diverged: null,
    rebuilding: null,
    rebuildToken: 0,
    promoteFailed: null,
    actGen: 0,
    current: null,
    queue: [],
    busy: false,
    op: null,
    healthFed: null,
  };
}

/** Is `a` a prefix of `b` (the same history up to a's end)? */
export function isPrefix(a: readonly DbEntry[], b: readonly DbEntry[]): boolean {
  return a.length === 0 || (b.length >= a.length && b[a.length - 1] === a[a.length - 1]);
}

export class Databases {
  readonly copies: DbState[] = [];
  /** Every write the client was told is durable, and the one furthest in the history. */
  lastAcked: DbEntry | null = null;
  readonly discarded: Array<{ node: NodeId; entry: DbEntry; at: number }> = [];
  private readonly ids: NodeId[];
  private readonly need: number;
  /** Re-clones in progress: the source's history when the dump was taken. */
  private readonly snapshots = new Map<NodeId, { log: DbEntry[]; run: number }>();
  private writeSeq = 0;
  private opSeq = 0;
  private tokenSeq = 0;

  constructor(private readonly w: World) {
    this.ids = w.nodes.map((n) => n.id);
    this.need = copiesQuorum(this.ids.length);
    for (let i = 0; i <= this.ids.length; i++) this.copies.push(newDbState());
    w.schedule(w.rand(w.t.clientMs), { kind: 'db', ev: { what: 'client' } });
  }

  copy(id: NodeId): DbState {
    return this.copies[id]!;
  }

  private get sabotage(): string | undefined {
    return this.w.cfg.sabotage;
  }

  /** Database traffic between two nodes: both up, links up, same side of a partition. */
  private linked(a: SimNode, b: SimNode): boolean {
    if (a === b) return a.up;
    return a.up && b.up && a.ctrlUp && b.ctrlUp && a.group === b.group;
  }

  private later(ms: number, ev: DbEv): void {
    this.w.schedule(this.w.now + ms, { kind: 'db', ev });
  }

  // -------------------------------------------------------------------------
  // Life cycle

  /** mariadbd starts with the node (before the agent), read-only, replication stopped. */
  boot(n: SimNode): void {
    const d = this.copy(n.id);
    d.up = true;
    d.writable = false;
  }

  powerOff(n: SimNode): void {
    const d = this.copy(n.id);
    this.stop(n, d);
    this.agentStopped(n);
  }

  /** mariadbd dies (the fault "kill mariadbd"); it comes back read-only after `ms`. */
  kill(n: SimNode, ms: number): void {
    const d = this.copy(n.id);
    if (!n.up || !d.up) return;
    this.w.count('mariadbd killed');
    this.w.log(`n${n.id} mariadbd killed (back in ${ms} ms)`);
    this.stop(n, d);
    this.later(ms, { what: 'up', node: n.id, run: d.run });
    this.updateHealth(n);
  }

  private stop(n: SimNode, d: DbState): void {
    d.up = false;
    d.run += 1;
    d.writable = false;
    this.setSource(n.id, null);
    this.dropPending(d);
    if (d.rebuilding !== null) d.rebuilding = null;
  }

  /** Heal: mariadbd runs again everywhere. */
  heal(): void {
    for (const n of this.w.nodes) if (n.up && !this.copy(n.id).up) this.onUp(n.id, this.copy(n.id).run);
  }

  agentStarted(n: SimNode): void {
    this.copy(n.id).healthFed = null;
    this.updateHealth(n);
  }

  /** The agent died: its DB effect layer (queue, retries, rebuild, what it knew) is gone. */
  agentStopped(n: SimNode): void {
    const d = this.copy(n.id);
    d.actGen += 1;
    d.current = null;
    d.queue = [];
    d.busy = false;
    d.op = null;
    d.rebuildToken = 0;
    d.rebuilding = null;
    d.diverged = null;
    d.promoteFailed = null;
    d.healthFed = null;
  }

  /** The panel stopped: requests waiting in its write barrier fail. */
  panelStopped(n: SimNode): void {
    this.dropPending(this.copy(n.id));
  }

  private dropPending(d: DbState): void {
    if (d.pending.length === 0) return;
    this.w.count('db writes failed before a majority had them');
    d.pending = [];
  }

  // -------------------------------------------------------------------------
  // Eligibility (db-health)

  health(id: NodeId): { eligible: boolean; reason: string } {
    const d = this.copy(id);
    if (!d.up) return { eligible: false, reason: 'mariadbd down' };
    if (d.rebuilding !== null) return { eligible: false, reason: `diverged, being re-cloned from n${d.rebuilding}` };
    if (d.diverged !== null) return { eligible: false, reason: `diverged from n${d.diverged}, to be re-cloned` };
    if (d.promoteFailed !== null) return { eligible: false, reason: d.promoteFailed };
    return { eligible: true, reason: '' };
  }

  private updateHealth(n: SimNode): void {
    if (!n.agentUp) return;
    const d = this.copy(n.id);
    const h = this.health(n.id);
    const key = `${h.eligible}|${h.reason}`;
    if (key === d.healthFed) return;
    d.healthFed = key;
    if (!h.eligible) this.w.count('db-health: not eligible');
    this.w.arrive(n, { type: 'db-health', now: 0, eligible: h.eligible, reason: h.reason }, -1, 0, false);
  }

  // -------------------------------------------------------------------------
  // Events

  on(ev: DbEv): void {
    switch (ev.what) {
      case 'client':
        this.later(this.w.rand(this.w.t.clientMs), ev);
        return this.clientWrite();
      case 'up':
        return this.onUp(ev.node, ev.run);
      case 'repl':
        return this.onRepl(ev.node, ev.stream);
      case 'ack':
        return this.onAck(ev.node, ev.from, ev.hist, ev.len);
      case 'op':
        return this.onOp(ev.node, ev.op);
      case 'retry':
        return this.onRetry(ev.node, ev.gen);
      case 'rebuild':
        return this.onRebuild(ev.node, ev.token);
    }
  }

  private onUp(id: NodeId, run: number): void {
    const n = this.w.node(id);
    const d = this.copy(id);
    if (!n.up || d.up || d.run !== run) return;
    d.up = true;
    d.writable = false;
    this.w.log(`n${id} mariadbd up (read-only, replication stopped)`);
    this.updateHealth(n);
    // The DB watch notices and applies the last role action again.
    if (d.current !== null && !d.busy && n.agentUp) {
      d.queue.unshift(d.current);
      this.pump(n);
    }
  }

  // -------------------------------------------------------------------------
  // The client and replication

  private clientWrite(): void {
    const p = this.w.nodes.find((n) => n.phys.ip);
    if (p === undefined || !p.up || !p.pubUp || !p.phys.panel) return;
    const d = this.copy(p.id);
    if (!d.up || !d.writable) return;
    const e: DbEntry = { id: `w${++this.writeSeq}`, epoch: d.epoch, seq: d.log.length + 1, by: p.id, epochRow: false };
    d.log.push(e);
    d.pending.push(e);
    this.w.count('db writes');
    this.notifyReplicas(p.id);
  }

  private setSource(id: NodeId, source: NodeId | null): void {
    const d = this.copy(id);
    if (d.source === source) return;
    d.source = source;
    d.stream += 1;
    d.replScheduled = false;
    if (source !== null) this.scheduleRepl(id, this.w.rand(this.w.t.replMs));
  }

  private scheduleRepl(id: NodeId, ms: number): void {
    const d = this.copy(id);
    if (d.replScheduled || d.source === null) return;
    d.replScheduled = true;
    this.later(ms, { what: 'repl', node: id, stream: d.stream });
  }

  private notifyReplicas(source: NodeId): void {
    for (const id of this.ids) if (this.copies[id]!.source === source) this.scheduleRepl(id, this.w.rand(this.w.t.replMs));
  }

  /** A replica receives what its source has (or finds that it diverged from it). */
  private onRepl(id: NodeId, stream: number): void {
    const d = this.copy(id);
    if (d.stream !== stream || d.source === null) return;
    d.replScheduled = false;
    const n = this.w.node(id);
    const srcId = d.source;
    const src = this.copy(srcId);
    if (!d.up || !src.up || !this.linked(n, this.w.node(srcId))) return this.scheduleRepl(id, 1000); // reconnect
    if (!isPrefix(d.log, src.log)) {
      // Error 1236: the source does not have our position in its history. Replication stops.
      this.setSource(id, null);
      this.w.log(`n${id} diverged from n${srcId} (replication error 1236)`);
      d.diverged = srcId;
      this.startRebuild(n);
      return this.updateHealth(n);
    }
    if (src.log.length > d.log.length) {
      for (let i = d.log.length; i < src.log.length; i++) d.log.push(src.log[i]!);
      d.epoch = d.log[d.log.length - 1]!.epoch;
      this.notifyReplicas(id);
    }
    if (d.log.length > 0) this.later(this.w.rand(this.w.t.replMs), { what: 'ack', node: srcId, from: id, hist: src.hist, len: d.log.length });
  }

  private onAck(id: NodeId, from: NodeId, hist: number, len: number): void {
    const d = this.copy(id);
    if (d.hist !== hist || !this.linked(this.w.node(id), this.w.node(from))) return;
    if (len > (d.confirmed.get(from) ?? 0)) d.confirmed.set(from, len);
    this.checkAcks(id);
    this.checkEpochMajority(this.w.node(id));
  }

  private confirmedOf(d: DbState, self: NodeId, seq: number): NodeId[] {
    const out = [self];
    for (const [r, len] of d.confirmed) if (len >= seq) out.push(r);
    return out;
  }

  /** The panel's barrier: a write is acknowledged once a majority of the copies has it. */
  private checkAcks(id: NodeId): void {
    const d = this.copy(id);
    if (d.pending.length === 0) return;
    const n = this.w.node(id);
    if (!n.up || !n.phys.panel || !d.up) return this.dropPending(d);
    let i = 0;
    for (; i < d.pending.length; i++) {
      const e = d.pending[i]!;
      const conf = this.confirmedOf(d, id, e.seq);
      const ok = this.sabotage === 'one-ack' ? conf.length >= 2 : acknowledged(this.ids, conf);
      if (!ok) break;
      this.acknowledge(id, d, e);
      if (this.w.stopped) return;
    }
    d.pending.splice(0, i);
  }

  private acknowledge(id: NodeId, d: DbState, e: DbEntry): void {
    const w = this.w;
    // (Another writable primary is not checked here: a write a majority had before that one's
    // survey may be acknowledged late, and that primary has it.)
    const problem = lateAckProblem(e) ?? historyProblem(id, d.log, this.lastAcked);
    if (problem !== null) return w.violate(problem.invariant, problem.message);
    e.acked = true;
    if (this.lastAcked === null || e.seq > this.lastAcked.seq) this.lastAcked = e;
    w.count('db writes acknowledged');
  }

  /** The other copies that follow `primary` and can confirm its writes now. */
  followersOf(primary: NodeId): NodeId[] {
    const p = this.w.node(primary);
    const out: NodeId[] = [];
    for (const id of this.ids) {
      if (id === primary) continue;
      const d = this.copies[id]!;
      if (d.source === primary && d.up && this.linked(p, this.w.node(id))) out.push(id);
    }
    return out;
  }

  /** Could `id` get a majority to acknowledge a write right now? */
  canAcknowledge(id: NodeId): boolean {
    const d = this.copy(id);
    return d.up && d.writable && this.w.node(id).up && 1 + this.followersOf(id).length >= this.need;
  }

  // -------------------------------------------------------------------------
  // The agent's DB effect layer: one queue, first attempt answered, failures retried

  execute(n: SimNode, a: RoleAction): void {
    const d = this.copy(n.id);
    d.actGen += 1;
    const item: Item = { action: a, gen: d.actGen, answered: false };
    d.current = item;
    d.queue.push(item);
    // A promotion only waiting for its epoch majority gives up at once (nothing left to undo).
    if (d.op !== null && d.op.phase === 'majority') this.fail(n, d.op, 'cluster', 'a newer action came during the promotion: the database stays read-only');
    this.pump(n);
  }

  private pump(n: SimNode): void {
    const d = this.copy(n.id);
    if (d.busy) return;
    const item = d.queue.shift();
    if (item === undefined) return;
    d.busy = true;
    const op: Op = { id: ++this.opSeq, item, agentGen: n.agentGen, phase: 'begin', deadline: 0, reached: [], source: 0, target: null, targetLen: 0, seen: [], diverged: [], epochSeq: 0 };
    d.op = op;
    const t = this.w.t;
    const lat = item.action.type === 'PromoteDatabase' ? this.w.rand(t.surveyMs) : item.action.type === 'DemoteDatabase' && !d.writable ? this.w.rng.int(1, 5) : this.w.rand(t.dbMs);
    this.later(lat, { what: 'op', node: n.id, op: op.id });
  }

  private onOp(id: NodeId, opId: number): void {
    const n = this.w.node(id);
    const d = this.copy(id);
    const op = d.op;
    if (op === null || op.id !== opId) return;
    if (!n.up || !n.agentUp || n.agentGen !== op.agentGen) return; // abandoned with its agent
    if (n.agentPaused || n.frozen) return this.later(100, { what: 'op', node: id, op: opId });
    const a = op.item.action;
    // A newer action replaced this one: it does nothing more (no side effect on other servers).
    // A demote always runs: it is what `released` waits for, and it cannot hurt.
    if (op.item.gen !== d.actGen && a.type !== 'DemoteDatabase' && op.phase !== 'majority') return this.finish(n, op, false, `${a.type} replaced by a newer action`);
    switch (a.type) {
      case 'DemoteDatabase':
        // A stopped server is read-only too: every mariadbd starts read_only=ON.
        d.writable = false;
        return this.finish(n, op, true);
      case 'FollowDatabase':
        return this.followStep(n, d, op, a.master);
      case 'PromoteDatabase':
        if (op.phase === 'begin') return this.survey(n, d, op);
        if (op.phase === 'catchup') return this.catchUp(n, d, op);
        if (op.phase === 'majority') return this.fail(n, op, 'cluster', `only ${this.confirmedOf(d, id, op.epochSeq).length} of ${this.ids.length} copies took the new epoch within ${this.w.t.epochWaitMs} ms (need ${this.need}); the database stays read-only`);
        return;
    }
  }

  private finish(n: SimNode, op: Op, ok: boolean, error?: string): void {
    const d = this.copy(n.id);
    if (d.op !== op) return;
    d.op = null;
    d.busy = false;
    if (!op.item.answered) {
      op.item.answered = true;
      this.w.arrive(n, { type: 'action-result', now: 0, action: op.item.action, ok, ...(ok ? {} : { error: error ?? 'failed' }) }, -1, 0, false);
    }
    if (!ok && op.item.gen === d.actGen) this.later(this.w.t.dbRetryMs, { what: 'retry', node: n.id, gen: op.item.gen });
    this.updateHealth(n);
    this.pump(n);
  }

  /** `node`: this copy cannot be primary (eligibility); `cluster`: no majority, not its fault. */
  private fail(n: SimNode, op: Op, kind: 'node' | 'cluster', why: string): void {
    const d = this.copy(n.id);
    const a = op.item.action;
    if (a.type === 'PromoteDatabase') {
      this.w.count(kind === 'node' ? 'db promotion failed: this copy' : 'db promotion failed: no majority');
      if (kind === 'node') d.promoteFailed = why;
    }
    this.w.log(`n${n.id} ${a.type} failed: ${why}`);
    this.finish(n, op, false, why);
  }

  private onRetry(id: NodeId, gen: number): void {
    const n = this.w.node(id);
    const d = this.copy(id);
    if (d.actGen !== gen || d.current === null || d.current.gen !== gen || !n.agentUp) return;
    if (n.agentPaused || n.frozen) return this.later(100, { what: 'retry', node: id, gen });
    if (d.busy || d.queue.length > 0) return;
    d.queue.push(d.current);
    this.pump(n);
  }

  // ---- FollowDatabase: read-only, wait for a writable master, replicate (or rebuild)

  private followStep(n: SimNode, d: DbState, op: Op, master: NodeId): void {
    const m = this.copy(master);
    const mn = this.w.node(master);
    if (op.phase === 'begin') {
      if (!d.up) return this.finish(n, op, false, 'the local database server does not answer');
      d.writable = false;
      if (master === n.id) return this.finish(n, op, false, 'cannot follow itself');
      if (d.source === master && d.diverged === null && isPrefix(d.log, m.log)) return this.finish(n, op, true);
      this.setSource(n.id, null);
      op.phase = 'wait';
      op.deadline = this.w.now + this.w.t.masterWaitMs;
    }
    const ready = m.up && m.writable && this.linked(n, mn);
    if (op.phase === 'wait') {
      if (ready) {
        op.phase = 'check';
        return this.later(this.w.rng.int(1, 10), { what: 'op', node: n.id, op: op.id });
      }
      if (this.w.now >= op.deadline) return this.finish(n, op, false, `n${master}'s database is not a writable primary after ${this.w.t.masterWaitMs} ms`);
      return this.later(200, { what: 'op', node: n.id, op: op.id });
    }
    // check
    if (!d.up) return this.finish(n, op, false, 'the local database server does not answer');
    if (!ready) {
      op.phase = 'wait';
      return this.later(200, { what: 'op', node: n.id, op: op.id });
    }
    if (!isPrefix(d.log, m.log)) {
      d.diverged = master;
      this.startRebuild(n);
      return this.finish(n, op, false, `n${n.id} has transactions the primary n${master} does not have: it is rebuilt`);
    }
    this.setSource(n.id, master);
    d.promoteFailed = null;
    d.diverged = null; // an older verdict (another primary) no longer applies
    d.rebuilding = null;
    d.rebuildToken = 0;
    this.finish(n, op, true);
  }

  // ---- Rebuild: a diverged copy is re-cloned from the primary; what it loses is recorded.
  // The copy is taken from a writable primary, or from one whose promotion has written its epoch
  // (its history is final and has every acknowledged write): a promotion counts only copies of
  // its own history for its epoch majority, so if only "a writable primary" would do, diverged
  // copies (an old primary and its replicas with unacknowledged writes) plus one node away leave
  // no majority, and nothing ever becomes primary.

  private startRebuild(n: SimNode): void {
    const d = this.copy(n.id);
    if (d.rebuildToken !== 0) return;
    d.rebuildToken = ++this.tokenSeq;
    this.later(200, { what: 'rebuild', node: n.id, token: d.rebuildToken });
  }

  /** May `id` serve as the source of a re-clone? */
  private cloneSource(id: NodeId): boolean {
    const p = this.copy(id);
    if (!p.up) return false;
    if (p.writable) return true;
    const op = p.op;
    return this.sabotage !== 'clone-from-writable-only' && op !== null && op.phase === 'majority' && op.item.gen === p.actGen;
  }

  private onRebuild(id: NodeId, token: number): void {
    const n = this.w.node(id);
    const d = this.copy(id);
    if (d.rebuildToken !== token) return;
    const again = (ms: number): void => this.later(ms, { what: 'rebuild', node: id, token });
    if (!n.agentUp) {
      // The agent rebuilds it: the next one finds the divergence again when it follows.
      d.rebuildToken = 0;
      d.rebuilding = null;
      return;
    }
    if (n.agentPaused || n.frozen) return again(100);
    if (d.rebuilding !== null) return this.finishRebuild(n, d);
    const primary = d.diverged;
    if (primary === null) {
      d.rebuildToken = 0;
      return;
    }
    if (!d.up || !this.cloneSource(primary) || !this.linked(n, this.w.node(primary))) return again(500);
    // A dump consistent with the source's position now; loaded when the re-clone is done.
    d.rebuilding = primary;
    this.snapshots.set(id, { log: this.copy(primary).log.slice(), run: d.run });
    this.w.log(`n${id} re-cloning its database from n${primary}`);
    this.updateHealth(n);
    again(this.w.rand(this.w.t.rebuildMs));
  }

  private finishRebuild(n: SimNode, d: DbState): void {
    const id = n.id;
    const primary = d.rebuilding!;
    const snap = this.snapshots.get(id);
    this.snapshots.delete(id);
    d.rebuilding = null;
    if (snap === undefined || !d.up || d.run !== snap.run) {
      this.updateHealth(n);
      return this.later(500, { what: 'rebuild', node: id, token: d.rebuildToken }); // interrupted: again
    }
    // The copy becomes the source's history; the writes only it had are thrown away.
    const src = snap.log;
    let common = Math.min(d.log.length, src.length);
    while (common > 0 && d.log[common - 1] !== src[common - 1]) common--;
    const lost = d.log.slice(common);
    const problem = discardProblem(lost);
    if (problem !== null) return this.w.violate(problem.invariant, `${problem.message} (n${id} re-cloned from n${primary})`);
    for (const e of lost) {
      e.discarded = true;
      this.discarded.push({ node: id, entry: e, at: this.w.now });
    }
    if (lost.length > 0) this.w.count('db writes discarded (never acknowledged)');
    this.w.count('db copy rebuilt');
    this.w.log(`n${id} re-cloned from n${primary}${lost.length ? `, discarded ${lost.map((e) => e.id).join(',')}` : ''}`);
    d.log = src;
    d.epoch = src[src.length - 1]?.epoch ?? 0;
    d.hist += 1;
    d.confirmed.clear();
    d.pending = [];
    d.diverged = null;
    d.rebuildToken = 0;
    d.promoteFailed = null;
    this.setSource(id, primary);
    this.updateHealth(n);
  }

  // ---- PromoteDatabase

  private dbCopy(id: NodeId): DbCopy {
    const d = this.copy(id);
    const last = d.log[d.log.length - 1];
    return { nodeid: id, epoch: d.epoch, pos: last === undefined ? new Map() : new Map([[0, { domain: 0, server: last.by, seq: last.seq }]]) };
  }

  private survey(n: SimNode, d: DbState, op: Op): void {
    const w = this.w;
    if (!d.up) return this.fail(n, op, 'node', 'the local database server does not answer');
    const reached = this.ids.filter((id) => {
      const c = this.copies[id]!;
      return c.up && c.rebuilding === null && this.linked(n, w.node(id));
    });
    const noMajority = this.sabotage === 'no-majority';
    if (!noMajority && reached.length < this.need) {
      return this.fail(n, op, 'cluster', `reached ${reached.length} of ${this.ids.length} database nodes, need ${this.need}: a copy that did not answer may hold acknowledged writes`);
    }
    // Fence any other writable server, and freeze what the replicas receive.
    for (const id of reached) {
      const c = this.copies[id]!;
      if (id !== n.id && c.writable) {
        c.writable = false;
        w.count('old primary fenced by a promotion');
        w.log(`n${n.id} fences n${id}'s writable database (read_only on)`);
      }
      this.setSource(id, null);
    }
    const copies = reached.map((id) => this.dbCopy(id));
    const choice = chooseSource(noMajority ? reached : this.ids, copies, n.id);
    if (!choice.ok) return this.fail(n, op, 'cluster', choice.reason);
    if (choice.diverged.some((x) => x.copy.nodeid === n.id)) {
      return this.fail(n, op, 'node', `has transactions the most advanced copy n${choice.source.nodeid} lacks: it must be re-cloned`);
    }
    const src = this.copy(choice.source.nodeid);
    op.reached = reached;
    op.source = choice.source.nodeid;
    op.targetLen = src.log.length;
    op.target = src.log[src.log.length - 1] ?? null;
    op.seen = copies.map((c) => c.epoch);
    op.diverged = choice.diverged.map((x) => x.copy.nodeid);
    const self = copies.find((c) => c.nodeid === n.id)!;
    if (containsPos(self.pos, choice.source.pos)) return this.writeEpoch(n, d, op);
    op.phase = 'catchup';
    this.later(w.rand(w.t.catchUpMs), { what: 'op', node: n.id, op: op.id });
  }

  private catchUp(n: SimNode, d: DbState, op: Op): void {
    const src = this.copy(op.source);
    const why = `behind n${op.source} and could not catch up`;
    if (!d.up) return this.fail(n, op, 'node', 'the local database server does not answer');
    if (!src.up || !this.linked(n, this.w.node(op.source))) return this.fail(n, op, 'node', `${why} (n${op.source} unreachable)`);
    if (src.log.length < op.targetLen || (op.target !== null && src.log[op.targetLen - 1] !== op.target)) return this.fail(n, op, 'node', `${why} (its copy changed)`);
    // MariaDB replicates from our GTID position: it must be in the source's history (else error 1236).
    if (!isPrefix(d.log, src.log)) return this.fail(n, op, 'node', `${why} (replication error 1236: diverged)`);
    for (let i = d.log.length; i < op.targetLen; i++) d.log.push(src.log[i]!);
    d.epoch = d.log[d.log.length - 1]?.epoch ?? 0;
    this.w.count('db promotion caught up from another copy');
    this.writeEpoch(n, d, op);
  }

  private writeEpoch(n: SimNode, d: DbState, op: Op): void {
    const a = op.item.action as Extract<RoleAction, { type: 'PromoteDatabase' }>;
    const epoch = nextEpoch(op.seen, a.term);
    const e: DbEntry = { id: `e${epoch}@n${n.id}`, epoch, seq: d.log.length + 1, by: n.id, epochRow: true };
    d.log.push(e);
    d.epoch = epoch;
    this.setSource(n.id, null);
    op.epochSeq = e.seq;
    for (const id of op.reached) if (id !== n.id && !op.diverged.includes(id) && this.linked(n, this.w.node(id))) this.setSource(id, n.id);
    this.notifyReplicas(n.id);
    this.w.log(`n${n.id} wrote epoch ${epoch} (term ${a.term}) at seq ${e.seq}, source n${op.source}; waiting for a majority`);
    op.phase = 'majority';
    this.later(this.w.t.epochWaitMs, { what: 'op', node: n.id, op: op.id });
    this.checkEpochMajority(n);
  }

  private checkEpochMajority(n: SimNode): void {
    const d = this.copy(n.id);
    const op = d.op;
    if (op === null || op.phase !== 'majority' || op.item.action.type !== 'PromoteDatabase') return;
    if (this.sabotage !== 'no-majority' && this.confirmedOf(d, n.id, op.epochSeq).length < this.need) return;
    if (!n.agentUp || n.agentGen !== op.agentGen) return;
    if (d.actGen !== op.item.gen) return this.fail(n, op, 'cluster', 'a demote came during the promotion: the database stays read-only');
    if (!d.up) return this.fail(n, op, 'node', 'the local database server does not answer');
    const problem = ackLostProblem(n.id, d.log, this.lastAcked) ?? splitPrimaryProblem(this, n.id);
    if (problem !== null) return this.w.violate(problem.invariant, problem.message);
    d.writable = true;
    d.promoteFailed = null;
    this.w.count('db promoted');
    this.w.log(`n${n.id} database writable (epoch ${d.epoch})`);
    this.finish(n, op, true);
  }

  // -------------------------------------------------------------------------
  // After the quiet period

  livenessProblems(master: NodeId): string[] {
    const out: string[] = [];
    const m = this.copy(master);
    if (!m.up || !m.writable) out.push(`master n${master}'s database is not a writable primary (${m.up ? 'read-only' : 'down'})`);
    for (const id of this.ids) {
      if (id === master) continue;
      const d = this.copies[id]!;
      if (!d.up) out.push(`n${id}'s database is down`);
      else if (d.source !== master) out.push(`n${id}'s database replicates from ${d.source === null ? 'nobody' : `n${d.source}`}, not from the master n${master}`);
    }
    return out;
  }
}

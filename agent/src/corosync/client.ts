// CorosyncClient: keeps one Session open, turns corosync callbacks into ClusterEvents,
// and reconnects with jittered exponential backoff whenever corosync goes away.
import { EventEmitter } from 'node:events';
import { CmapNotifyFn, cmapNotifyAdapter } from './cmap.ts';
import { CpgConfchgFn, CpgDeliverFn, cpg, cpgConfchgAdapter, cpgDeliverAdapter } from './cpg.ts';
import { CS_ERR, CS_OK, CorosyncError, csErrorName, isConnectionLost } from './errors.ts';
import { koffi } from './ffi.ts';
import { EventStream } from './stream.ts';
import { POLL_BROKEN, FdPoller } from './poller.ts';
import { QuorumNotifyFn, quorumNotifyAdapter } from './quorum.ts';
import { type RegisteredCallbacks, Session } from './session.ts';
import type { ClusterEvent, ClusterSnapshot, CorosyncClientOptions, CpgMember, Logger } from './types.ts';
import { VqExpectedFn, VqNodelistFn, VqQuorumFn } from './votequorum.ts';
import type { ClusterConfig } from './parse.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const SEND_RETRY_LIMIT_MS = 10_000;
const noopLogger: Logger = { info() {}, warn() {} };
const eventJson = (ev: ClusterEvent) => JSON.stringify(ev, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));

type Phase = 'idle' | 'running' | 'stopped';

export class CorosyncClient extends EventEmitter {
  private readonly group: string | null;
  private readonly log: Logger;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  private phase: Phase = 'idle';
  private callbacks: RegisteredCallbacks | null = null;
  private poller: FdPoller | null = null;
  private session: Session | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  private reconnectTimer: NodeJS.Timeout | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private started: Promise<void> | null = null;
  private resolveStarted: (() => void) | null = null;
  private rejectStarted: ((e: Error) => void) | null = null;
  private sendChain: Promise<unknown> = Promise.resolve();
  private readonly streams = new Set<EventStream>();

  // Work collected while callbacks run inside X_dispatch, handled once dispatch returns.
  private pending: ClusterEvent[] = [];
  private vqDirty = false;
  private configDirty = false;
  private lostReason: string | null = null;
  private lastConfigJson = '';
  private lastErrorName: string | undefined;
  private tokenMs: number | undefined; // not part of ClusterSnapshot, only of 'config' events

  private state: ClusterSnapshot = { connected: false, quorate: false, members: [], nodes: [], cpgMembers: [] };

  constructor(opts: CorosyncClientOptions = {}) {
    super();
    this.group = opts.cpgGroup === undefined ? 'corolistener' : opts.cpgGroup;
    this.log = opts.logger ?? noopLogger;
    this.minBackoffMs = opts.minBackoffMs ?? 100;
    this.maxBackoffMs = Math.max(this.minBackoffMs, opts.maxBackoffMs ?? 2000);
  }

  /** Resolves on the first successful connection; keeps retrying in the background until then. */
  start(): Promise<void> {
    if (this.phase === 'stopped') return Promise.reject(new Error('CorosyncClient was stopped; create a new one'));
    if (this.started) return this.started;
    this.started = new Promise<void>((resolve, reject) => {
      this.resolveStarted = resolve;
      this.rejectStarted = reject;
    });
    this.started.catch(() => {}); // a stop() before connecting must not become an unhandled rejection
    this.phase = 'running';
    try {
      this.callbacks = this.registerCallbacks();
      this.poller = new FdPoller();
    } catch (err) {
      this.finishStop();
      return Promise.reject(err);
    }
    this.connectSafely();
    return this.started;
  }

  /** Leaves the cpg group, finalizes all handles, stops polling. Idempotent. */
  async stop(): Promise<void> {
    if (this.phase === 'stopped') return this.loopDone;
    this.phase = 'stopped';
    this.clearTimers();
    this.poller?.wake();
    await this.loopDone; // the poll thread must be done with our fds before they are closed
    this.session?.close(this.state.connected);
    this.session = null;
    this.state = { ...this.state, connected: false };
    this.finishStop();
  }

  snapshot(): ClusterSnapshot {
    const s = this.state;
    return {
      ...s,
      members: [...s.members],
      nodes: s.nodes.map((n) => ({ ...n, raw: { ...n.raw } })),
      cpgMembers: s.cpgMembers.map((m) => ({ ...m })),
      ...(s.votequorum ? { votequorum: { ...s.votequorum, flags: [...s.votequorum.flags] } } : {}),
    };
  }

  /** Totally ordered (CPG_TYPE_AGREED) multicast to the group; sends are delivered in call order. */
  send(data: Buffer | string): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    const p = this.sendChain.then(() => this.sendNow(buf));
    this.sendChain = p.catch(() => {});
    return p;
  }

  events(): AsyncIterable<ClusterEvent> {
    return {
      [Symbol.asyncIterator]: () => {
        const stream = new EventStream(() => this.streams.delete(stream));
        if (this.phase === 'stopped') stream.end();
        else this.streams.add(stream);
        return stream;
      },
    };
  }

  waitFor(pred: (s: ClusterSnapshot) => boolean, timeoutMs: number): Promise<ClusterSnapshot> {
    return new Promise((resolve, reject) => {
      const check = () => {
        let ok = false;
        try {
          ok = pred(this.snapshot());
        } catch (err) {
          return done(err as Error);
        }
        if (ok) done(null);
        else if (this.phase === 'stopped') done(new Error('CorosyncClient stopped while waiting'));
      };
      const done = (err: Error | null) => {
        clearTimeout(timer);
        this.off('event', check);
        this.off('stopped', check);
        if (err) reject(err);
        else resolve(this.snapshot());
      };
      const timer = setTimeout(() => done(new Error(`waitFor timed out after ${timeoutMs} ms`)), timeoutMs);
      this.on('event', check);
      this.on('stopped', check);
      check();
    });
  }

  /** Name of the last error seen while connecting (e.g. 'CS_ERR_LIBRARY'), for diagnostics. */
  get lastError(): string | undefined {
    return this.lastErrorName;
  }

  // ---- connection lifecycle ----

  private connectSafely(): void {
    this.connect().catch((err) => {
      this.log.warn({ err: String(err) }, 'corosync connect failed unexpectedly');
      if (this.phase === 'running' && !this.state.connected && !this.reconnectTimer) this.scheduleReconnect(err);
    });
  }

  private async connect(): Promise<void> {
    this.reconnectTimer = null;
    if (this.phase !== 'running') return;
    let session: Session | null = null;
    try {
      session = Session.open(this.callbacks!);
      this.session = session;
      this.readInitialState(session);
      if (this.group) await this.joinGroup(session, this.group);
      if (this.phase !== 'running') throw new Error('stopped');
    } catch (err) {
      if (this.session === session) this.session = null;
      session?.close(true);
      if (this.phase === 'running') this.scheduleReconnect(err);
      return;
    }
    this.attempt = 0;
    this.lastErrorName = undefined;
    this.state.connected = true;
    this.state.localNodeId = session.localNodeId;
    this.log.info({ localNodeId: session.localNodeId }, 'connected to corosync');
    // Announce the full current state, 'connected' first so snapshot() is complete for listeners.
    const s = this.state;
    this.pending = [{ type: 'connected', localNodeId: session.localNodeId }];
    if (s.ringSeq !== undefined) this.pending.push({ type: 'quorum', quorate: s.quorate, ringSeq: s.ringSeq, members: [...s.members] });
    if (s.votequorum) this.pending.push({ type: 'votequorum', info: s.votequorum });
    const config = this.configEvent();
    this.lastConfigJson = eventJson(config);
    this.pending.push(config);
    this.flush();
    this.resolveStarted?.();
    this.loopDone = this.pollLoop(session).catch((err) => this.log.warn({ err: String(err) }, 'dispatch loop failed'));
  }

  /** Reads quorum, votequorum and cmap state; drains the CS_TRACK_CURRENT notifications. */
  private readInitialState(session: Session): void {
    this.pending = [];
    this.state.members = [];
    delete this.state.ringSeq;
    this.state.cpgMembers = [];
    for (const lib of ['quorum', 'votequorum'] as const) {
      const rc = session.dispatch(lib);
      if (rc !== CS_OK) throw new CorosyncError(`${lib}_dispatch`, rc);
    }
    this.state.quorate = session.readQuorate();
    this.state.votequorum = session.readVotequorum();
    this.applyConfig(session.readConfig());
    this.vqDirty = this.configDirty = false;
  }

  private async joinGroup(session: Session, group: string): Promise<void> {
    for (let delay = 10; ; delay *= 2) {
      const rc = session.join(group);
      if (rc === CS_OK) return;
      if (rc !== CS_ERR.TRY_AGAIN || delay > 1000 || this.phase !== 'running') throw new CorosyncError('cpg_join', rc);
      await sleep(delay);
    }
  }

  /** Retries connect() after a jittered exponential backoff; logs only when the error changes. */
  private scheduleReconnect(err?: unknown): void {
    const base = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** this.attempt++);
    const delay = Math.round(base * (0.5 + Math.random() * 0.5)); // jitter: 50-100% of base
    if (err !== undefined) {
      const msg = err instanceof Error ? err.message : String(err);
      const name = err instanceof CorosyncError ? err.errorName : msg;
      const log = name !== this.lastErrorName ? this.log.warn : this.log.debug;
      this.lastErrorName = name;
      log?.call(this.log, { err: msg, retryInMs: delay }, 'cannot connect to corosync');
    }
    this.reconnectTimer = setTimeout(() => this.connectSafely(), delay);
  }

  /** Tears the session down after corosync went away, then reconnects. Only called from the loop. */
  private disconnect(session: Session, reason: string): void {
    session.close(false);
    if (this.session === session) this.session = null;
    this.clearTimers();
    const s = this.state;
    // Without corosync nothing is known about quorum; the last config stays as a hint.
    this.state = { ...s, connected: false, quorate: false, members: [], cpgMembers: [] };
    delete this.state.ringSeq;
    delete this.state.votequorum;
    this.log.warn({ reason }, 'lost connection to corosync');
    this.pending.push({ type: 'disconnected', reason });
    this.flush();
    this.attempt = 0;
    this.lastErrorName = undefined;
    this.scheduleReconnect();
  }

  // ---- dispatch loop ----

  private async pollLoop(session: Session): Promise<void> {
    const fds = [...session.fds.keys()];
    while (this.phase === 'running' && this.session === session) {
      let ready: Map<number, number>;
      try {
        ready = await this.poller!.wait(fds);
      } catch (err) {
        this.log.warn({ err: String(err) }, 'poll failed');
        await sleep(this.minBackoffMs);
        continue;
      }
      if (this.phase !== 'running') return;
      try {
        this.dispatchReady(session, ready);
      } catch (err) {
        // Unexpected (a marshalling bug?): start over with a fresh connection instead of crashing.
        this.lostReason ??= `internal error: ${(err as Error).message}`;
      }
      if (this.lostReason) {
        const reason = this.lostReason;
        this.lostReason = null;
        return this.disconnect(session, reason); // events already dispatched are still emitted
      }
      this.flush();
    }
  }

  /** Dispatches every readable handle (running its callbacks), then re-reads flagged state. */
  private dispatchReady(session: Session, ready: Map<number, number>): void {
    for (const [fd, revents] of ready) {
      const lib = session.fds.get(fd)!;
      if (revents & POLL_BROKEN) {
        this.lostReason ??= `${lib} connection closed by corosync`;
        return;
      }
      const rc = session.dispatch(lib);
      if (rc !== CS_OK) {
        this.lostReason ??= `${lib}_dispatch failed: ${csErrorName(rc)}`;
        return;
      }
    }
    this.refresh(session);
  }

  /** Re-reads what the callbacks flagged as changed; transient errors are retried shortly. */
  private refresh(session: Session): void {
    try {
      if (this.vqDirty) {
        this.state.votequorum = session.readVotequorum();
        this.pending.push({ type: 'votequorum', info: this.state.votequorum });
        this.vqDirty = false;
      }
      if (this.configDirty) {
        this.configDirty = false;
        this.applyConfig(session.readConfig());
        const ev = this.configEvent();
        const json = eventJson(ev);
        if (json !== this.lastConfigJson) this.pending.push(ev); // skip no-op reloads
        this.lastConfigJson = json;
      }
    } catch (err) {
      if (err instanceof CorosyncError && isConnectionLost(err.code)) {
        this.lostReason = err.message;
        return;
      }
      this.log.warn({ err: String(err) }, 'corosync state refresh failed; retrying');
      if (err instanceof CorosyncError && err.call.startsWith('cmap')) this.configDirty = true;
      else this.vqDirty = true;
      this.refreshTimer ??= setTimeout(() => {
        this.refreshTimer = null;
        this.poller?.wake(); // the loop refreshes after every wake-up
      }, this.minBackoffMs);
    }
  }

  private applyConfig(cfg: ClusterConfig): void {
    this.state.nodes = cfg.nodes;
    this.state.configVersion = cfg.configVersion;
    if (cfg.clusterName !== undefined) this.state.clusterName = cfg.clusterName;
    else delete this.state.clusterName;
    this.tokenMs = cfg.tokenMs;
  }

  private configEvent(): ClusterEvent {
    const s = this.state;
    const ev: ClusterEvent = { type: 'config', nodes: this.snapshot().nodes, configVersion: s.configVersion ?? 0n };
    if (s.clusterName !== undefined) ev.clusterName = s.clusterName;
    if (this.tokenMs !== undefined) ev.tokenMs = this.tokenMs;
    return ev;
  }

  /** Emits queued events; a throwing listener is logged, never allowed to break the loop. */
  private flush(): void {
    const events = this.pending;
    this.pending = [];
    for (const ev of events) {
      for (const st of this.streams) st.push(ev);
      try {
        this.emit('event', ev);
      } catch (err) {
        this.log.warn({ err: String(err), event: ev.type }, 'ClusterEvent listener threw');
      }
    }
  }

  // ---- sending ----

  private async sendNow(buf: Buffer): Promise<void> {
    const started = Date.now();
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      const session = this.session;
      if (!session || !this.state.connected) throw new Error('cannot send: not connected to corosync');
      if (!session.joinedGroup) throw new Error('cannot send: not joined to a cpg group (cpgGroup is null)');
      const rc = cpg.mcastAgreed(session.handles.cpg!, buf);
      if (rc === CS_OK) return;
      // CS_ERR_TRY_AGAIN is cpg flow control: back off briefly and retry.
      if (rc !== CS_ERR.TRY_AGAIN || Date.now() - started > SEND_RETRY_LIMIT_MS) {
        this.log.debug?.call(this.log, { rc: csErrorName(rc) }, 'cpg_mcast_joined failed');
        if (isConnectionLost(rc)) this.poller?.wake();
        throw new CorosyncError('cpg_mcast_joined', rc);
      }
      this.log.debug?.call(this.log, { retryInMs: delay }, 'cpg flow control (CS_ERR_TRY_AGAIN), retrying send');
      await sleep(delay);
    }
  }

  // ---- koffi callbacks (run synchronously inside X_dispatch on the main thread) ----

  private registerCallbacks(): RegisteredCallbacks {
    const guard =
      <A extends unknown[]>(name: string, fn: (...a: A) => void) =>
      (...a: A) => {
        try {
          fn(...a);
        } catch (err) {
          this.log.warn({ err: String(err), callback: name }, 'corosync callback failed');
        }
      };
    const markVq = guard('votequorum', (h: number | bigint) => {
      if (this.session?.owns('votequorum', BigInt(h))) this.vqDirty = true;
    });
    const reg = (fn: Function, proto: koffi.IKoffiCType) => koffi.register(fn, koffi.pointer(proto));
    return {
      quorum: reg(guard('quorum', quorumNotifyAdapter((h, quorate, ringSeq, members) => {
        if (!this.session?.owns('quorum', h)) return;
        Object.assign(this.state, { quorate, ringSeq, members: members.sort((a, b) => a - b) });
        this.pending.push({ type: 'quorum', quorate, ringSeq, members: [...this.state.members] });
      })), QuorumNotifyFn),
      vqQuorum: reg(markVq, VqQuorumFn),
      vqExpected: reg(markVq, VqExpectedFn),
      vqNodelist: reg(markVq, VqNodelistFn),
      cpgDeliver: reg(guard('cpg_deliver', cpgDeliverAdapter((h, group, nodeid, pid, data) => {
        if (this.session?.owns('cpg', h)) this.pending.push({ type: 'cpg-message', group, nodeid, pid, data });
      })), CpgDeliverFn),
      cpgConfchg: reg(guard('cpg_confchg', cpgConfchgAdapter((h, group, members, left, joined) => {
        if (!this.session?.owns('cpg', h)) return;
        if (group === this.group) this.state.cpgMembers = members.map((m: CpgMember) => ({ ...m }));
        this.pending.push({ type: 'cpg-membership', group, members, joined, left });
      })), CpgConfchgFn),
      cmapNotify: reg(guard('cmap', cmapNotifyAdapter((h) => {
        if (this.session?.owns('cmap', h)) this.configDirty = true;
      })), CmapNotifyFn),
    };
  }

  private clearTimers(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.reconnectTimer = this.refreshTimer = null;
  }

  /** Releases everything start() acquired; callback slots last, after no handle can call them. */
  private finishStop(): void {
    this.phase = 'stopped';
    this.poller?.close();
    this.poller = null;
    if (this.callbacks) for (const cb of Object.values(this.callbacks)) koffi.unregister(cb as koffi.IKoffiRegisteredCallback);
    this.callbacks = null;
    this.rejectStarted?.(new Error('CorosyncClient stopped before connecting to corosync'));
    this.resolveStarted = this.rejectStarted = null;
    for (const st of this.streams) st.end();
    this.streams.clear();
    this.emit('stopped');
  }
}

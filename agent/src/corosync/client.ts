// CorosyncClient: keeps one Session open, turns corosync callbacks into ClusterEvents,
// and reconnects with jittered exponential backoff whenever corosync goes away.
//
// Dispatch: poll(2) over the four library fds (plus a wake-up pipe) runs on one libuv worker
// thread (poller.ts). When it returns, the main thread calls X_dispatch(CS_DISPATCH_ALL) for
// each readable fd, which runs our koffi callbacks synchronously; the callbacks only record
// what changed, and the events are emitted after dispatch returns. Then poll again.
import { EventEmitter } from 'node:events';
import { type CallbackSink, registerCallbacks, unregisterCallbacks } from './callbacks.ts';
import { cpg } from './cpg.ts';
import { CS_ERR, CS_OK, CorosyncError, csErrorName, isConnectionLost } from './errors.ts';
import { FdPoller, POLL_BROKEN } from './poller.ts';
import { type RegisteredCallbacks, Session } from './session.ts';
import { ClusterState } from './state.ts';
import { EventStream } from './stream.ts';
import type { ClusterEvent, ClusterSnapshot, CorosyncClientOptions, Logger } from './types.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const SEND_RETRY_LIMIT_MS = 10_000;
const noopLogger: Logger = { info() {}, warn() {} };

type Phase = 'idle' | 'running' | 'stopped';

export class CorosyncClient extends EventEmitter {
  private readonly group: string | null;
  private readonly log: Logger;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly state = new ClusterState();
  private readonly streams = new Set<EventStream>();

  private phase: Phase = 'idle';
  private callbacks: RegisteredCallbacks | null = null;
  private poller: FdPoller | null = null;
  private session: Session | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  private stopped: Promise<void> | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private lastErrorName: string | undefined;
  private started: Promise<void> | null = null;
  private settleStart: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private sendChain: Promise<unknown> = Promise.resolve();

  // Recorded by callbacks during X_dispatch, acted upon once dispatch has returned.
  private pending: ClusterEvent[] = [];
  private vqDirty = false;
  private configDirty = false;
  private lostReason: string | null = null;

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
    this.started = new Promise<void>((resolve, reject) => (this.settleStart = { resolve, reject }));
    this.started.catch(() => {}); // a stop() before connecting must not become an unhandled rejection
    this.phase = 'running';
    try {
      this.callbacks = registerCallbacks(this.sink, this.log);
      this.poller = new FdPoller();
    } catch (err) {
      this.release();
      return Promise.reject(err);
    }
    this.connectSafely();
    return this.started;
  }

  /** Leaves the cpg group, finalizes all handles, stops polling. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.phase = 'stopped';
      this.clearTimers();
      this.poller?.wake();
      await this.loopDone; // the poll thread must be done with our fds before they are closed
      this.session?.close(this.state.connected);
      this.session = null;
      this.state.disconnect();
      this.release();
    })();
    return this.stopped;
  }

  snapshot(): ClusterSnapshot {
    return this.state.snapshot();
  }

  /** corosync's effective token and consensus timeouts (cmap runtime.config.totem.*), once read. */
  totemTiming(): { tokenMs?: number; consensusMs?: number } {
    return this.state.timing();
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
      if (this.phase !== 'running') throw new Error('stopped while connecting');
    } catch (err) {
      if (this.session === session) this.session = null;
      session?.close(true);
      if (this.phase === 'running') this.scheduleReconnect(err);
      return;
    }
    this.attempt = 0;
    this.lastErrorName = undefined;
    this.log.info({ localNodeId: session.localNodeId }, 'connected to corosync');
    // 'connected' comes first, so snapshot() is already complete for its listeners.
    this.pending = this.state.connect(session.localNodeId);
    this.flush();
    this.settleStart?.resolve();
    this.settleStart = null;
    this.loopDone = this.pollLoop(session).catch((err) => this.log.warn({ err: String(err) }, 'dispatch loop failed'));
  }

  /** Reads quorum, votequorum and cmap state; drains the CS_TRACK_CURRENT notifications. */
  private readInitialState(session: Session): void {
    this.state.reset();
    for (const lib of ['quorum', 'votequorum'] as const) {
      const rc = session.dispatch(lib);
      if (rc !== CS_OK) throw new CorosyncError(`${lib}_dispatch`, rc);
    }
    this.pending = []; // the state is announced as a whole by connect()
    this.state.setQuorate(session.readQuorate());
    this.state.setVotequorum(session.readVotequorum());
    this.state.setConfig(session.readConfig());
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
    this.state.disconnect();
    this.log.warn({ reason }, 'lost connection to corosync');
    this.pending.push({ type: 'disconnected', reason }); // after events already dispatched
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
        return this.disconnect(session, reason);
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
        this.pending.push(this.state.setVotequorum(session.readVotequorum()));
        this.vqDirty = false;
      }
      if (this.configDirty) {
        const ev = this.state.setConfig(session.readConfig());
        if (ev) this.pending.push(ev);
        this.configDirty = false;
      }
    } catch (err) {
      if (err instanceof CorosyncError && isConnectionLost(err.code)) {
        this.lostReason = err.message;
        return;
      }
      this.log.warn({ err: String(err) }, 'corosync state refresh failed; retrying');
      this.refreshTimer ??= setTimeout(() => {
        this.refreshTimer = null;
        this.poller?.wake(); // the loop refreshes after every wake-up; the dirty flags are still set
      }, this.minBackoffMs);
    }
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
        if (isConnectionLost(rc)) this.poller?.wake();
        throw new CorosyncError('cpg_mcast_joined', rc);
      }
      this.log.debug?.call(this.log, { retryInMs: delay }, 'cpg flow control (CS_ERR_TRY_AGAIN), retrying send');
      await sleep(delay);
    }
  }

  // ---- callback sink: runs inside X_dispatch; only records, never calls back into corosync ----

  private readonly sink: CallbackSink = {
    quorum: (h, quorate, ringSeq, members) => {
      if (this.session?.owns('quorum', h)) this.pending.push(this.state.setQuorum(quorate, ringSeq, members));
    },
    votequorumChanged: (h) => {
      if (this.session?.owns('votequorum', h)) this.vqDirty = true;
    },
    cpgMessage: (h, group, nodeid, pid, data) => {
      if (this.session?.owns('cpg', h)) this.pending.push({ type: 'cpg-message', group, nodeid, pid, data });
    },
    cpgMembership: (h, group, members, left, joined) => {
      if (!this.session?.owns('cpg', h)) return;
      if (group === this.group) this.state.setCpgMembers(members);
      this.pending.push({ type: 'cpg-membership', group, members, joined, left });
    },
    configChanged: (h) => {
      if (this.session?.owns('cmap', h)) this.configDirty = true;
    },
  };

  private clearTimers(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.reconnectTimer = this.refreshTimer = null;
  }

  /** Releases what start() acquired; callback slots last, when no handle can call them anymore. */
  private release(): void {
    this.phase = 'stopped';
    this.poller?.close();
    this.poller = null;
    if (this.callbacks) unregisterCallbacks(this.callbacks);
    this.callbacks = null;
    this.settleStart?.reject(new Error('CorosyncClient stopped before connecting to corosync'));
    this.settleStart = null;
    for (const st of this.streams) st.end();
    this.streams.clear();
    this.emit('stopped');
  }
}

// What PromoteDatabase and FollowDatabase do to the MariaDB servers of the cluster.
//
// Invariants this relies on (see lab/src/mariadb.ts for the server config):
//  - every mariadbd starts read_only=ON with replication stopped; only promote() turns read_only
//    off, so a returning old primary never takes a write before it has rejoined as a replica;
//  - every node logs what it applies (log_slave_updates), so any replica can feed the others;
//  - a write is acknowledged only once a majority of the database nodes has it (the panel's
//    barrier, panel/server/durability.ts). A promotion therefore surveys a majority, starts from
//    the most advanced copy by (epoch, position) (core/db-role.ts chooseSource), never drops a relay
//    log before it is applied, and writes a new epoch that a majority must have before the first
//    client write: a later primary always has a larger epoch than an earlier one.
import { setTimeout as sleep } from "node:timers/promises";
import { withTimeout } from "@ha/shared";
import { chooseSource, copiesQuorum, nextEpoch, type DbCopy } from "../../core/db-role.ts";
import { containsPos, errantGtids, formatGtidPos, gtidText, type GtidPos } from "./gtid.ts";
import { exec, ioWaitingForSpace, readState, rows, waitApplied, type DbNodeState, type SqlConn } from "./state.ts";
import { describeNode, type DbNodeHealth, type DbProbe } from "./health.ts";

/**
 * `member: false` = not in this node's current corosync membership: most likely down, so the
 * promotion gives it only `outsiderReachTimeoutMs` (a live server on the LAN answers in
 * milliseconds; a crashed host never does, and waiting the full timeout delays every failover).
 */
export type DbPeer = { nodeid: number; host: string; port?: number; replication: boolean; member?: boolean };

export type DbReplicationOptions = {
  self: number;
  /** Every configured node, self included (host: the address replicas connect to). */
  peers: () => DbPeer[];
  /** A management connection to a node's mariadbd (self: the local socket). */
  connect: (nodeid: number) => Promise<SqlConn>;
  /** The account replicas log in to the primary with. */
  repl: { user: string; password: string };
  /** The application database (dropped on nodes with replication off). */
  appDatabase: string;
  /** How long a lagging new primary may take to catch up before promotion fails. */
  catchUpTimeoutMs?: number;
  /** How long a peer may take to answer at all. */
  reachTimeoutMs?: number;
  /** The same for a peer outside the current membership (see DbPeer.member). */
  outsiderReachTimeoutMs?: number;
  /** How long follow() waits for the master to become writable. */
  masterWaitMs?: number;
  log?: (level: "info" | "warn" | "error", msg: string, extra?: object) => void;
  now?: () => number;
};

/** A step of a promotion, kept for the incident record. */
export type Phase = { name: string; at: string; ms: number; ok: boolean; detail?: string };

export type PromotionReport = {
  primary: number;
  /** The epoch this promotion wrote (db-role.ts nextEpoch). */
  epoch: number;
  /** Kill-to-writable is measured by the caller; this is promote() start to read_only=OFF. */
  writableAfterMs: number;
  totalMs: number;
  source: number;
  position: string;
  unreachable: number[];
  problems: string[];
  phases: Phase[];
};

export class DbError extends Error {
  override name = "DbError";
  constructor(
    message: string,
    readonly phases: Phase[] = [],
    /** node: this node's copy cannot be primary (diverged, behind and stuck, server down). */
    readonly failure: PromotionFailure = "node",
  ) {
    super(message);
  }
}

type Reached = { nodeid: number; peer: DbPeer; conn: SqlConn; state: DbNodeState };

/** Where every promotion records its epoch (its own database: the panel's schema is drizzle's). */
export const META_DATABASE = "ha_meta";

/** The latest epoch row of a node's copy and who wrote it (nodeid 0: none). */
export async function readLatestEpoch(c: SqlConn): Promise<{ epoch: number; nodeid: number }> {
  try {
    const [r] = await rows(c, `SELECT epoch, nodeid FROM ${META_DATABASE}.db_epochs ORDER BY epoch DESC LIMIT 1`);
    return { epoch: Number(r?.epoch ?? 0), nodeid: Number(r?.nodeid ?? 0) };
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    if (errno === 1146 || errno === 1049) return { epoch: 0, nodeid: 0 };
    throw err;
  }
}

/**
 * May a replica follow (or be re-cloned from) `primary` now? When it is writable, or in the last
 * step of its promotion: it wrote an epoch newer than `ourEpoch` and replicates from no one (its
 * history is chosen; it waits for a majority to take it). Earlier, it may still be catching up.
 */
export async function historyChosen(c: SqlConn, primary: number, ourEpoch: number, st?: DbNodeState): Promise<boolean> {
  const state = st ?? (await readState(c));
  if (!state.readOnly) return true;
  const latest = await readLatestEpoch(c);
  return !state.replica && latest.nodeid === primary && latest.epoch > ourEpoch;
}

/** The highest epoch a node's copy has (0: none yet, e.g. a cluster from before epochs). */
export async function readEpoch(c: SqlConn): Promise<number> {
  return (await readLatestEpoch(c)).epoch;
}

/** Why a promotion failed, for the node's eligibility: "cluster" = no majority (not this node's fault). */
export type PromotionFailure = "cluster" | "node";

export class DbReplication {
  private readonly o: Required<Omit<DbReplicationOptions, "log" | "now">> & Pick<DbReplicationOptions, "log">;
  private readonly now: () => number;

  constructor(opts: DbReplicationOptions) {
    this.o = { catchUpTimeoutMs: 30_000, reachTimeoutMs: 2000, outsiderReachTimeoutMs: 300, masterWaitMs: 30_000, ...opts };
    this.now = opts.now ?? (() => performance.now());
  }

  private peer(nodeid: number): DbPeer {
    const p = this.o.peers().find((x) => x.nodeid === nodeid);
    if (!p) throw new DbError(`n${nodeid} is not a configured node`);
    return p;
  }

  private async reach(nodeid: number, timeoutMs = this.o.reachTimeoutMs): Promise<SqlConn> {
    const pending = this.o.connect(nodeid);
    try {
      return await withTimeout(pending, timeoutMs, `no answer within ${timeoutMs} ms`);
    } catch (err) {
      pending.then((c) => c.end()).catch(() => undefined); // a late connection is closed
      throw err;
    }
  }

  private async survey(peer: DbPeer): Promise<Reached> {
    const conn = await this.reach(peer.nodeid, peer.member === false && peer.nodeid !== this.o.self ? this.o.outsiderReachTimeoutMs : this.o.reachTimeoutMs);
    try {
      return { nodeid: peer.nodeid, peer, conn, state: await readState(conn) };
    } catch (err) {
      await conn.end().catch(() => undefined);
      throw err;
    }
  }

  /** Waits until `c` has applied `target`, watching for replication errors; null when done. */
  private async catchUp(c: SqlConn, target: string): Promise<string | null> {
    const deadline = this.now() + this.o.catchUpTimeoutMs;
    for (;;) {
      if (await waitApplied(c, target, 250)) return null;
      const rep = (await readState(c)).replica;
      if (rep?.ioErrno) return `replication error ${rep.ioErrno}: ${rep.ioError}`;
      if (rep?.sqlErrno) return `replication error ${rep.sqlErrno}: ${rep.sqlError}`;
      if (this.now() >= deadline) return `not done within ${this.o.catchUpTimeoutMs} ms, at ${formatGtidPos((await readState(c)).pos) || "nothing"}`;
    }
  }

  /** Makes the local server read-only (used on step-down; every start is read-only anyway). */
  async demote(): Promise<void> {
    let c: SqlConn;
    try {
      c = await this.reach(this.o.self);
    } catch (err) {
      // Not running (refused / no socket): every start is read-only, so it is as good as demoted.
      // A server that hangs (timeout) is not: that is reported.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ECONNREFUSED" || code === "ENOENT") return;
      throw err;
    }
    try {
      await exec(c, "SET GLOBAL read_only = ON");
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** Is the local server read-only? (The primary's check for a restarted mariadbd.) */
  async localReadOnly(): Promise<boolean> {
    const c = await this.reach(this.o.self, 1000);
    try {
      const [v] = await rows(c, "SELECT @@global.read_only AS ro", [], 1000);
      return Number(v?.ro) !== 0;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /**
   * Turns this node's server into the writable primary without losing an acknowledged write.
   * `term`: the master's term (the epoch written is at least that). `stillWanted` is asked right
   * before the server becomes writable: a demote that came meanwhile wins.
   */
  async promote(term = 0, stillWanted: () => boolean = () => true): Promise<PromotionReport> {
    const self = this.o.self;
    const t0 = this.now();
    const phases: Phase[] = [];
    const problems: string[] = [];
    let mark = t0;
    const phase = (name: string, ok: boolean, detail?: string) => {
      const t = this.now();
      phases.push({ name, at: new Date().toISOString(), ms: Math.round(t - mark), ok, ...(detail ? { detail } : {}) });
      mark = t;
    };
    const fail = (msg: string, failure: PromotionFailure = "node"): never => {
      phase("failed", false, msg);
      throw new DbError(`promotion of n${self} failed: ${msg}`, phases, failure);
    };

    /** IO threads still stopping on a side connection (see step 3), by node. */
    const sideStops = new Map<number, Promise<void>>();
    /** Replicas being pointed at us (step 7); awaited before the connections close. */
    let repoints: Array<Promise<unknown>> = [];
    // 1. Survey every node we can reach.
    const peers = this.o.peers();
    const results = await Promise.allSettled(peers.map((p) => this.survey(p)));
    const reached = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const unreachable = peers.filter((_, i) => results[i]!.status === "rejected").map((p) => p.nodeid);
    try {
      const selfResult = results[peers.findIndex((p) => p.nodeid === self)];
      if (!selfResult) fail(`n${self} is not in the node list`);
      if (selfResult!.status === "rejected") fail(`the local database server does not answer: ${(selfResult!.reason as Error).message}`);
      if (!this.peer(self).replication) fail(`n${self} has replication off: it holds no copy of the database`);
      const dbNodes = peers.filter((p) => p.replication).map((p) => p.nodeid);
      const need = copiesQuorum(dbNodes.length);
      const reachedCopies = reached.filter((r) => r.peer.replication).length;
      phase("survey", true, `reached ${reached.map((r) => `n${r.nodeid}`).join(",")}${unreachable.length ? `; unreachable ${unreachable.map((n) => `n${n}`).join(",")}` : ""}`);
      // Without a majority of the copies the most advanced one may be missing: change nothing.
      if (reachedCopies < need) fail(`reached ${reachedCopies} of ${dbNodes.length} database nodes, need ${need}: a copy that did not answer may hold acknowledged writes; nothing was changed`, "cluster");

      // A demote or follow that came while this promotion waited in the queue wins: touch nothing.
      if (!stillWanted()) fail("replaced by a newer database action before it changed anything", "cluster");

      // 2. Fence: any other writable server (an old primary that is still up) goes read-only first.
      const writable = reached.filter((r) => r.nodeid !== self && !r.state.readOnly);
      for (const r of writable) await exec(r.conn, "SET GLOBAL read_only = ON");
      if (writable.length) phase("fence", true, `set read_only on ${writable.map((r) => `n${r.nodeid}`).join(",")}`);

      // 3. Freeze what replicas receive, then let each apply its relay log (never dropped unapplied).
      //    A replica of a server that did not answer cannot receive anything more, so what it has is
      //    final; but its IO thread is then stuck reconnecting and STOP SLAVE takes up to 2 s to
      //    interrupt it (MariaDB re-sends the kill every 2 s). That stop runs on a side connection
      //    and is awaited only before this replica is changed again.
      const replicas = reached.filter((r) => r.state.replica);
      const unreachableHosts = new Set(peers.filter((p) => unreachable.includes(p.nodeid)).map((p) => p.host));
      const stopStart = this.now();
      await Promise.all(
        replicas.map(async (r) => {
          if (!unreachableHosts.has(r.state.replica!.masterHost)) return exec(r.conn, "STOP SLAVE IO_THREAD");
          const stop = this.stopIoThreadAside(r.nodeid);
          sideStops.set(r.nodeid, stop);
          await Promise.race([stop, sleep(100)]);
        }),
      );
      const stopMs = Math.round(this.now() - stopStart);
      await Promise.all(reached.map(async (r) => (r.state = await readState(r.conn))));
      const drained = await Promise.all(
        replicas.map(async (r) => {
          const rep = r.state.replica!;
          if (!rep.sqlRunning) return rep.sqlErrno ? `n${r.nodeid}'s replication stopped with error ${rep.sqlErrno}: ${rep.sqlError}` : null;
          const ok = await waitApplied(r.conn, formatGtidPos(rep.ioPos), this.o.catchUpTimeoutMs);
          return ok ? null : `n${r.nodeid} did not apply its relay log within ${this.o.catchUpTimeoutMs} ms`;
        }),
      );
      problems.push(...drained.filter((x): x is string => x !== null));
      await Promise.all(reached.map(async (r) => (r.state = await readState(r.conn))));
      phase("drain", true, [`IO threads stopped in ${stopMs} ms`, ...problems].join("; "));

      // 4. Choose the most advanced copy, by (epoch, position), among the database nodes reached.
      //    An old primary fenced in step 2 counts only if it holds a copy (replication on).
      const copies: DbCopy[] = await Promise.all(
        reached.filter((r) => r.peer.replication).map(async (r) => ({ nodeid: r.nodeid, epoch: await readEpoch(r.conn), pos: receivedPos(r.state) })),
      );
      const choice = chooseSource(dbNodes, copies, self);
      if (!choice.ok) return fail(`${choice.reason}; nothing was changed`, "cluster");
      const best = choice.source;
      const diverged = choice.diverged.map((d) => d.copy.nodeid);
      for (const d of choice.diverged) problems.push(`n${d.copy.nodeid} has transactions the most advanced copy (n${best.nodeid}, epoch ${best.epoch}) lacks, never acknowledged by a majority: ${gtidText(d.errant) || "an older history"}; it is rebuilt from the new primary`);
      const selfState = reached.find((r) => r.nodeid === self)!;
      const target = formatGtidPos(best.pos);
      phase("choose", true, `most advanced: n${best.nodeid} at epoch ${best.epoch}, ${target || "(empty)"}; ${choice.counted.length} of ${dbNodes.length} copies compared`);

      // 5. Catch up from it when this node is behind.
      if (diverged.includes(self)) fail(`n${self} has transactions the most advanced copy n${best.nodeid} lacks (${gtidText(errantGtids(selfState.state.pos, best.pos))}); it cannot become primary before it is rebuilt`);
      if (!containsPos(selfState.state.pos, best.pos)) {
        const source = reached.find((r) => r.nodeid === best.nodeid)!;
        await sideStops.get(self);
        await this.replicateFrom(selfState, source.peer, { wait: false });
        const err = await this.catchUp(selfState.conn, target);
        await exec(selfState.conn, "STOP SLAVE");
        if (err) fail(`n${self} is behind n${best.nodeid} and could not catch up (${err}; needs ${target}); it stays read-only, no copy was changed`);
        phase("catch-up", true, `from n${best.nodeid} to ${target}`);
      }

      if (!stillWanted()) fail("replaced by a newer database action before it wrote its epoch", "cluster");

      // 6. Stop replicating and write the new epoch, still read-only (the agent's account may):
      //    the first transaction of this primary's history.
      //    If our own IO thread is still stopping (its primary is gone, everything it received is
      //    applied: nothing more can arrive), the replica settings are dropped after we are writable.
      const selfStopping = sideStops.get(self);
      const dropReplicaSettings = async () => {
        await exec(selfState.conn, "STOP SLAVE");
        await exec(selfState.conn, "RESET SLAVE ALL");
      };
      if (!selfStopping) await dropReplicaSettings();
      const epoch = nextEpoch(copies.map((c) => c.epoch), term);
      await exec(selfState.conn, `CREATE DATABASE IF NOT EXISTS ${META_DATABASE}`);
      await exec(selfState.conn, `CREATE TABLE IF NOT EXISTS ${META_DATABASE}.db_epochs (epoch BIGINT UNSIGNED NOT NULL PRIMARY KEY, nodeid INT NOT NULL, term BIGINT NOT NULL, from_position VARCHAR(512) NOT NULL, started_at DATETIME(3) NOT NULL) ENGINE=InnoDB`);
      await exec(selfState.conn, `INSERT INTO ${META_DATABASE}.db_epochs (epoch, nodeid, term, from_position, started_at) VALUES (?, ?, ?, ?, NOW(3))`, [epoch, self, term, target]);
      const [lg] = await rows(selfState.conn, "SELECT @@last_gtid AS g");
      const epochGtid = String(lg?.g ?? "");
      phase("epoch", true, `epoch ${epoch} at ${epochGtid}`);

      // 7. Point the others at us (or make sure replication-off nodes hold no copy) and wait until a
      //    majority of the copies has the epoch: only then may a client write be acknowledged here.
      const others = reached.filter((r) => r.nodeid !== self);
      let confirmed = 1;
      let settled = 0;
      const copiesOnOthers = others.filter((r) => r.peer.replication && !diverged.includes(r.nodeid)).length;
      let decide = () => undefined as void;
      repoints = others.map(async (r) => {
        if (!r.peer.replication) return this.dropCopy(r.conn).then(() => "no copy");
        if (diverged.includes(r.nodeid)) throw new DbError(`n${r.nodeid} diverged; left read-only and not replicating (its agent rebuilds it)`);
        try {
          await sideStops.get(r.nodeid)?.catch(() => undefined);
          r.state = await readState(r.conn);
          await this.replicateFrom(r, this.peer(self), { wait: true });
          if (!(await waitApplied(r.conn, epochGtid, this.o.reachTimeoutMs * 2))) throw new DbError(`n${r.nodeid} did not apply epoch ${epoch} within ${this.o.reachTimeoutMs * 2} ms`);
          confirmed++;
          return "replica";
        } finally {
          settled++;
          decide();
        }
      });
      for (const p of repoints) p.catch(() => undefined); // read with allSettled below
      let replaced: NodeJS.Timeout | undefined;
      const majority = new Promise<boolean>((resolve) => {
        decide = () => (confirmed >= need ? resolve(true) : settled === copiesOnOthers || !stillWanted() ? resolve(false) : undefined);
        replaced = setInterval(decide, 100); // a newer action ends the wait without waiting for slow replicas
        decide();
      });
      const haveMajority = await majority.finally(() => clearInterval(replaced));
      phase("majority", haveMajority, `${confirmed} of ${dbNodes.length} copies have epoch ${epoch} (need ${need})`);
      if (!haveMajority) {
        // Replicating from no one is what tells a follower our history is chosen (waitWritable).
        if (selfStopping) await selfStopping.catch(() => undefined).then(dropReplicaSettings);
        const why = (await Promise.allSettled(repoints)).flatMap((x, i) => (x.status === "rejected" ? [`n${others[i]!.nodeid}: ${(x.reason as Error).message}`] : []));
        fail(`only ${confirmed} of ${dbNodes.length} database nodes took the new epoch (need ${need})${why.length ? ` (${why.join("; ")})` : ""}; the database stays read-only`, "cluster");
      }

      // 8. Become the primary, unless a demote came meanwhile.
      if (!stillWanted()) fail("a demote came during the promotion: the database stays read-only", "cluster");
      await exec(selfState.conn, "SET GLOBAL rpl_semi_sync_master_enabled = ON");
      await exec(selfState.conn, "SET GLOBAL read_only = OFF");
      const writableAfterMs = Math.round(this.now() - t0);
      phase("writable", true);
      if (selfStopping) await selfStopping.catch(() => undefined).then(dropReplicaSettings);

      const outcome = await Promise.allSettled(repoints);
      outcome.forEach((x, i) => x.status === "rejected" && problems.push(`n${others[i]!.nodeid}: ${(x.reason as Error).message}`));
      phase("repoint", outcome.every((x) => x.status === "fulfilled"), others.map((r, i) => `n${r.nodeid}:${outcome[i]?.status === "fulfilled" ? (outcome[i] as PromiseFulfilledResult<unknown>).value : "failed"}`).join(","));
      if (unreachable.some((id) => peers.find((p) => p.nodeid === id)?.replication)) {
        problems.push(`${unreachable.map((n) => `n${n}`).join(",")} did not answer: they rejoin as replicas when they come back`);
      }

      const report: PromotionReport = { primary: self, epoch, writableAfterMs, totalMs: Math.round(this.now() - t0), source: best.nodeid, position: target, unreachable, problems, phases };
      this.o.log?.(problems.length ? "warn" : "info", `database promoted on n${self} in ${writableAfterMs} ms (epoch ${epoch})`, report);
      return report;
    } finally {
      await Promise.allSettled(repoints);
      await Promise.all(reached.map((r) => r.conn.end().catch(() => undefined)));
    }
  }

  /** STOP SLAVE IO_THREAD on a connection of its own, so the survey's connection stays usable. */
  private async stopIoThreadAside(nodeid: number): Promise<void> {
    const c = await this.reach(nodeid);
    try {
      await exec(c, "STOP SLAVE IO_THREAD");
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** FollowDatabase: replicate from `master` (replication on) or hold no copy (off). */
  async follow(master: number, stillWanted: () => boolean = () => true): Promise<"replicating" | "already" | "no-copy"> {
    const self = this.o.self;
    if (master === self) throw new DbError(`n${self} cannot follow itself`);
    const me = await this.reach(self);
    try {
      await exec(me, "SET GLOBAL read_only = ON"); // before anything else
      if (!this.peer(self).replication) {
        await this.dropCopy(me);
        return "no-copy";
      }
      const mp = this.peer(master);
      const state = await readState(me);
      const rep = state.replica;
      if (rep && rep.masterHost === mp.host && rep.ioRunning === "Yes" && rep.sqlRunning) return "already";
      await this.waitWritable(master, me, stillWanted);
      await this.replicateFrom({ nodeid: self, peer: this.peer(self), conn: me, state }, mp, { wait: true });
      return "replicating";
    } finally {
      await me.end().catch(() => undefined);
    }
  }

  /**
   * After a re-clone (repair.ts): starts this node's server, on `c` (which may hold the replication
   * lock), replicating from `primary` with the checks of a follow; throws if it does not run.
   */
  async replicateSelfFrom(c: SqlConn, primary: number): Promise<void> {
    const self = this.o.self;
    await this.replicateFrom({ nodeid: self, peer: this.peer(self), conn: c, state: await readState(c) }, this.peer(primary), { wait: true });
  }

  /**
   * A replica follows only a primary that has chosen its history: one that is writable, or one in
   * the last step of its promotion, waiting for a majority to take its new epoch (it wrote an epoch
   * newer than ours and replicates from no one). Following earlier could compare us with a copy that
   * is still catching up, and call our acknowledged writes errant.
   */
  private async waitWritable(master: number, self: SqlConn, stillWanted: () => boolean) {
    const deadline = this.now() + this.o.masterWaitMs;
    const ours = await readEpoch(self);
    let last = "";
    while (this.now() < deadline) {
      // A newer role action replaced this one: give the queue back at once.
      if (!stillWanted()) throw new DbError(`n${this.o.self} stopped waiting for n${master}: a newer database action came`, [], "cluster");
      try {
        const c = await this.reach(master);
        try {
          if (await historyChosen(c, master, ours)) return;
          last = `still read-only (promotion not finished; ours is epoch ${ours})`;
        } finally {
          await c.end().catch(() => undefined);
        }
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new DbError(`n${this.o.self} cannot follow n${master}: its database is not a writable primary after ${this.o.masterWaitMs} ms (${last})`);
  }

  /**
   * Points `r` at `primary` with GTIDs. Drains its relay log first, refuses errant GTIDs, and
   * (wait) checks the primary accepted it.
   */
  private async replicateFrom(r: Reached, primary: DbPeer, opts: { wait: boolean }) {
    // The new primary's agent and the replica's own agent may both do this at once: serialise.
    const [got] = await rows(r.conn, "SELECT GET_LOCK('ha_replication', 30) AS ok", [], 35_000);
    if (Number(got?.ok) !== 1) throw new DbError(`n${r.nodeid}: another replication change did not finish within 30 s`);
    try {
      await this.replicateFromLocked(r, primary, opts);
    } finally {
      await rows(r.conn, "SELECT RELEASE_LOCK('ha_replication')").catch(() => undefined);
    }
  }

  private async replicateFromLocked(r: Reached, primary: DbPeer, opts: { wait: boolean }) {
    const c = r.conn;
    r.state = await readState(c);
    const cur = r.state.replica;
    if (opts.wait && cur && cur.masterHost === primary.host && cur.ioRunning === "Yes" && cur.sqlRunning) return; // done meanwhile
    if (r.state.replica) {
      await exec(c, "STOP SLAVE IO_THREAD");
      const st = await readState(c);
      if (st.replica?.sqlRunning) await waitApplied(c, formatGtidPos(st.replica.ioPos), this.o.catchUpTimeoutMs);
      await exec(c, "STOP SLAVE");
      r.state = await readState(c);
    }
    if (opts.wait) {
      // Compare with what the primary has: a replica must never be ahead of it.
      const pc = await this.reach(primary.nodeid);
      try {
        const ps = await readState(pc);
        const errant = errantGtids(r.state.pos, ps.binlogPos);
        if (errant.length) throw errantError(r.nodeid, primary.nodeid, gtidText(errant));
      } finally {
        await pc.end().catch(() => undefined);
      }
    }
    await exec(c, "SET GLOBAL gtid_slave_pos = ?", [formatGtidPos(r.state.pos)]);
    await exec(c, "CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, MASTER_HEARTBEAT_PERIOD = 1", [
      primary.host,
      primary.port ?? 3306,
      this.o.repl.user,
      this.o.repl.password,
    ]);
    await exec(c, "START SLAVE");
    if (opts.wait) await this.confirmStarted(r.nodeid, c, primary.nodeid);
  }

  /** The primary refuses a diverged replica only once it connects: wait for that verdict. */
  private async confirmStarted(nodeid: number, c: SqlConn, primary: number) {
    const deadline = this.now() + 10_000;
    let last = "";
    while (this.now() < deadline) {
      const rep = (await readState(c)).replica;
      if (rep?.ioErrno === 1236) {
        await exec(c, "STOP SLAVE");
        throw errantError(nodeid, primary, rep.ioError);
      }
      if (rep && rep.sqlErrno) throw new DbError(`n${nodeid} stopped replicating from n${primary}: error ${rep.sqlErrno}: ${rep.sqlError}`);
      if (rep?.ioRunning === "Yes" && rep.sqlRunning) return;
      last = rep ? `IO ${rep.ioRunning}${rep.ioError ? ` (${rep.ioError})` : ""}` : "no replica status";
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new DbError(`n${nodeid} could not start replicating from n${primary} within 10 s: ${last}`);
  }

  /** Replication off: stop, forget the master, and drop the data and binlogs. */
  private async dropCopy(c: SqlConn) {
    await exec(c, "SET GLOBAL read_only = ON");
    await exec(c, "STOP SLAVE");
    await exec(c, "RESET SLAVE ALL");
    // Local housekeeping only: nothing of this may reach a binlog another node reads.
    await exec(c, "SET SESSION sql_log_bin = 0");
    await exec(c, `DROP DATABASE IF EXISTS \`${this.o.appDatabase.replace(/`/g, "``")}\``);
    await exec(c, `DROP DATABASE IF EXISTS ${META_DATABASE}`);
    await exec(c, "RESET MASTER");
    await exec(c, "SET GLOBAL gtid_slave_pos = ''");
  }

  /** Where each node stands, for `corolistener -l` and the agent's watch. Never throws. */
  async health(): Promise<DbNodeHealth[]> {
    return Promise.all(this.o.peers().map(async (p) => describeNode(p.nodeid, p.replication, await this.probe(p.nodeid))));
  }

  private async probe(nodeid: number): Promise<DbProbe> {
    let c: SqlConn;
    try {
      c = await this.reach(nodeid);
    } catch (err) {
      return { kind: "unreachable", error: (err as Error).message };
    }
    try {
      // Asked first: on a full disk SHOW SLAVE STATUS would hang.
      if (await ioWaitingForSpace(c)) {
        const [v] = await rows(c, "SELECT @@global.read_only AS ro, @@global.gtid_current_pos AS pos", [], 3000);
        return { kind: "disk-full", readOnly: Number(v?.ro) !== 0, gtid: String(v?.pos ?? "") };
      }
      return { kind: "state", state: await readState(c) };
    } catch (err) {
      return { kind: "unreachable", error: `does not answer queries: ${(err as Error).message}` };
    } finally {
      await c.end().catch(() => undefined);
    }
  }
}

/** What a node has received: applied, plus what sits in its relay log. */
function receivedPos(s: DbNodeState): GtidPos {
  if (!s.replica) return s.pos;
  const merged = new Map(s.pos);
  for (const g of s.replica.ioPos.values()) {
    const had = merged.get(g.domain);
    if (!had || had.seq < g.seq) merged.set(g.domain, g);
  }
  return merged;
}

/**
 * This node cannot replicate from the primary as it is: it has transactions the primary lacks, or
 * the primary refused it (error 1236). Its agent re-clones it from the primary (repair.ts).
 */
export class DbDivergedError extends DbError {
  override name = "DbDivergedError";
}

function errantError(nodeid: number, primary: number, detail: string) {
  const what = /Could not find GTID state|purged/i.test(detail)
    ? `cannot replicate from the primary n${primary}: it needs transactions n${primary} no longer has in its binlogs (${detail})`
    : `has transactions the primary n${primary} does not have (errant GTIDs: ${detail})`;
  return new DbDivergedError(
    `n${nodeid} ${what}; it was left read-only and not replicating. Its agent re-clones it from n${primary} by itself: it first saves what it discards (the errant transactions and a dump of its copy), then loads a fresh copy of n${primary} and replicates (incident db-repair)`,
  );
}

// Re-exported for callers that only need to query.
export { rows };

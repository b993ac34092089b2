// What the daemon calls for the core's database actions. Serialises them, applies the schema after
// a promotion, records incidents in the database, and retries a failed step until a newer action
// replaces it (the core emits each action once).
import mysql from "mysql2/promise";
import { z } from "zod";
import { DbTarget, migrate } from "@ha/db";
import { statfs } from "node:fs/promises";
import { withTimeout } from "@ha/shared";
import { DbDivergedError, DbError, DbReplication, type DbPeer, type Phase, type PromotionReport } from "./replication.ts";
import { DbRepairError, divergence, localEligibility, describeRepair, rebuildFromPrimary, type DbCliTarget, type DbRepairStatus, type RepairReport } from "./repair.ts";
import { assertWritable, exec, type SqlConn } from "./state.ts";
import { diskAction, type DbHealthDoc, type DbNodeHealth } from "./health.ts";

export type { DbHealthDoc } from "./health.ts";

/** The agent config's `database` section. */
export const DatabaseConfigSchema = z
  .object({
    socketPath: z.string().min(1).default("/run/mysqld/mysqld.sock"),
    port: z.number().int().min(1).max(65535).default(3306),
    database: z.string().regex(/^\w{1,64}$/).default("ha"),
    /** Manages replication on every node (local socket, peers over TCP). */
    adminUser: z.string().min(1).default("ha_agent"),
    adminPassword: z.string().min(1),
    /** Replicas log in to the primary with this account (REPLICATION SLAVE only). */
    replUser: z.string().min(1).default("ha_repl"),
    replPassword: z.string().min(1),
    catchUpTimeoutMs: z.number().int().positive().default(30_000),
    retryMs: z.number().int().positive().default(5000),
    /** The local datadir (relay logs live there): the disk guard watches its free space. */
    datadir: z.string().min(1).default("/var/lib/mysql"),
    /** Below this much free space a replica stops receiving, cleanly, before the disk is full. */
    minFreeMb: z.number().nonnegative().default(512),
    /** How often the watch reads every node's DB state (for `corolistener -l` and incidents). */
    watchMs: z.number().int().positive().default(3000),
    /** A diverged replica saves what it discards here before its agent re-clones it (repair.ts). */
    discardDir: z.string().min(1).default("/var/lib/corolistener/db-discarded"),
    /** Each step of a re-clone that runs a tool (dump, load, binlog decoding) gets at most this long. */
    repairTimeoutMs: z.number().int().positive().default(600_000),
  })
  .strict();
export type DatabaseConfig = z.output<typeof DatabaseConfigSchema>;

export type DbLog = (level: "info" | "warn" | "error", msg: string, extra?: object) => void;

export type DbEffectsOptions = {
  self: number;
  config: DatabaseConfig;
  /** The node list (corosync nodelist: address and replication flag). */
  peers: () => DbPeer[];
  log: DbLog;
  /** Tests reach nodes differently; default: local socket for self, TCP for peers. */
  connect?: (nodeid: number) => Promise<SqlConn>;
  /** Tests: where migrate() runs (default: the local socket). */
  localTarget?: DbTarget;
  /** How mariadb-dump/mariadb/mariadb-binlog reach a node (re-clone); default: local socket for self, TCP for peers. */
  cli?: (nodeid: number) => DbCliTarget;
};

/** A demote that takes longer than this is reported failed (the core retries it). */
const DEMOTE_TIMEOUT_MS = 2000;
/** How often the primary checks that its mariadbd is still writable. */
const PRIMARY_CHECK_MS = 500;

type Incident = { kind: string; severity: "info" | "warning" | "error"; summary: string; reason: string; phases?: Phase[] };

export class DbEffects {
  readonly replication: DbReplication;
  private queue: Promise<unknown> = Promise.resolve();
  /** Bumped by every new action: a pending retry of an older one gives up. */
  private generation = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  /** The master this node was last told to follow (incidents about its replica go there). */
  private following: number | null = null;
  /** The last follow failed (it recorded its own incident; the watch does not repeat it). */
  private followFailing = false;
  /** This node's replication flag as last acted upon: a change in the panel re-runs follow. */
  private replicationFlag: boolean | undefined;
  private watchTimer: NodeJS.Timeout | null = null;
  private lastHealth: DbHealthDoc | null = null;
  /** This node should be the writable primary (promoted and not demoted since). */
  private wantPrimary = false;
  /** Consecutive watch readings that found the local replica stopped. */
  private stoppedReadings = 0;
  /** The role action running now, if any (checkPrimary must not start a second promotion). */
  private running: string | null = null;
  /** The last promotion succeeded and nothing replaced it: a read-only server now means it restarted. */
  private promoted = false;
  /** The term of the last promotion asked for (a re-promotion after a restart uses it). */
  private lastTerm = 0;
  /** Why the last promotion failed for this node's own copy (see promotionBlocker). */
  private promotionProblem: string | null = null;
  private primaryTimer: NodeJS.Timeout | null = null;
  /** The disk guard stopped this replica's IO thread. */
  private pausedForDisk = false;
  /** The problem of the local replica last recorded as an incident (recorded once each). */
  private reported: string | null = null;
  /** The local node's re-clone (repair.ts): null while it never diverged. */
  private repair: DbRepairStatus | null = null;
  /** A re-clone the watch asked for is queued or running. */
  private repairQueued = false;
  /** Failed re-clones of the current problem, and when the next may start (backoff). */
  private repairFailures = 0;
  private nextRepairAt = 0;

  constructor(private readonly o: DbEffectsOptions) {
    const c = o.config;
    this.replication = new DbReplication({
      self: o.self,
      peers: o.peers,
      connect: o.connect ?? ((id) => this.connectTcpOrSocket(id)),
      repl: { user: c.replUser, password: c.replPassword },
      appDatabase: c.database,
      catchUpTimeoutMs: c.catchUpTimeoutMs,
      log: o.log,
    });
  }

  private connectTcpOrSocket(nodeid: number): Promise<SqlConn> {
    const c = this.o.config;
    const base = { user: c.adminUser, password: c.adminPassword, connectTimeout: 2000 };
    if (nodeid === this.o.self) return mysql.createConnection({ ...base, socketPath: c.socketPath });
    const peer = this.o.peers().find((p) => p.nodeid === nodeid);
    if (!peer) return Promise.reject(new DbError(`n${nodeid} is not in the node list`));
    return mysql.createConnection({ ...base, host: peer.host, port: peer.port ?? c.port });
  }

  /**
   * PromoteDatabase (`term`: the master's term; the epoch written is at least that). Resolves with
   * the first attempt's outcome; failures are retried until a demote or follow replaces it.
   */
  promote(reason: string, term = 0): Promise<PromotionReport> {
    this.following = null; // a primary follows no one: the replica watch stands down
    this.wantPrimary = true;
    this.promoted = false;
    this.lastTerm = term;
    const gen = this.generation + 1; // run() takes this generation
    return this.run("promote", reason, async () => {
      let report: PromotionReport;
      try {
        report = await this.replication.promote(term, () => gen === this.generation && this.wantPrimary);
        this.promotionProblem = null;
        this.promoted = gen === this.generation;
      } catch (err) {
        // A failure of this node's copy (diverged, behind and stuck, server down) makes it
        // ineligible as master until it has followed a primary again; "no majority" does not.
        if (err instanceof DbError && err.failure === "node") this.promotionProblem = err.message;
        throw err;
      }
      const target = this.o.localTarget ?? DbTarget.parse({ socketPath: this.o.config.socketPath, user: this.o.config.adminUser, password: this.o.config.adminPassword, database: this.o.config.database });
      const m = await migrate(target, { log: (msg) => this.o.log("info", `schema: ${msg}`) });
      const summary = `database primary is now n${this.o.self} (writable after ${report.writableAfterMs} ms, copy from n${report.source})`;
      await this.record(this.o.self, {
        kind: "db-promotion",
        severity: report.problems.length ? "warning" : "info",
        summary,
        reason: [reason, ...report.problems, m.applied.length ? `schema migrated: ${m.applied.join(", ")}` : ""].filter(Boolean).join("; "),
        phases: report.phases,
      });
      return report;
    }, (err) => ({ at: this.o.self, incident: { kind: "db-promotion-failed", severity: "error", summary: `database promotion on n${this.o.self} failed`, reason: `${reason}: ${err.message}`, phases: err instanceof DbError ? err.phases : [] } }));
  }

  /** FollowDatabase {master}. */
  follow(master: number, reason: string): Promise<string> {
    this.following = master;
    this.wantPrimary = this.promoted = false;
    this.replicationFlag = this.selfPeer()?.replication;
    const gen = this.generation + 1; // run() takes this generation
    return this.run(
      "follow",
      reason,
      async () => {
        let r: string;
        try {
          r = await this.replication.follow(master, () => gen === this.generation);
        } catch (err) {
          if (!(err instanceof DbDivergedError)) throw err;
          r = await this.repairOnFollow(master, err); // diverged or refused: re-clone, then it replicates
        }
        if (this.repair?.state === "diverged") this.repair = null; // it replicates: nothing to repair
        this.followFailing = false;
        this.promotionProblem = null; // it follows the primary's history again
        this.pausedForDisk = false; // a fresh start: the guard looks again at its next reading
        return r;
      },
      (err) => {
        this.followFailing = true;
        if (err instanceof DbRepairError) return { at: master, incident: this.repairFailedIncident(master, err) };
        return {
          at: master,
          incident: { kind: "db-replica-failed", severity: "error", summary: `n${this.o.self} cannot replicate from n${master}`, reason: `${reason}: ${err.message}` },
        };
      },
    );
  }

  private selfPeer() {
    return this.o.peers().find((p) => p.nodeid === this.o.self);
  }

  /**
   * The node list changed (corosync.conf). When this node's replication flag was switched in the
   * panel, follow the master again: that starts its replica, or stops it and drops the copy.
   */
  nodesChanged(): void {
    const flag = this.selfPeer()?.replication;
    if (this.following === null || flag === undefined || flag === this.replicationFlag) return;
    const master = this.following;
    this.o.log("info", `replication turned ${flag ? "on" : "off"} for n${this.o.self}: ${flag ? "starting its replica" : "stopping its replica and dropping its copy"}`);
    this.follow(master, `replication turned ${flag ? "on" : "off"} for n${this.o.self}`).catch(() => undefined);
  }

  /** The watch's last reading of every node (null before the first one); the local node's carries its re-clone state. */
  health(): DbHealthDoc | null {
    const h = this.lastHealth;
    if (!h || !this.repair) return h;
    const repair = describeRepair(this.repair);
    return { ...h, nodes: h.nodes.map((n) => (n.nodeid === this.o.self ? { ...n, repair } : n)) };
  }

  /** Starts the watch: reads every node's DB state, guards the local disk, records replica problems. */
  startWatch(intervalMs = this.o.config.watchMs): void {
    if (this.watchTimer) return;
    this.primaryTimer = setInterval(() => void this.checkPrimary(), PRIMARY_CHECK_MS);
    const tick = async () => {
      try {
        await this.watchOnce();
      } catch (err) {
        this.o.log("warn", `database watch: ${(err as Error).message}`);
      }
      if (this.watchTimer) this.watchTimer = setTimeout(tick, intervalMs);
    };
    this.watchTimer = setTimeout(tick, 0);
  }

  /** One reading of the watch (tests call it directly). */
  async watchOnce(): Promise<DbHealthDoc> {
    const nodes = await this.replication.health();
    this.lastHealth = { checkedAt: Date.now(), nodes };
    const me = nodes.find((n) => n.nodeid === this.o.self);
    if (me && me.role === "replica" && this.following !== null && this.selfPeer()?.replication) {
      const diverged = divergence(me, nodes.find((n) => n.nodeid === this.following));
      if (diverged) {
        this.repairFromWatch(this.following, diverged); // not awaited: the watch goes on reading
        return this.lastHealth;
      }
      if (this.repair?.state === "diverged" && me.replication === "running") this.repair = null;
      // A mariadbd that restarted (crash, kill, OOM) starts with replication stopped
      // (skip-slave-start): follow the master again, unless the disk guard stopped it or a role
      // action is already queued (it would do the same).
      // Two readings in a row: a promotion elsewhere stops replicas' IO threads for a moment too.
      this.stoppedReadings = me.replication === "stopped" ? this.stoppedReadings + 1 : 0;
      if (this.stoppedReadings >= 2 && !this.pausedForDisk && !this.followFailing && this.running === null) {
        this.stoppedReadings = 0;
        this.o.log("warn", `n${this.o.self}'s replica of n${this.following} is stopped (mariadbd restarted?): following n${this.following} again`);
        this.follow(this.following, "the replica was stopped (mariadbd restarted?)").catch(() => undefined);
        return this.lastHealth;
      }
      const acted = await this.guardDisk(me, this.following).catch((err: Error) => void this.o.log("warn", `database disk guard: ${err.message}`));
      await this.reportReplica(me, this.following);
      if (acted) this.lastHealth = { checkedAt: Date.now(), nodes: await this.replication.health() }; // show what the guard did
    }
    return this.lastHealth;
  }

  /** The local node's re-clone state (null: it never diverged), e.g. for the UI. */
  repairState(): DbRepairStatus | null {
    return this.repair;
  }

  /**
   * May this node become master as far as its own database goes? eligible=false while it diverged,
   * is being re-cloned, its replication is broken, or its mariadbd does not answer (from the
   * watch's last reading); `reason` says why, or what it is ("replica running").
   */
  localProblem(): { eligible: boolean; reason: string } {
    return localEligibility(this.lastHealth?.nodes.find((n) => n.nodeid === this.o.self), this.repair);
  }

  /** Resolves once the database actions queued so far (a re-clone the watch started included) are done. */
  idle(): Promise<void> {
    return this.enqueue(async () => undefined);
  }

  /** follow() found this node diverged or refused: re-clone it now, unless a failed attempt's backoff runs. */
  private async repairOnFollow(master: number, err: DbDivergedError): Promise<string> {
    const wait = this.nextRepairAt - Date.now();
    if (wait > 0) throw new DbError(`${err.message} (the last re-clone failed; next attempt in ${Math.ceil(wait / 1000)} s)`);
    await this.repairSelf(master, err.message, false);
    return "repaired";
  }

  /** The watch saw the local replica diverged or refused: queue one re-clone (serialised with the other actions). */
  private repairFromWatch(master: number, why: string) {
    if (this.repairQueued || Date.now() < this.nextRepairAt) return;
    this.repairQueued = true;
    const gen = this.generation;
    this.o.log("warn", `database watch: n${this.o.self} ${why}: re-cloning it from n${master}`);
    this.enqueue(async () => {
      if (gen !== this.generation || this.following !== master) return; // a newer action decides
      try {
        await this.repairSelf(master, why, true);
      } catch (err) {
        if (this.repairFailures === 1 && err instanceof DbRepairError) {
          const incident = this.repairFailedIncident(master, err);
          await this.record(master, incident).catch((e: Error) => this.o.log("warn", `incident not recorded on n${master} (${e.message}): ${incident.kind}: ${incident.summary}: ${incident.reason}`));
        }
      }
    })
      .catch(() => undefined)
      .finally(() => (this.repairQueued = false));
  }

  /** Runs inside the queue. Records the db-repair incident; throws DbRepairError (backoff set). */
  private async repairSelf(master: number, why: string, onlyIfNeeded: boolean): Promise<RepairReport | null> {
    const c = this.o.config;
    const since = Date.now();
    let report: RepairReport | null;
    try {
      report = await rebuildFromPrimary({
        self: this.o.self,
        primary: master,
        why,
        replication: this.replication,
        connect: this.o.connect ?? ((id: number) => this.connectTcpOrSocket(id)),
        cli: (id) => this.cliTarget(id),
        login: { user: c.adminUser, password: c.adminPassword },
        discardDir: c.discardDir,
        timeoutMs: c.repairTimeoutMs,
        onlyIfNeeded,
        onStart: (errant) => (this.repair = { state: "repairing", primary: master, since, why, errant }),
        log: this.o.log,
      });
    } catch (e) {
      const err = e instanceof DbRepairError ? e : new DbRepairError(`n${this.o.self} was not re-cloned from n${master}: ${(e as Error).message}`, [], false);
      this.repairFailures++;
      const delay = Math.min(c.retryMs * 2 ** (this.repairFailures - 1), 300_000);
      this.nextRepairAt = Date.now() + delay;
      this.repair = { state: "diverged", primary: master, since: this.repair?.state === "diverged" ? this.repair.since : since, why, failures: this.repairFailures, lastError: err.message, nextAttemptAt: this.nextRepairAt };
      this.o.log("error", `${err.message} (attempt ${this.repairFailures}; next one in ${delay} ms at the earliest)`);
      throw err;
    }
    if (!report) return null;
    this.repairFailures = 0;
    this.nextRepairAt = 0;
    this.repair = { state: "repaired", primary: master, at: Date.now(), report };
    this.followFailing = false;
    this.reported = null;
    this.pausedForDisk = false;
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    await this.record(master, {
      kind: "db-repair",
      severity: "warning",
      summary: `n${this.o.self} diverged from n${master} and was re-cloned from it in ${s(report.totalMs)}`,
      reason: [
        `why: ${why}`,
        `discarded errant GTIDs: ${report.errant || "none found"} (${report.discardedRows} row changes); saved in ${report.discardedFile}${report.dumpFiles.length ? ` and its full copy in ${report.dumpFiles.join(", ")}` : ""}`,
        `re-cloned at ${report.position || "(empty)"}: ${report.clonedBytes} bytes, ${report.clonedRows ?? "?"} rows, in ${s(report.totalMs)} (${report.phases.map((p) => `${p.name} ${p.ms} ms`).join(", ")})`,
        ...report.problems,
      ].join("; "),
      phases: report.phases,
    }).catch((e: Error) => this.o.log("warn", `incident not recorded on n${master} (${e.message}): db-repair of n${this.o.self}: ${describeRepair(this.repair!)}`));
    return report;
  }

  private repairFailedIncident(master: number, err: DbRepairError): Incident {
    return { kind: "db-repair-failed", severity: "error", summary: `n${this.o.self} diverged from n${master} and could not be re-cloned`, reason: err.message, phases: err.phases };
  }

  private cliTarget(nodeid: number): DbCliTarget {
    if (this.o.cli) return this.o.cli(nodeid);
    const c = this.o.config;
    if (nodeid === this.o.self) return { socketPath: c.socketPath };
    const peer = this.o.peers().find((p) => p.nodeid === nodeid);
    if (!peer) throw new DbError(`n${nodeid} is not in the node list`);
    return { host: peer.host, port: peer.port ?? c.port };
  }

  /** Stops receiving before the disk is full; starts again once there is room. Nothing is lost either way. */
  private async guardDisk(me: DbNodeHealth, master: number): Promise<boolean> {
    const { datadir, minFreeMb } = this.o.config;
    const fs = await statfs(datadir);
    const freeMb = Math.floor((fs.bavail * fs.bsize) / 2 ** 20);
    const action = diskAction(freeMb, minFreeMb, this.pausedForDisk);
    if (action === "pause" && me.replication !== "disk-full") {
      // Not blocked yet: STOP SLAVE IO_THREAD returns at once. What was received is still applied.
      await this.enqueue(() => this.onSelf((c) => exec(c, "STOP SLAVE IO_THREAD")));
      this.pausedForDisk = true;
      this.o.log("error", `n${this.o.self} stopped receiving from n${master}: ${freeMb} MB free in ${datadir}`);
      if (this.reported !== "disk-low") await this.report(master, "disk-low", {
        kind: "db-replica-disk-full",
        severity: "error",
        summary: `n${this.o.self} stopped replicating: its disk is almost full`,
        reason: `${datadir} on n${this.o.self} has ${freeMb} MB free, below the ${minFreeMb} MB minimum. Its replica stopped receiving from n${master} (what it had received is applied; nothing is lost). Free space on n${this.o.self}: replication resumes by itself from where it stopped.`,
      });
    } else if (action === "resume") {
      await this.enqueue(() => this.onSelf((c) => exec(c, "START SLAVE IO_THREAD")));
      this.pausedForDisk = false;
      this.o.log("info", `n${this.o.self} resumed receiving from n${master}: ${freeMb} MB free in ${datadir}`);
      await this.report(master, null, {
        kind: "db-replica-resumed",
        severity: "info",
        summary: `n${this.o.self} replicates again`,
        reason: `${datadir} on n${this.o.self} has ${freeMb} MB free again; its replica resumed receiving from n${master} where it stopped`,
      });
    }
    return action !== null;
  }

  /** Records a replica that broke while running (a disk that filled up under it, an SQL error...). */
  private async reportReplica(me: DbNodeHealth, master: number) {
    if (this.pausedForDisk || this.followFailing) return; // already recorded
    if (me.replication === "disk-full" || me.replication === "error") {
      const key = `${me.replication}: ${me.error}`;
      if (this.reported === key) return;
      await this.report(master, key, {
        kind: me.replication === "disk-full" ? "db-replica-disk-full" : "db-replica-error",
        severity: "error",
        summary: `n${this.o.self} stopped replicating from n${master}: ${me.replication === "disk-full" ? "disk full" : "replication error"}`,
        reason:
          me.replication === "disk-full"
            ? `${this.o.config.datadir} on n${this.o.self} is full: its replica waits for free space (nothing received is lost; MariaDB goes on by itself within 60 s of space being freed)`
            : `${me.error}`,
      });
    } else if (me.replication === "running" && this.reported !== null) {
      await this.report(master, null, { kind: "db-replica-resumed", severity: "info", summary: `n${this.o.self} replicates again`, reason: `n${this.o.self}'s replica from n${master} is running again (was: ${this.reported})` });
    }
  }

  /** Records an incident once per problem; `key` null means the problem is over. */
  private async report(at: number, key: string | null, incident: Incident) {
    this.reported = key;
    await this.record(at, incident).catch((e: Error) => this.o.log("warn", `incident not recorded on n${at} (${e.message}): ${incident.kind}: ${incident.summary}: ${incident.reason}`));
  }

  private async onSelf(fn: (c: SqlConn) => Promise<void>) {
    const c = await (this.o.connect ?? ((id: number) => this.connectTcpOrSocket(id)))(this.o.self);
    try {
      await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /**
   * On step-down: stop taking writes at once. Never queued behind a promotion or a follow (those
   * may take seconds): read_only goes on now, bounded by DEMOTE_TIMEOUT_MS, and once more after the
   * queued action that may have been turning it off (its stillWanted() check sees the new
   * generation, but a statement already sent could land after ours).
   */
  demote(reason: string): Promise<void> {
    this.generation++;
    this.wantPrimary = this.promoted = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const now = withTimeout(this.replication.demote(), DEMOTE_TIMEOUT_MS, `the local database did not go read-only within ${DEMOTE_TIMEOUT_MS} ms`);
    void this.enqueue(() => this.replication.demote()).catch(() => undefined);
    return now.then(() => this.o.log("info", `database on n${this.o.self} is read-only: ${reason}`));
  }

  /**
   * Why this node's database cannot be primary now (null: it can). Read by the daemon for the
   * core's db-health event (mastership follows the database).
   */
  promotionBlocker(): string | null {
    return this.promotionProblem;
  }

  /**
   * On the primary: a mariadbd that restarted (crash, kill, OOM) comes back read-only. Checked every
   * PRIMARY_CHECK_MS; the promotion runs again (it surveys, so nothing acknowledged is lost).
   */
  private async checkPrimary(): Promise<void> {
    if (!this.wantPrimary || !this.promoted || this.running === "promote") return;
    let readOnly: boolean;
    try {
      readOnly = await this.replication.localReadOnly(); // bounded: 1 s to connect, 1 s to answer
    } catch {
      return; // down: the watch shows it; once it answers read-only again we promote
    }
    if (!readOnly || !this.wantPrimary || !this.promoted || this.running === "promote") return;
    this.o.log("warn", `n${this.o.self} is master but its database is read-only (mariadbd restarted?): promoting it again`);
    this.promote("the database server restarted read-only on the master", this.lastTerm).catch(() => undefined);
  }

  stop() {
    this.generation++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.watchTimer) clearTimeout(this.watchTimer);
    if (this.primaryTimer) clearInterval(this.primaryTimer);
    this.watchTimer = null;
    this.primaryTimer = null;
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private run<T>(what: string, reason: string, fn: () => Promise<T>, onError: (err: Error) => { at: number; incident: Incident }): Promise<T> {
    const gen = ++this.generation;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const attempt = (n: number): Promise<T> =>
      this.enqueue(async () => {
        if (gen !== this.generation) throw new DbError(`database ${what} replaced by a newer action`, [], "cluster");
        this.running = what;
        try {
          return await fn();
        } finally {
          this.running = null;
        }
      }).catch(async (err: Error) => {
        if (gen !== this.generation) throw err; // replaced: no retry, no incident
        this.o.log("error", `database ${what} failed (attempt ${n}), retrying in ${this.o.config.retryMs} ms: ${err.message}`);
        if (n === 1) {
          const { at, incident } = onError(err);
          await this.record(at, incident).catch((e: Error) => this.o.log("warn", `incident not recorded on n${at} (${e.message}): ${incident.kind}: ${incident.summary}: ${incident.reason}`));
        }
        this.retryTimer = setTimeout(() => {
          if (gen === this.generation) attempt(n + 1).catch(() => undefined);
        }, this.o.config.retryMs);
        throw err;
      });
    return attempt(1);
  }

  /** Writes an incident into the incidents table of node `at` (a primary), if it has the schema. */
  private async record(at: number, i: Incident) {
    const conn = await (this.o.connect ?? ((id: number) => this.connectTcpOrSocket(id)))(at);
    try {
      await assertWritable(conn, `incident "${i.summary}" for n${at}`);
      await conn.query(
        `INSERT INTO \`${this.o.config.database}\`.incidents (actor, kind, severity, nodeid, summary, reason, phases) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [`n${this.o.self}`, i.kind, i.severity, this.o.self, i.summary.slice(0, 512), i.reason.slice(0, 2048), i.phases ? JSON.stringify(i.phases) : null],
      );
    } finally {
      await conn.end().catch(() => undefined);
    }
  }
}

// What the daemon calls for the core's database actions. Serialises them, applies the schema after
// a promotion, records incidents in the database, and retries a failed step until a newer action
// replaces it (the core emits each action once).
import mysql from "mysql2/promise";
import { z } from "zod";
import { DbTarget, migrate } from "@ha/db";
import { DbError, DbReplication, type DbPeer, type Phase, type PromotionReport } from "./replication.ts";
import type { SqlConn } from "./state.ts";

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
};

type Incident = { kind: string; severity: "info" | "warning" | "error"; summary: string; reason: string; phases?: Phase[] };

export class DbEffects {
  readonly replication: DbReplication;
  private queue: Promise<unknown> = Promise.resolve();
  /** Bumped by every new action: a pending retry of an older one gives up. */
  private generation = 0;
  private retryTimer: NodeJS.Timeout | null = null;

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

  /** PromoteDatabase. Resolves with the first attempt's outcome; failures are retried. */
  promote(reason: string): Promise<PromotionReport> {
    return this.run("promote", reason, async () => {
      const report = await this.replication.promote();
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
    return this.run("follow", reason, () => this.replication.follow(master), (err) => ({
      at: master,
      incident: { kind: "db-replica-failed", severity: "error", summary: `n${this.o.self} cannot replicate from n${master}`, reason: `${reason}: ${err.message}` },
    }));
  }

  /** On step-down (StopPanel / ReleaseClusterIp while primary): stop taking writes at once. */
  demote(reason: string): Promise<void> {
    this.generation++;
    return this.enqueue(async () => {
      await this.replication.demote();
      this.o.log("info", `database on n${this.o.self} is read-only: ${reason}`);
    });
  }

  stop() {
    this.generation++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
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
      this.enqueue(fn).catch(async (err: Error) => {
        this.o.log("error", `database ${what} failed (attempt ${n}), retrying in ${this.o.config.retryMs} ms: ${err.message}`);
        if (n === 1) {
          const { at, incident } = onError(err);
          await this.record(at, incident).catch((e: Error) => this.o.log("warn", `could not record the incident on n${at}: ${e.message}`));
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
      await conn.query(
        `INSERT INTO \`${this.o.config.database}\`.incidents (actor, kind, severity, nodeid, summary, reason, phases) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [`n${this.o.self}`, i.kind, i.severity, this.o.self, i.summary.slice(0, 512), i.reason.slice(0, 2048), i.phases ? JSON.stringify(i.phases) : null],
      );
    } finally {
      await conn.end().catch(() => undefined);
    }
  }
}

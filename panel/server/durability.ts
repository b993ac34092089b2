// The majority barrier: a change is acknowledged (2xx) only once a majority of the database nodes
// has it. MariaDB's semi-sync waits for one replica and falls back to async after its timeout, so a
// primary cut off with one replica (of five) acknowledged writes the new majority never had; those
// were lost at the next promotion. Here, after a mutating request's DB work, the panel reads the
// primary's binlog position and waits until enough replicas OF THIS PRIMARY have applied it.
import type { RequestHandler, Response } from "express";
import type { Logger } from "pino";
import mysql from "mysql2/promise";
import { copiesQuorum } from "@ha/agent/core";
import { HttpError, dbUnavailableReason } from "./errors.ts";
import { isWrite } from "./auth/middleware.ts";
import type { NodeView } from "./status.ts";

/** A database node and the address replicas use for it (their Master_Host). */
export type DbNodeRef = { nodeid: number; addr: string | undefined };
/** This node (the primary) and the other nodes with replication on: together, the copies. */
export type DbNodes = { self: DbNodeRef; others: DbNodeRef[] };

/** What the barrier runs its two statements on, on another node: a mysql2 pool in production. */
export type PeerConn = Pick<mysql.Pool, "query" | "end">;
/** How to reach a node's mariadbd (injectable: tests go through the lab nodes' sockets). */
export type PeerConnector = (node: DbNodeRef) => PeerConn;

export type LocalState = { readOnly: boolean; binlogPos: string };

/** Copies needed for a majority of `total` database nodes (the primary is one of them): the core's rule. */
export const copiesNeeded = copiesQuorum;

/**
 * The database nodes from the agent's view (status file): null when it does not say which nodes
 * hold a copy (no status file, or one without replication flags, as in single-node tests).
 * A node whose flag is missing while others have one counts as a copy: counting too many only
 * makes the barrier stricter.
 */
export function dbNodesOf(view: NodeView | null): DbNodes | null {
  const entries = (view?.nodes ?? []) as Array<NodeView["nodes"][number] & { replication?: unknown }>;
  if (!view || !entries.some((n) => typeof n.replication === "boolean")) return null;
  const self = entries.find((n) => n.nodeid === view.localNodeId);
  if (!self) return null;
  const others = entries.filter((n) => n.nodeid !== self.nodeid && n.replication !== false);
  return { self: { nodeid: self.nodeid, addr: self.addr }, others: others.map((n) => ({ nodeid: n.nodeid, addr: n.addr })) };
}

/**
 * The confirm rule on one SHOW SLAVE STATUS row. MASTER_GTID_WAIT compares sequence numbers only,
 * so a node that follows another primary (another history, higher numbers) would pass it: the copy
 * counts only if the node replicates from this primary, its IO thread running without error.
 * "pending": connecting to us; it may still get there before the deadline. `{ no }`: it will not.
 */
export function replicaVerdict(row: Record<string, unknown> | undefined, primaryAddr: string | undefined): "ok" | "pending" | { no: string } {
  const host = String(row?.Master_Host ?? "");
  if (!host) return { no: "not a replica" };
  if (!primaryAddr) return { no: "this node's own address is unknown" };
  if (host !== primaryAddr) return { no: `replicates from ${host}, not from this node` };
  const io = String(row?.Slave_IO_Running ?? "No");
  const errno = Number(row?.Last_IO_Errno ?? 0);
  if (io === "No") return { no: errno ? `replication stopped (error ${errno})` : "replication stopped" };
  // A stopped applier (an errant transaction in the way, or STOP SLAVE SQL_THREAD) will not get there.
  if (row?.Slave_SQL_Running === "No") return { no: Number(row.Last_SQL_Errno ?? 0) ? `replication error ${row.Last_SQL_Errno}` : "not applying" };
  if (io === "Yes" && errno === 0) return "ok";
  return "pending";
}

export type Outcome = { ok: boolean; confirmed: number; need: number; total: number; timedOut: boolean; failures: Array<{ node: string; why: string }> };

/**
 * Counts copies: the primary's own, plus each check that resolves. Settles as soon as `need` is
 * reached, as soon as it no longer can be (fail fast), or at the timeout. Pure apart from the timer.
 */
export function countCopies(checks: Array<{ node: string; done: Promise<unknown> }>, timeoutMs: number): Promise<Outcome> {
  const total = checks.length + 1;
  const need = copiesNeeded(total);
  return new Promise((resolve) => {
    let confirmed = 1;
    const failures: Outcome["failures"] = [];
    let settled = false;
    const finish = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ok: confirmed >= need, confirmed, need, total, timedOut, failures: [...failures] });
    };
    const settleIfDecided = () => {
      const pending = checks.length - failures.length - (confirmed - 1);
      if (confirmed >= need || confirmed + pending < need) finish(false);
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    for (const c of checks) {
      c.done.then(
        () => !settled && (confirmed++, settleIfDecided()),
        (err: unknown) => !settled && (failures.push({ node: c.node, why: err instanceof Error ? err.message : String(err) }), settleIfDecided()),
      );
    }
    settleIfDecided();
  });
}

/** The 503 of a change that a majority did not confirm. */
export class NotDurableError extends HttpError {
  constructor(message: string) {
    super(503, message, undefined, { "Retry-After": "2" });
  }
}

export function notDurableMessage(node: string, o: Outcome, timeoutMs: number): string {
  const failures = [...o.failures].sort((a, b) => a.node.localeCompare(b.node, "en", { numeric: true }));
  const why = failures.length ? `; ${failures.map((f) => `${f.node}: ${f.why}`).join(", ")}` : "";
  const within = o.timedOut ? ` within ${timeoutMs} ms` : "";
  return `the change was written on ${node} but only ${o.confirmed} of ${o.total} database nodes confirmed it${within} (need ${o.need}${why}): it may not be kept; check and retry`;
}

export type BarrierOptions = {
  /** This node's name, for messages (PANEL_NODE). */
  node: string;
  /** The primary's state, one query on the panel's own pool. */
  local: () => Promise<LocalState>;
  /** The database nodes now (null: not known, see dbNodesOf). */
  nodes: () => DbNodes | null;
  connect: PeerConnector;
  timeoutMs: number;
  log: Pick<Logger, "warn">;
};

export class MajorityBarrier {
  private readonly pools = new Map<string, PeerConn>();
  private warnedUnknown = false;

  constructor(private readonly o: BarrierOptions) {}

  /** Resolves once a majority has everything committed here so far; rejects with a NotDurableError. */
  async wait(): Promise<Outcome> {
    const deadline = performance.now() + this.o.timeoutMs;
    let local: LocalState;
    try {
      local = await this.o.local();
    } catch (err) {
      throw new NotDurableError(`the change was written on ${this.o.node} but its position could not be read back (${dbUnavailableReason(err) ?? (err as Error).message}): it may not be kept; check and retry`);
    }
    if (local.readOnly) throw new NotDurableError(`the change was written on ${this.o.node} but its database is read-only now (no longer the primary): it may not be kept; check and retry`);
    const nodes = this.o.nodes();
    if (!nodes && !this.warnedUnknown) {
      this.warnedUnknown = true;
      this.o.log.warn("no list of database nodes (no agent status, or it lacks replication flags): a change counts as kept once this node has it");
    }
    if (nodes) this.warnedUnknown = false;
    const checks = (nodes?.others ?? []).map((n) => ({ node: `n${n.nodeid}`, done: this.confirm(n, local.binlogPos, nodes!.self.addr, deadline) }));
    const out = await countCopies(checks, Math.max(0, deadline - performance.now()));
    if (!out.ok) throw new NotDurableError(notDurableMessage(this.o.node, out, this.o.timeoutMs));
    return out;
  }

  /** Resolves when `node` has applied `target` as a replica of this primary; rejects with why not. */
  private async confirm(node: DbNodeRef, target: string, primaryAddr: string | undefined, deadline: number): Promise<void> {
    if (!node.addr) throw new Error("no address known");
    const conn = this.pool(node);
    const left = () => Math.max(50, deadline - performance.now());
    const status = async () => {
      const [rows] = await conn.query({ sql: "SHOW SLAVE STATUS", timeout: left() + 1000 });
      return replicaVerdict((rows as Array<Record<string, unknown>>)[0], primaryAddr);
    };
    const reason = (v: ReturnType<typeof replicaVerdict>) => (typeof v === "object" ? v.no : "not connected to this node");
    try {
      // First: a node that is not ours fails now, instead of at the deadline.
      const before = await status();
      if (typeof before === "object") throw new Error(before.no);
      if (target !== "") {
        // The server's wait ends a little after the deadline: the barrier's own timer decides a timeout.
        const [rows] = await conn.query({ sql: "SELECT MASTER_GTID_WAIT(?, ?) AS r", timeout: left() + 1000 }, [target, (left() + 250) / 1000]);
        const r = (rows as Array<{ r: unknown }>)[0]?.r;
        if (r === null || Number(r) !== 0) throw new Error("has not applied it");
      }
      // Again after the wait: it may have been repointed to another primary meanwhile.
      const after = await status();
      if (after !== "ok") throw new Error(reason(after));
    } catch (err) {
      const down = dbUnavailableReason(err);
      throw new Error(down ? `unreachable (${down})` : (err as Error).message);
    }
  }

  private pool(node: DbNodeRef): PeerConn {
    const key = `${node.nodeid}@${node.addr}`;
    let p = this.pools.get(key);
    if (!p) {
      for (const [k, old] of this.pools) if (k.startsWith(`${node.nodeid}@`)) (this.pools.delete(k), void old.end().catch(() => undefined)); // its address changed
      p = this.o.connect(node);
      this.pools.set(key, p);
    }
    return p;
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }
}

/** Production: TCP to the node's address, port 3306, with the panel's own account (it exists on every node). */
export function tcpPeers(account: { user: string; password?: string }, o: { port?: number; connectTimeoutMs?: number } = {}): PeerConnector {
  return (node) =>
    mysql.createPool({ host: node.addr, port: o.port ?? 3306, user: account.user, password: account.password, connectionLimit: 10, connectTimeout: o.connectTimeoutMs ?? 4000 });
}

/** The primary's state from the panel's pool: read_only and everything it has written. */
export function localState(pool: Pick<mysql.Pool, "query">): () => Promise<LocalState> {
  return async () => {
    const [rows] = await pool.query({ sql: "SELECT @@global.read_only AS ro, @@global.gtid_binlog_pos AS pos", timeout: 3000 });
    const r = (rows as Array<{ ro: unknown; pos: unknown }>)[0];
    return { readOnly: Number(r?.ro) !== 0, binlogPos: String(r?.pos ?? "") };
  };
}

/**
 * Every mutating request: its 2xx answer is held back until the barrier passed (Express finishes
 * every answer with res.end, so one hook covers res.json, res.send and 204s). A failed barrier
 * turns the answer into the 503 and drops its cookies: nothing of it may count as done (a login
 * retried later gets a new session). Non-2xx answers go out as they are.
 */
export function durableWrites(barrier: Pick<MajorityBarrier, "wait">, log: Logger): RequestHandler {
  return (req, res, next) => {
    if (!isWrite(req.method)) return next();
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    res.end = ((...args: unknown[]) => {
      res.end = end as Response["end"];
      if (res.statusCode < 200 || res.statusCode >= 300) return end(...args);
      barrier.wait().then(
        () => end(...args),
        (err: unknown) => {
          const e = err instanceof HttpError ? err : new NotDurableError(`the change was written on this node but could not be confirmed (${(err as Error).message}): it may not be kept; check and retry`);
          log.warn({ method: req.method, url: req.originalUrl, error: e.message }, "change not confirmed by a majority of the database nodes");
          for (const h of ["Set-Cookie", "Content-Length", "Content-Type", "ETag"]) res.removeHeader(h);
          for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
          res.status(e.status).type("application/json");
          end(JSON.stringify({ error: e.message }));
        },
      );
      return res;
    }) as Response["end"];
    next();
  };
}

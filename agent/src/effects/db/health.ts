// A node's database health, as `corolistener -l` shows it and as the agent's watch acts on it (pure).
import { formatGtidPos } from "./gtid.ts";
import type { DbNodeState } from "./state.ts";

/** primary: writable. replica: replicates from a primary. off: replication off (holds no copy). */
export type DbRole = "primary" | "replica" | "off" | "read-only" | "unknown";
/** disk-full: the replica's IO thread is blocked writing its relay log to a full disk. */
export type DbReplicationState = "running" | "connecting" | "stopped" | "error" | "disk-full" | "none";

export type DbNodeHealth = {
  nodeid: number;
  reachable: boolean;
  role: DbRole;
  replication: DbReplicationState;
  /** The address this node replicates from. */
  source?: string;
  /** Why replication is not running, or why the node did not answer. */
  error?: string;
  /** Seconds behind the primary, when the replica knows it. */
  lagSeconds?: number | null;
  /** Everything this node has committed (GTID position). */
  gtid?: string;
  /** The local node only: its re-clone, e.g. "diverged: being re-cloned from n2", "repaired at ..." (repair.ts describeRepair). */
  repair?: string;
};

/** The watch's last reading, written into the daemon's status file for `corolistener -l`. */
export type DbHealthDoc = { checkedAt: number; nodes: DbNodeHealth[] };

/** What was read from one node's mariadbd. */
export type DbProbe =
  | { kind: "unreachable"; error: string }
  | { kind: "disk-full"; readOnly: boolean; gtid: string }
  | { kind: "state"; state: DbNodeState };

export function describeNode(nodeid: number, replicationOn: boolean, probe: DbProbe): DbNodeHealth {
  if (probe.kind === "unreachable") return { nodeid, reachable: false, role: "unknown", replication: "none", error: probe.error };
  if (probe.kind === "disk-full") {
    return { nodeid, reachable: true, role: "replica", replication: "disk-full", error: "disk full: the replica cannot write its relay log (MariaDB waits for free space)", gtid: probe.gtid };
  }
  const s = probe.state;
  const gtid = formatGtidPos(s.pos);
  if (!s.readOnly) return { nodeid, reachable: true, role: "primary", replication: "none", gtid };
  const role: DbRole = !replicationOn ? "off" : s.replica ? "replica" : "read-only";
  const rep = s.replica;
  if (!rep) return { nodeid, reachable: true, role, replication: "none", gtid };
  const base = { nodeid, reachable: true, role, source: rep.masterHost, gtid };
  if (rep.sqlErrno) return { ...base, replication: "error", error: `SQL error ${rep.sqlErrno}: ${rep.sqlError}` };
  const ioError = rep.ioErrno ? `IO error ${rep.ioErrno}: ${rep.ioError}` : undefined;
  // An IO error with the thread still retrying (primary restarting, network blip) is transient.
  if (rep.ioErrno && rep.ioRunning === "No") return { ...base, replication: "error", error: ioError };
  if (rep.ioRunning === "Yes" && rep.sqlRunning) return { ...base, replication: "running", lagSeconds: rep.lagSeconds };
  if (rep.ioRunning === "Connecting" || rep.ioRunning === "Preparing") return { ...base, replication: "connecting", ...(ioError ? { error: ioError } : {}) };
  return { ...base, replication: "stopped" };
}

/** One short cell for the node list, e.g. "replica running lag 0s" or "replica error: ...". */
export function formatDbHealth(h: DbNodeHealth | undefined): string {
  if (!h) return "-";
  if (!h.reachable) return `unreachable (${h.error ?? "no answer"})`;
  if (h.role === "primary" || h.role === "read-only" || (h.role === "off" && h.replication === "none")) return h.role;
  const lag = h.replication === "running" && typeof h.lagSeconds === "number" ? ` lag ${h.lagSeconds}s` : "";
  const err = h.error && (h.replication === "error" || h.replication === "disk-full") ? `: ${h.error}` : "";
  return `${h.role} ${h.replication}${lag}${err}`;
}

/**
 * The disk guard of a replica: below `minFreeMb` free in its datadir it stops receiving (cleanly,
 * before MariaDB blocks on a full disk); it resumes once half as much again is free, so it does not
 * flap around the threshold.
 */
export function diskAction(freeMb: number, minFreeMb: number, paused: boolean): "pause" | "resume" | null {
  if (!paused && freeMb < minFreeMb) return "pause";
  if (paused && freeMb >= minFreeMb * 1.5) return "resume";
  return null;
}

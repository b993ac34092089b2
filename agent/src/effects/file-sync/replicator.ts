// One replication cycle on the master: push a file set to every other node with rsync (in parallel),
// then record each node's outcome in the DB (file_sync rows, an incident when a node starts failing).
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { FileSyncConfig } from "./config.ts";
import { describeRsyncFailure, isBusy, parseRsyncStats, rsyncPushArgs, rsyncSucceeded, type RsyncStats } from "./rsync.ts";

export type SyncPeer = { nodeid: number; host: string };

export type NodeSyncResult = {
  nodeid: number;
  host: string;
  ok: boolean;
  /** rsync's exit status and message when the copy failed. */
  error: string | null;
  startedAt: Date;
  durationMs: number;
  /** Regular files rsync copied plus files it deleted from a left-over staging copy. */
  filesChanged: number;
  stats: RsyncStats | null;
};

export type SyncLog = (level: "info" | "warn" | "error", msg: string, extra?: object) => void;

/** Where results go (the master's DB in the agent; nothing in a dry CLI run). */
export interface SyncRecorder {
  record(set: string, self: number, results: NodeSyncResult[]): Promise<void>;
}

/** Runs rsync once; resolves with its exit code (null when killed), signal and output. */
// No overall time limit: a big first copy may take long. rsync's --timeout (no I/O for that long) and
// --contimeout end a wedged copy, and the schedule's signal ends one on a node that stepped down.
function runRsync(args: string[], password: string, signal?: AbortSignal) {
  return new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      "rsync",
      args,
      // The secret goes through the environment, never argv (ps shows argv to every user).
      { env: { ...process.env, RSYNC_PASSWORD: password }, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024, encoding: "utf8", signal },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { signal?: string | null }) | null;
        if (signal?.aborted) return resolve({ code: null, signal: "SIGKILL", stdout, stderr: `${stderr}\nstopped: this node is no longer master` });
        if (e && typeof e.code === "string") return resolve({ code: 127, signal: null, stdout, stderr: `${stderr}\ncannot run rsync: ${e.message}` });
        resolve({ code: e ? (typeof e.code === "number" ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
      },
    );
  });
}

const BUSY_RETRIES = 10;
const BUSY_WAIT_MS = 300;

/** Pushes one file set to one node. Never throws: a failure is a result with ok=false. */
export async function pushToNode(o: { set: string; config: FileSyncConfig; peer: SyncPeer; signal?: AbortSignal }): Promise<NodeSyncResult> {
  const fileSet = o.config.sets[o.set]!;
  const args = rsyncPushArgs({ set: o.set, fileSet, host: o.peer.host, config: o.config });
  const startedAt = new Date();
  const t0 = performance.now();
  let r = await runRsync(args, o.config.secret, o.signal);
  // The daemon's post-xfer hook of the previous copy may still hold the module for a moment.
  for (let i = 0; i < BUSY_RETRIES && isBusy(r.code, r.stderr) && !o.signal?.aborted; i++) {
    await new Promise((res) => setTimeout(res, BUSY_WAIT_MS));
    r = await runRsync(args, o.config.secret, o.signal);
  }
  const durationMs = Math.round(performance.now() - t0);
  const ok = rsyncSucceeded(r.code) && r.signal === null;
  const stats = ok ? parseRsyncStats(r.stdout) : null;
  return {
    nodeid: o.peer.nodeid,
    host: o.peer.host,
    ok,
    error: ok ? null : describeRsyncFailure(r.code, r.signal, r.stderr),
    startedAt,
    durationMs,
    filesChanged: stats ? stats.transferred + stats.deleted : 0,
    stats,
  };
}

/**
 * A node that just became master may have no source directory (it was a replica until now): it starts
 * from its own last complete copy instead of pushing an empty set that would wipe every node.
 */
export function seedSourceFromReplica(fileSet: { source: string; target: string }): boolean {
  const replica = join(fileSet.target, "current");
  if (existsSync(fileSet.source) || !existsSync(replica)) return false;
  mkdirSync(dirname(fileSet.source), { recursive: true });
  const tmp = `${fileSet.source}.seed-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  cpSync(`${replica}/`, tmp, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  renameSync(tmp, fileSet.source);
  return true;
}

export class FileReplicator {
  constructor(
    private readonly o: {
      config: FileSyncConfig;
      self: number;
      /** Every node of the cluster (this one is skipped). */
      peers: () => SyncPeer[];
      recorder: SyncRecorder | null;
      log: SyncLog;
    },
  ) {}

  /** One cycle for one file set: every other node, in parallel; results recorded, failures logged. `signal` kills the copies. */
  async run(set: string, signal?: AbortSignal): Promise<NodeSyncResult[]> {
    const fileSet = this.o.config.sets[set];
    if (!fileSet) throw new Error(`unknown file set "${set}" (configured: ${Object.keys(this.o.config.sets).join(", ") || "none"})`);
    if (seedSourceFromReplica(fileSet)) this.o.log("warn", `file set ${set}: ${fileSet.source} was missing; started it from this node's last replica`);
    const peers = this.o.peers().filter((p) => p.nodeid !== this.o.self);
    let results: NodeSyncResult[];
    if (!existsSync(fileSet.source) || !statSync(fileSet.source).isDirectory()) {
      // Never push a missing source: with --delete it would empty every node's copy.
      const error = `source ${fileSet.source} is not a directory on n${this.o.self}: nothing copied`;
      results = peers.map((p) => ({ nodeid: p.nodeid, host: p.host, ok: false, error, startedAt: new Date(), durationMs: 0, filesChanged: 0, stats: null }));
    } else {
      results = await Promise.all(peers.map((peer) => pushToNode({ set, config: this.o.config, peer, signal })));
    }
    for (const r of results) {
      if (r.ok) this.o.log("info", `file set ${set} copied to n${r.nodeid} in ${r.durationMs} ms (${r.filesChanged} files changed)`, { nodeid: r.nodeid, ms: r.durationMs });
      else this.o.log("error", `file set ${set} copy to n${r.nodeid} failed: ${r.error}`, { nodeid: r.nodeid, ms: r.durationMs });
    }
    // A run stopped because this node stepped down is not the nodes' fault: nothing to record.
    if (this.o.recorder && !signal?.aborted) {
      await this.o.recorder.record(set, this.o.self, results).catch((err: Error) => this.o.log("warn", `could not record file-sync results in the database: ${err.message}`));
    }
    return results;
  }
}

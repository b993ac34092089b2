// Wiring for the daemon: the master's replication schedule from the agent config.
import mysql from "mysql2/promise";
import type { AgentConfig } from "../../config.ts";
import type { NodeConfig } from "../../core/types.ts";
import type { Logger } from "../../log.ts";
import { DbSyncRecorder } from "./db-recorder.ts";
import { FileReplicator } from "./replicator.ts";
import { FileSyncSchedule } from "./schedule.ts";

export { FileSyncSchedule } from "./schedule.ts";
export { FileReplicator, pushToNode, type NodeSyncResult, type SyncPeer } from "./replicator.ts";

/** null when the config has no `fileSync` section. Results go to the local DB (the master's is the primary). */
export function createFileSyncSchedule(c: AgentConfig, self: number, nodes: () => NodeConfig[], log: Logger): FileSyncSchedule | null {
  if (!c.fileSync) return null;
  const db = c.database;
  const recorder = db
    ? new DbSyncRecorder(() => mysql.createConnection({ socketPath: db.socketPath, user: db.adminUser, password: db.adminPassword, connectTimeout: 2000 }), db.database)
    : null;
  const syncLog = (level: "info" | "warn" | "error", msg: string, extra?: object) => log[level]({ component: "file-sync", ...extra }, msg);
  const replicator = new FileReplicator({
    config: c.fileSync,
    self,
    peers: () => nodes().flatMap((n) => (n.addr ? [{ nodeid: n.nodeid, host: n.addr }] : [])),
    recorder,
    log: syncLog,
  });
  return new FileSyncSchedule({ pattern: c.fileSync.schedule, sets: Object.keys(c.fileSync.sets), replicator, log: syncLog });
}

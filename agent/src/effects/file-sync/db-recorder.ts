// Writes replication outcomes into the master's database: one file_sync row per node (what the panel
// shows), and an incident when a node starts failing (and when it recovers), not one every cycle.
import type { SqlConn } from "../db/state.ts";
import { exec, rows } from "../db/state.ts";
import type { NodeSyncResult, SyncRecorder } from "./replicator.ts";

export type SyncIncident = { kind: "file-sync-failed" | "file-sync-recovered"; severity: "error" | "info"; nodeid: number; summary: string; reason: string };

/** Which incidents a cycle deserves, given each node's previous outcome (pure, tested). */
export function syncIncidents(set: string, previous: Map<number, { ok: boolean }>, results: NodeSyncResult[]): SyncIncident[] {
  const out: SyncIncident[] = [];
  for (const r of results) {
    const before = previous.get(r.nodeid);
    if (!r.ok && (before === undefined || before.ok)) {
      out.push({ kind: "file-sync-failed", severity: "error", nodeid: r.nodeid, summary: `file set ${set} could not be copied to n${r.nodeid}`, reason: r.error ?? "unknown error" });
    } else if (r.ok && before && !before.ok) {
      out.push({ kind: "file-sync-recovered", severity: "info", nodeid: r.nodeid, summary: `file set ${set} copied to n${r.nodeid} again`, reason: `copy succeeded in ${r.durationMs} ms after earlier failures` });
    }
  }
  return out;
}

export class DbSyncRecorder implements SyncRecorder {
  constructor(
    private readonly connect: () => Promise<SqlConn>,
    private readonly database: string,
  ) {}

  async record(set: string, self: number, results: NodeSyncResult[]): Promise<void> {
    if (results.length === 0) return;
    const db = `\`${this.database}\``;
    const conn = await this.connect();
    try {
      const prev = await rows(conn, `SELECT nodeid, ok FROM ${db}.file_sync WHERE nodeid IN (?)`, [results.map((r) => r.nodeid)]);
      const previous = new Map(prev.map((p) => [Number(p.nodeid), { ok: Boolean(p.ok) }]));
      for (const r of results) {
        await exec(
          conn,
          `INSERT INTO ${db}.file_sync (nodeid, file_set, last_run_at, last_ok_at, ok, error, files_changed, duration_ms)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON DUPLICATE KEY UPDATE file_set = VALUES(file_set), last_run_at = VALUES(last_run_at),
             last_ok_at = COALESCE(VALUES(last_ok_at), last_ok_at), ok = VALUES(ok), error = VALUES(error),
             files_changed = VALUES(files_changed), duration_ms = VALUES(duration_ms)`,
          [r.nodeid, set, r.startedAt, r.ok ? r.startedAt : null, r.ok, r.error?.slice(0, 2048) ?? null, r.filesChanged, r.durationMs],
        );
      }
      for (const i of syncIncidents(set, previous, results)) {
        await exec(conn, `INSERT INTO ${db}.incidents (actor, kind, severity, nodeid, summary, reason) VALUES (?, ?, ?, ?, ?, ?)`, [
          `n${self}`,
          i.kind,
          i.severity,
          i.nodeid,
          i.summary.slice(0, 512),
          i.reason.slice(0, 2048),
        ]);
      }
    } finally {
      await conn.end().catch(() => undefined);
    }
  }
}

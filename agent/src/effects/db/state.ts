// Reading one mariadbd's replication state, and the few statements that change it.
import type mysql from "mysql2/promise";
import { mergeGtidPos, parseGtidPos, type GtidPos } from "./gtid.ts";

export type SqlConn = Pick<mysql.Connection, "query" | "end">;

type Row = Record<string, unknown>;
export async function rows(c: SqlConn, sql: string, params: unknown[] = [], timeoutMs = 10_000): Promise<Row[]> {
  const [r] = await c.query({ sql, timeout: timeoutMs }, params);
  return Array.isArray(r) ? (r as Row[]) : [];
}
export async function exec(c: SqlConn, sql: string, params: unknown[] = [], timeoutMs = 10_000): Promise<void> {
  await c.query({ sql, timeout: timeoutMs }, params);
}

export type DbNodeState = {
  readOnly: boolean;
  binlogPos: GtidPos;
  slavePos: GtidPos;
  /** Everything this node has committed: binlog and replicated. */
  pos: GtidPos;
  replica: null | {
    masterHost: string;
    /** Received (in the relay log), possibly not applied yet. */
    ioPos: GtidPos;
    ioRunning: string; // Yes | No | Connecting | Preparing
    sqlRunning: boolean;
    ioErrno: number;
    ioError: string;
    sqlErrno: number;
    sqlError: string;
    /** Seconds_Behind_Master: null while not applying (stopped, or not connected). */
    lagSeconds: number | null;
  };
};

export async function readState(c: SqlConn): Promise<DbNodeState> {
  const [v] = await rows(c, "SELECT @@global.read_only AS ro, @@global.gtid_binlog_pos AS b, @@global.gtid_slave_pos AS s");
  const [st] = await rows(c, "SHOW SLAVE STATUS");
  const binlogPos = parseGtidPos(String(v?.b ?? ""));
  const slavePos = parseGtidPos(String(v?.s ?? ""));
  const replica =
    st && String(st.Master_Host ?? "") !== ""
      ? {
          masterHost: String(st.Master_Host),
          ioPos: parseGtidPos(String(st.Gtid_IO_Pos ?? "")),
          ioRunning: String(st.Slave_IO_Running ?? "No"),
          sqlRunning: st.Slave_SQL_Running === "Yes",
          ioErrno: Number(st.Last_IO_Errno ?? 0),
          ioError: String(st.Last_IO_Error ?? ""),
          sqlErrno: Number(st.Last_SQL_Errno ?? 0),
          sqlError: String(st.Last_SQL_Error ?? ""),
          lagSeconds: st.Seconds_Behind_Master === null || st.Seconds_Behind_Master === undefined ? null : Number(st.Seconds_Behind_Master),
        }
      : null;
  return { readOnly: Number(v?.ro) !== 0, binlogPos, slavePos, pos: mergeGtidPos(binlogPos, slavePos), replica };
}

/**
 * Refuses to write on a read-only server. The agent's account may bypass read_only (it manages
 * replication), so a write it made on a replica, or on a primary still being promoted, would be an
 * errant GTID that breaks replication later. Every agent write of application data checks first.
 */
export async function assertWritable(c: SqlConn, what: string): Promise<void> {
  const [v] = await rows(c, "SELECT @@global.read_only AS ro");
  if (Number(v?.ro) !== 0) throw new Error(`${what}: the database is read-only here (not the primary, or its promotion is not finished); nothing written`);
}

/**
 * True when the replica's IO thread is blocked writing its relay log to a full disk. MariaDB then
 * waits for space (retrying every 60 s) and holds a lock that makes SHOW SLAVE STATUS and STOP
 * SLAVE hang, so this is asked first, from the process list, which does not take that lock.
 */
export async function ioWaitingForSpace(c: SqlConn, timeoutMs = 3000): Promise<boolean> {
  const r = await rows(c, "SELECT 1 FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO' AND STATE LIKE '%free space%'", [], timeoutMs);
  return r.length > 0;
}

/**
 * Waits until the node has applied `pos` (MASTER_GTID_WAIT on gtid_slave_pos). Returns false on
 * timeout. An empty position is reached at once.
 */
export async function waitApplied(c: SqlConn, pos: string, timeoutMs: number): Promise<boolean> {
  if (pos === "") return true;
  const [r] = await rows(c, "SELECT MASTER_GTID_WAIT(?, ?) AS r", [pos, timeoutMs / 1000], timeoutMs + 5000);
  return Number(r?.r) === 0;
}

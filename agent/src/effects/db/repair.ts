// A diverged or refused replica repairs itself: its own agent re-clones it from the primary.
//
// A node diverged when it has transactions the primary lacks ("errant GTIDs": an old primary that
// took writes while cut off, a stray local write on a replica); the primary refuses such a replica
// (error 1236), and also one that needs binlogs it has purged. Nothing but a fresh copy fixes that.
// What the node discards is saved first, and nothing is dropped unless that file is on disk:
//  1. survey: which of the node's transactions the primary lacks (probed on the primary with the
//     GTID replication protocol, the same check that refuses a replica);
//  2. save: under `discardDir`, `<time>-n<id>-errant.sql` (a header naming node, primary, errant
//     GTIDs and why, then the decoded binlog events of those transactions) and a full dump of every
//     database the node holds (`<time>-n<id>-dump-<db>.sql`, the fallback should decoding miss
//     something), each fsynced; if saving fails nothing is changed;
//  3. dump the primary's databases, consistent with its GTID position (--single-transaction --gtid);
//  4. wipe: stop and forget replication, drop the databases, RESET MASTER (the errant GTIDs go);
//  5. load the dump with binary logging off, set gtid_slave_pos from it;
//  6. replicate from the primary (DbReplication.replicateSelfFrom) and confirm it runs.
// Passwords go into 0600 option files (--defaults-extra-file), never on a command line or in a log.
import { spawn } from "node:child_process";
import { withTimeout } from "@ha/shared";
import { mkdir, mkdtemp, open, readdir, rename, rm, writeFile, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DbError, historyChosen, readEpoch, type DbReplication, type Phase } from "./replication.ts";
import { exec, readState, rows, type DbNodeState, type SqlConn } from "./state.ts";
import { formatGtidPos, parseGtidPos, type Gtid, type GtidPos } from "./gtid.ts";
import type { DbNodeHealth } from "./health.ts";

/** How a MariaDB command-line tool reaches a node: its socket (self) or TCP (the primary). */
export type DbCliTarget = { socketPath: string } | { host: string; port: number };
export type DbLogin = { user: string; password: string };

export type RepairOptions = {
  self: number;
  primary: number;
  /** Why (the error or the watch's finding), for the saved file and the report. */
  why: string;
  replication: Pick<DbReplication, "replicateSelfFrom">;
  /** Management connections (self: the local socket). */
  connect: (nodeid: number) => Promise<SqlConn>;
  /** Where mariadb-dump, mariadb and mariadb-binlog connect to for a node. */
  cli: (nodeid: number) => DbCliTarget;
  /** The agent's account (ALL privileges) on every node. */
  login: DbLogin;
  discardDir: string;
  /** Each external command (dump, load, binlog decoding) and the whole repair's SQL get at most this. */
  timeoutMs?: number;
  /**
   * The watch's path: first check again that the node diverged or was refused (its reading may be
   * stale); resolve null, changing nothing, when it was not.
   */
  onlyIfNeeded?: boolean;
  /** Called once the re-clone is decided, before anything is saved. */
  onStart?: (errant: string) => void;
  log?: (level: "info" | "warn" | "error", msg: string, extra?: object) => void;
  now?: () => number;
  /** The programs (tests may point elsewhere). */
  bin?: { dump?: string; client?: string; binlog?: string };
};

export type RepairReport = {
  node: number;
  primary: number;
  why: string;
  /** The errant GTIDs discarded, compressed ("0-2-5..8"); "" when none were found (refused only). */
  errant: string;
  errantCount: number;
  /** False when the fork predates the node's oldest binlog: older errant ones are only in the dumps. */
  errantComplete: boolean;
  /** The file with the header and the decoded errant transactions. */
  discardedFile: string;
  /** Full dumps of the node's databases as they were before the wipe. */
  dumpFiles: string[];
  /** Row changes in the decoded errant transactions. */
  discardedRows: number;
  /** Bytes saved (errant file and dumps). */
  discardedBytes: number;
  /** The primary's dump that was loaded. */
  clonedBytes: number;
  clonedRows: number | null;
  /** The primary's GTID position the copy was taken at (now gtid_slave_pos here). */
  position: string;
  databases: string[];
  /** Things that went wrong without stopping the repair (e.g. decoding failed: the dumps hold it). */
  problems: string[];
  phases: Phase[];
  totalMs: number;
};

/** A repair that failed. `wiped`: the copy was already dropped (it is saved; the next attempt re-clones). */
export class DbRepairError extends DbError {
  override name = "DbRepairError";
  constructor(
    message: string,
    phases: Phase[],
    readonly wiped: boolean,
  ) {
    super(message, phases);
  }
}

/** Databases that belong to the server itself, never replicated data. */
export const SYSTEM_DATABASES = ["mysql", "information_schema", "performance_schema", "sys"];
const LOCK = "ha_replication"; // the same lock DbReplication.replicateFrom takes

// ---------------------------------------------------------------------------------------------
// Pure helpers.

/** A value of a MariaDB option file, quoted (its parser un-escapes \\ \" \n inside quotes). */
export function optionValue(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r")}"`;
}

/** The `[client]` option file a tool reads with --defaults-extra-file (mode 0600: it holds the password). */
export function clientOptionFile(login: DbLogin, target: DbCliTarget): string {
  const where = "socketPath" in target ? [`socket=${optionValue(target.socketPath)}`, "protocol=socket"] : [`host=${optionValue(target.host)}`, `port=${target.port}`, "protocol=tcp"];
  return ["[client]", `user=${optionValue(login.user)}`, `password=${optionValue(login.password)}`, ...where, ""].join("\n");
}

/** The GTID of a `SHOW BINLOG EVENTS` Gtid event ("BEGIN GTID 0-1-5", "GTID 0-1-1 cid=7"). */
export function gtidOfEvent(info: string): Gtid | null {
  const m = /\bGTID (\d+)-(\d+)-(\d+)\b/.exec(info);
  return m ? { domain: Number(m[1]), server: Number(m[2]), seq: Number(m[3]) } : null;
}

const gtidStr = (g: Gtid) => `${g.domain}-${g.server}-${g.seq}`;

/** "0-2-5..8,0-3-9": consecutive sequence numbers of one server in one domain as a range. */
export function compressGtids(gs: Gtid[]): string {
  const out: string[] = [];
  for (let i = 0; i < gs.length; ) {
    const a = gs[i]!;
    let j = i;
    while (j + 1 < gs.length && gs[j + 1]!.domain === a.domain && gs[j + 1]!.server === a.server && gs[j + 1]!.seq === gs[j]!.seq + 1) j++;
    out.push(j > i ? `${gtidStr(a)}..${gs[j]!.seq}` : gtidStr(a));
    i = j + 1;
  }
  return out.join(",");
}

export type ProbeResult = "has" | "lacks" | "purged";

/** The outcome of `mariadb-binlog -R --start-position=<g>` against the primary. */
export function classifyProbe(code: number, stderr: string): ProbeResult | Error {
  if (/not in the master's binlog|missing the GTID/i.test(stderr)) return "lacks";
  if (/Could not find GTID state requested by slave in any binlog files|purged/i.test(stderr)) return "purged";
  if (code === 0) return "has";
  return new Error(`mariadb-binlog exited with ${code}: ${lastLines(stderr)}`);
}

/** What the primary surely has or lacks without asking it (null: ask). */
export function quickVerdict(g: Gtid, primaryPos: GtidPos): ProbeResult | null {
  const p = primaryPos.get(g.domain);
  if (!p || p.seq < g.seq) return "lacks";
  if (p.seq === g.seq) return p.server === g.server ? "has" : "lacks";
  return null;
}

/** gtid_slave_pos of a `mariadb-dump --gtid --master-data=2` (a comment near its end). */
export function dumpGtidPos(tail: string): string | null {
  const all = [...tail.matchAll(/^-- SET GLOBAL gtid_slave_pos='([0-9,-]*)';$/gm)];
  return all.length ? all.at(-1)![1]! : null;
}

/** Row changes in `mariadb-binlog -v` output ("### INSERT INTO ...", "### UPDATE ...", "### DELETE FROM ..."). */
export function countRowChanges(text: string): number {
  return (text.match(/^### (INSERT INTO|UPDATE|DELETE FROM) /gm) ?? []).length;
}

/** `2025-01-02T03-04-05.678Z`: an ISO time usable in a file name everywhere. */
export const fileStamp = (d: Date) => d.toISOString().replace(/:/g, "-");

export function errantHeader(o: { self: number; primary: number; at: Date; why: string; errant: string; errantComplete: boolean; localPos: string; primaryPos: string; dumpFiles: string[] }): string {
  const c = (s: string) => s.split("\n").map((l) => `-- ${l}`.trimEnd()).join("\n");
  return [
    c(`Transactions n${o.self} discarded when its agent re-cloned it from the primary n${o.primary}.`),
    c(`node: n${o.self}`),
    c(`primary: n${o.primary}`),
    c(`time: ${o.at.toISOString()}`),
    c(`why: ${o.why}`),
    c(`errant GTIDs (n${o.self} had them, n${o.primary} does not): ${o.errant || "none found"}`),
    ...(o.errantComplete ? [] : [c(`the fork predates n${o.self}'s oldest binlog: older errant transactions, if any, are only in the dumps`)]),
    c(`n${o.self} was at ${o.localPos || "(nothing)"}; n${o.primary} at ${o.primaryPos || "(nothing)"}`),
    c(`n${o.self}'s databases as they were before the wipe: ${o.dumpFiles.length ? o.dumpFiles.join(", ") : "(it held none)"}`),
    c(`(load one into a scratch database to compare: mariadb scratch < file; never into the primary's).`),
    "--",
    c(`Below: those transactions as n${o.self}'s binlog had them (mariadb-binlog -vv --base64-output=DECODE-ROWS;`),
    c(`row changes are the "###" comments). They are on no other node: re-apply by hand what is still wanted.`),
    "",
    "",
  ].join("\n");
}

export function dumpHeader(o: { self: number; primary: number; at: Date; database: string }): string {
  return [
    `-- n${o.self}'s copy of database \`${o.database}\` at ${o.at.toISOString()}, saved before its agent wiped it to re-clone it from n${o.primary}.`,
    "-- It has no CREATE DATABASE/USE: load it into a scratch database to compare (mariadb scratch < file), never into the primary's.",
    "",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Which of the node's transactions the primary lacks.

export type ErrantSource = {
  /** The node's binlog files, oldest first. */
  binlogs: () => Promise<string[]>;
  /** The GTID state at the start of a file (its Gtid_list event). */
  fileStart: (file: string) => Promise<GtidPos>;
  /** The GTIDs of one domain in `files`, in order. */
  gtids: (files: string[], domain: number) => Promise<Gtid[]>;
};

export type ErrantFinding = {
  /** In binlog order, per domain. */
  errant: Gtid[];
  /** Per domain, the last GTID both have (exclusive start for decoding); absent: from the beginning. */
  start: GtidPos;
  /** Domains whose fork predates the oldest binlog. */
  beyondBinlog: number[];
};

/**
 * The node's transactions the primary lacks. Per domain of the node's binlog state: the primary's
 * history and the node's share a prefix, then differ; `has` (a probe of the primary) is monotone
 * along the node's history, so the fork is found by probing file starts newest first, then a
 * binary search among the GTIDs after the last shared file start.
 */
export async function findErrant(localBinlogPos: GtidPos, src: ErrantSource, has: (g: Gtid) => Promise<boolean>): Promise<ErrantFinding> {
  const errant: Gtid[] = [];
  const start: GtidPos = new Map();
  const beyondBinlog: number[] = [];
  let files: string[] | null = null;
  for (const last of [...localBinlogPos.values()].sort((a, b) => a.domain - b.domain)) {
    const d = last.domain;
    if (await has(last)) {
      start.set(d, last);
      continue;
    }
    files ??= await src.binlogs();
    let from = 0;
    let base: Gtid | undefined;
    for (let i = files.length - 1; i >= 0; i--) {
      const s = (await src.fileStart(files[i]!)).get(d);
      if (!s) {
        from = i; // the domain begins in this file (or a later one)
        break;
      }
      if (await has(s)) {
        from = i;
        base = s;
        break;
      }
      if (i === 0) {
        base = s; // exclusive start still valid for decoding what the binlogs have
        beyondBinlog.push(d);
      }
    }
    const list = await src.gtids(files.slice(from), d);
    if (list.length === 0 || gtidStr(list.at(-1)!) !== gtidStr(last)) list.push(last);
    let lo = 0;
    let hi = list.length - 1; // list[hi] is lacking
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (await has(list[mid]!)) lo = mid + 1;
      else hi = mid;
    }
    errant.push(...list.slice(lo));
    const shared = lo > 0 ? list[lo - 1] : base;
    if (shared) start.set(d, shared);
  }
  return { errant, start, beyondBinlog };
}

/** The same over SQL on the node's own server. */
export function sqlErrantSource(c: SqlConn, timeoutMs: number): ErrantSource {
  return {
    binlogs: async () => (await rows(c, "SHOW BINARY LOGS", [], timeoutMs)).map((r) => String(r.Log_name)),
    fileStart: async (file) => {
      const evs = await rows(c, "SHOW BINLOG EVENTS IN ? LIMIT 4", [file], timeoutMs);
      const list = evs.find((e) => e.Event_type === "Gtid_list");
      return parseGtidPos(String(list?.Info ?? "").replace(/^\[|\]$/g, ""));
    },
    gtids: async (files, domain) => {
      const out: Gtid[] = [];
      const PAGE = 5000;
      for (const file of files) {
        for (let pos = 4; ; ) {
          const evs = await rows(c, `SHOW BINLOG EVENTS IN ? FROM ${pos} LIMIT ${PAGE}`, [file], timeoutMs);
          for (const e of evs) {
            if (e.Event_type !== "Gtid") continue;
            const g = gtidOfEvent(String(e.Info ?? ""));
            if (g && g.domain === domain) out.push(g);
          }
          if (evs.length < PAGE) break;
          pos = Number(evs.at(-1)!.End_log_pos);
        }
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// External commands.

const lastLines = (s: string, n = 4) => s.trim().split("\n").slice(-n).join(" / ") || "(no message)";

type RunOpts = { timeoutMs: number; what: string; stdinFd?: number; onStdout?: (chunk: Buffer) => Promise<void> | void };

/** Runs a tool, bounded in time; stdout to `onStdout` (or discarded); resolves with its exit code and stderr. */
export function runTool(bin: string, args: string[], o: RunOpts): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: [o.stdinFd ?? "ignore", o.onStdout ? "pipe" : "ignore", "pipe"] });
    let stderr = "";
    let settled = false;
    const done = (err: Error | null, code = 0) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve({ code, stderr });
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      done(new Error(`${o.what} did not finish within ${o.timeoutMs} ms (killed)`));
    }, o.timeoutMs);
    child.stderr!.on("data", (b: Buffer) => {
      if (stderr.length < 65536) stderr += b.toString();
    });
    child.on("error", (err) => done(new Error(`${o.what}: cannot run ${bin}: ${err.message}`)));
    const out = (async () => {
      if (!o.onStdout) return;
      for await (const chunk of child.stdout!) await o.onStdout(chunk as Buffer);
    })();
    child.on("close", (code, signal) => {
      out.then(
        () => done(null, code ?? (signal ? 128 : 1)),
        (err: Error) => done(new Error(`${o.what}: writing its output failed: ${err.message}`)),
      );
    });
    out.catch(() => child.kill("SIGKILL"));
  });
}

/** Writes `header` then a tool's output to `path` (via path.partial, fsynced, renamed, dir fsynced). */
async function saveOutput(path: string, header: string, produce: (write: (chunk: Buffer | string) => Promise<void>) => Promise<void>): Promise<number> {
  const partial = `${path}.partial`;
  let fh: FileHandle | null = await open(partial, "wx", 0o600);
  let bytes = 0;
  try {
    const write = async (chunk: Buffer | string) => {
      const { bytesWritten } = await fh!.write(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
      bytes += bytesWritten;
    };
    await write(header);
    await produce(write);
    await fh.sync();
    await fh.close();
    fh = null;
    await rename(partial, path);
    await syncDir(dirname(path));
    return bytes;
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw err;
  }
}

async function syncDir(dir: string) {
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return withTimeout(p, ms, `${what}: no answer within ${ms} ms`);
}

// ---------------------------------------------------------------------------------------------
// The repair.

const ident = (s: string) => `\`${s.replace(/`/g, "``")}\``;

async function userDatabases(c: SqlConn): Promise<string[]> {
  const r = await rows(c, `SELECT SCHEMA_NAME AS db FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN (${SYSTEM_DATABASES.map(() => "?").join(",")}) ORDER BY SCHEMA_NAME`, SYSTEM_DATABASES);
  return r.map((x) => String(x.db));
}

/**
 * Re-clones this node (`self`) from `primary`, saving first what it discards. Resolves with the
 * report (null: onlyIfNeeded and nothing needed); throws DbRepairError, saying whether the copy was
 * already wiped.
 */
export async function rebuildFromPrimary(o: RepairOptions): Promise<RepairReport | null> {
  const now = o.now ?? (() => performance.now());
  const timeoutMs = o.timeoutMs ?? 600_000;
  const bin = { dump: "mariadb-dump", client: "mariadb", binlog: "mariadb-binlog", ...o.bin };
  const { self, primary } = o;
  const t0 = now();
  const phases: Phase[] = [];
  let mark = t0;
  const phase = (name: string, ok: boolean, detail?: string) => {
    const t = now();
    phases.push({ name, at: new Date().toISOString(), ms: Math.round(t - mark), ok, ...(detail ? { detail } : {}) });
    mark = t;
    o.log?.(ok ? "info" : "error", `re-clone of n${self} from n${primary}: ${name}${ok ? " done" : " failed"} in ${phases.at(-1)!.ms} ms${detail ? `: ${detail}` : ""}`);
  };
  let wiped = false;
  let saved = "";
  const fail = (err: unknown): never => {
    const msg = err instanceof Error ? err.message : String(err);
    phase("failed", false, msg);
    throw new DbRepairError(
      `n${self} was not re-cloned from n${primary}: ${msg}; ${wiped ? `its copy was already dropped (saved in ${saved}): the next attempt re-clones it` : "nothing was changed on it"}`,
      phases,
      wiped,
    );
  };

  const tmp = await mkdtemp(join(tmpdir(), "corolistener-db-"));
  let me: SqlConn | null = null;
  let cloneFile: string | null = null;
  try {
    const selfCnf = join(tmp, "self.cnf");
    const primaryCnf = join(tmp, "primary.cnf");
    await writeFile(selfCnf, clientOptionFile(o.login, o.cli(self)), { mode: 0o600 });
    await writeFile(primaryCnf, clientOptionFile(o.login, o.cli(primary)), { mode: 0o600 });
    const tool = (what: string, b: string, cnf: string, args: string[], extra: Omit<RunOpts, "timeoutMs" | "what"> = {}) =>
      runTool(b, [`--defaults-extra-file=${cnf}`, ...args], { timeoutMs, what, ...extra });

    // 1. Survey, holding the replication lock of the node so no other change interleaves.
    me = await bounded(o.connect(self), 10_000, `connecting to n${self}'s database`).catch(fail);
    const c = me!;
    const [got] = await rows(c, `SELECT GET_LOCK('${LOCK}', 30) AS ok`, [], 35_000).catch(fail);
    if (Number(got?.ok) !== 1) fail(`another replication change on n${self} did not finish within 30 s`);
    let local: DbNodeState;
    let primaryState: DbNodeState;
    let databases: string[];
    let localDbs: string[];
    let primaryBinlog: string;
    try {
      await exec(c, "SET GLOBAL read_only = ON");
      local = await readState(c);
      localDbs = await userDatabases(c);
      const pc = await bounded(o.connect(primary), 10_000, `connecting to n${primary}'s database`);
      try {
        primaryState = await readState(pc);
        // A primary still waiting for a majority to take its new epoch counts: this copy may be one it needs.
        if (!(await historyChosen(pc, primary, await readEpoch(c), primaryState))) throw new Error(`n${primary} is not a writable primary (read-only): a copy is only taken from the primary`);
        databases = await userDatabases(pc);
        primaryBinlog = String((await rows(pc, "SHOW BINARY LOGS"))[0]?.Log_name ?? "mariadb-bin.000001");
      } finally {
        await pc.end().catch(() => undefined);
      }
    } catch (err) {
      return fail(err);
    }
    const probeStart = (g: Gtid) => formatGtidPos(new Map([...primaryState.binlogPos, [g.domain, g]]));
    let purged = false;
    const has = async (g: Gtid): Promise<boolean> => {
      const quick = quickVerdict(g, primaryState.binlogPos);
      if (quick) return quick === "has";
      const r = await tool(`probing n${primary} for ${gtidStr(g)}`, bin.binlog, primaryCnf, [
        "--read-from-remote-server",
        "--to-last-log",
        "--skip-gtid-strict-mode",
        `--start-position=${probeStart(g)}`,
        `--stop-position=${g.domain}-${g.server}-${g.seq + 1}`,
        primaryBinlog,
      ]);
      const v = classifyProbe(r.code, r.stderr);
      if (v instanceof Error) throw new Error(`probing n${primary} for ${gtidStr(g)}: ${v.message}`);
      if (v === "purged") purged = true; // older than the primary's binlogs: counted as shared
      return v !== "lacks";
    };
    let finding: ErrantFinding;
    try {
      finding = await findErrant(local.binlogPos, sqlErrantSource(c, timeoutMs), has);
    } catch (err) {
      return fail(`finding the errant transactions: ${(err as Error).message}`);
    }
    const refused = local.replica?.ioErrno === 1236;
    const errantText = compressGtids(finding.errant);
    const notInBinlog = [...local.slavePos.values()].filter((g) => quickVerdict(g, primaryState.binlogPos) === "lacks" && !finding.errant.some((e) => gtidStr(e) === gtidStr(g)));
    if (o.onlyIfNeeded && finding.errant.length === 0 && notInBinlog.length === 0 && !refused) {
      o.log?.("info", `n${self} has nothing the primary n${primary} lacks and is not refused by it: no re-clone`);
      await rows(c, `SELECT RELEASE_LOCK('${LOCK}')`).catch(() => undefined);
      return null;
    }
    const problems: string[] = [];
    if (notInBinlog.length) problems.push(`errant GTIDs only in gtid_slave_pos (not in n${self}'s binlog, so only in the dumps): ${compressGtids(notInBinlog)}`);
    if (finding.beyondBinlog.length) problems.push(`the fork predates n${self}'s oldest binlog (domains ${finding.beyondBinlog.join(",")}): older errant transactions are only in the dumps`);
    if (purged) problems.push(`n${primary}'s binlogs do not go back to part of n${self}'s history: that part was taken as shared`);
    phase("survey", true, `errant: ${errantText || "none found"}${refused ? `; refused by n${primary}: ${local.replica!.ioError}` : ""}; databases on n${primary}: ${databases.join(",") || "none"}`);
    o.onStart?.(errantText);

    // 2. Save what this node discards. Nothing is dropped unless this is on disk.
    const at = new Date();
    const base = join(o.discardDir, `${fileStamp(at)}-n${self}`);
    const discardedFile = `${base}-errant.sql`;
    const dumpFiles = localDbs.map((db) => `${base}-dump-${db.replace(/[^\w.-]/g, "_")}.sql`);
    let discardedRows = 0;
    let discardedBytes = 0;
    try {
      const created = await mkdir(o.discardDir, { recursive: true, mode: 0o700 });
      for (let d = o.discardDir; created !== undefined; d = dirname(d)) {
        await syncDir(dirname(d)); // the new directories' entries, up to the first one created
        if (d === created || d === dirname(d)) break;
      }
      // The dumps first: the errant file names them, and they are the fallback.
      for (const [i, db] of localDbs.entries()) {
        discardedBytes += await saveOutput(dumpFiles[i]!, dumpHeader({ self, primary, at, database: db }), async (write) => {
          const r = await tool(`dumping n${self}'s database ${db}`, bin.dump, selfCnf, ["--single-transaction", "--routines", "--events", "--triggers", "--hex-blob", "--skip-dump-date", db], { onStdout: write });
          if (r.code !== 0) throw new Error(`mariadb-dump of n${self}'s ${db} exited with ${r.code}: ${lastLines(r.stderr)}`);
        });
      }
      const header = errantHeader({ self, primary, at, why: o.why, errant: errantText, errantComplete: finding.beyondBinlog.length === 0, localPos: formatGtidPos(local.pos), primaryPos: formatGtidPos(primaryState.binlogPos), dumpFiles });
      discardedBytes += await saveOutput(discardedFile, header, async (write) => {
        if (finding.errant.length === 0) return void (await write("-- (no errant transaction in the binlog)\n"));
        const first = (await rows(c, "SHOW BINARY LOGS"))[0]?.Log_name;
        // Exclusive start per domain: clean domains at their end (nothing of them is printed),
        // diverged ones after the last shared GTID (absent: from the beginning of the binlogs).
        const startPos = formatGtidPos(finding.start);
        const args = ["--read-from-remote-server", "--to-last-log", "--skip-gtid-strict-mode", "-vv", "--base64-output=DECODE-ROWS", ...(startPos ? [`--start-position=${startPos}`] : []), String(first ?? "mariadb-bin.000001")];
        let tail = "";
        const r = await tool(`decoding n${self}'s errant transactions`, bin.binlog, selfCnf, args, {
          onStdout: async (chunk) => {
            const text = tail + chunk.toString("latin1");
            const cut = text.lastIndexOf("\n") + 1;
            discardedRows += countRowChanges(text.slice(0, cut));
            tail = text.slice(cut);
            await write(chunk);
          },
        });
        discardedRows += countRowChanges(tail);
        if (r.code !== 0) {
          const msg = `decoding the errant transactions failed (mariadb-binlog exited with ${r.code}: ${lastLines(r.stderr)}); the dumps hold n${self}'s data as it was`;
          problems.push(msg);
          await write(`\n-- ${msg}\n`);
        }
      });
    } catch (err) {
      return fail(`saving what it would discard under ${o.discardDir} failed: ${(err as Error).message}`);
    }
    saved = [discardedFile, ...dumpFiles].join(", ");
    phase("save", true, `${discardedRows} row changes, ${discardedBytes} bytes in ${saved}`);

    // 3. The primary's copy, consistent with its GTID position.
    let position: string | null = null;
    let clonedBytes = 0;
    try {
      for (const f of await readdir(o.discardDir)) if (f.startsWith(".clone-")) await rm(join(o.discardDir, f), { force: true }); // an earlier run's leftover
      cloneFile = join(o.discardDir, `.clone-${fileStamp(at)}-n${primary}.sql`);
      let tail = "";
      clonedBytes = await saveOutput(cloneFile, "", async (write) => {
        if (databases.length === 0) return;
        const r = await tool(`dumping n${primary}'s databases`, bin.dump, primaryCnf, ["--single-transaction", "--gtid", "--master-data=2", "--routines", "--events", "--triggers", "--hex-blob", "--databases", ...databases], {
          onStdout: async (chunk) => {
            tail = (tail + chunk.toString("latin1")).slice(-8192);
            await write(chunk);
          },
        });
        if (r.code !== 0) throw new Error(`mariadb-dump of n${primary} exited with ${r.code}: ${lastLines(r.stderr)}`);
      });
      position = databases.length ? dumpGtidPos(tail) : formatGtidPos(primaryState.binlogPos);
      if (position === null) throw new Error(`the dump of n${primary} has no gtid_slave_pos`);
    } catch (err) {
      return fail(`dumping n${primary}: ${(err as Error).message}`);
    }
    phase("dump", true, `${clonedBytes} bytes of n${primary} (${databases.join(",") || "no databases"}) at ${position || "(empty)"}`);

    // 4. Wipe: forget replication, drop the databases and the binlogs (with them the errant GTIDs).
    try {
      await exec(c, "STOP SLAVE", [], timeoutMs);
      await exec(c, "RESET SLAVE ALL");
      await exec(c, "SET SESSION sql_log_bin = 0"); // local housekeeping only
      wiped = true;
      for (const db of localDbs) await exec(c, `DROP DATABASE IF EXISTS ${ident(db)}`, [], timeoutMs);
      await exec(c, "RESET MASTER", [], timeoutMs);
      await exec(c, "SET GLOBAL gtid_slave_pos = ''");
    } catch (err) {
      return fail(`wiping n${self}: ${(err as Error).message}`);
    }
    phase("wipe", true, `dropped ${localDbs.join(",") || "nothing"}, binlogs reset`);

    // 5. Load the primary's copy without binlogging it, and take its position.
    try {
      const fh = await open(cloneFile, "r");
      try {
        const r = await tool(`loading n${primary}'s copy into n${self}`, bin.client, selfCnf, ["--batch", "--binary-mode", "--skip-reconnect", "--init-command=SET SESSION sql_log_bin = 0"], { stdinFd: fh.fd });
        if (r.code !== 0) throw new Error(`mariadb exited with ${r.code}: ${lastLines(r.stderr)}`);
      } finally {
        await fh.close();
      }
      const [v] = await rows(c, "SELECT @@global.gtid_binlog_pos AS b");
      if (String(v?.b ?? "") !== "") throw new Error(`the load was binlogged (gtid_binlog_pos ${String(v?.b)}); not replicating from such a copy`);
      // As replication would have created them: events do not run on a replica.
      const evs = await rows(c, "SELECT EVENT_SCHEMA AS s, EVENT_NAME AS e FROM information_schema.EVENTS WHERE STATUS = 'ENABLED'");
      for (const e of evs) await exec(c, `ALTER EVENT ${ident(String(e.s))}.${ident(String(e.e))} DISABLE ON SLAVE`);
      await exec(c, "SET GLOBAL gtid_slave_pos = ?", [position]);
    } catch (err) {
      return fail(`loading: ${(err as Error).message}`);
    }
    phase("load", true, `gtid_slave_pos ${position || "(empty)"}`);

    // 6. Replicate (the checks and settings of a follow), then count what arrived.
    try {
      await o.replication.replicateSelfFrom(c, primary);
    } catch (err) {
      return fail(`starting replication: ${(err as Error).message}`);
    }
    phase("replicate", true, `replicating from n${primary}`);
    let clonedRows: number | null = 0;
    try {
      const tables = await rows(c, "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (?, ?, ?, ?)", SYSTEM_DATABASES);
      for (const t of tables) clonedRows += Number((await rows(c, `SELECT COUNT(*) AS n FROM ${ident(String(t.s))}.${ident(String(t.t))}`, [], 30_000))[0]?.n ?? 0);
    } catch {
      clonedRows = null;
    }
    await rows(c, `SELECT RELEASE_LOCK('${LOCK}')`).catch(() => undefined);
    const report: RepairReport = {
      node: self,
      primary,
      why: o.why,
      errant: errantText,
      errantCount: finding.errant.length + notInBinlog.length,
      errantComplete: finding.beyondBinlog.length === 0 && notInBinlog.length === 0,
      discardedFile,
      dumpFiles,
      discardedRows,
      discardedBytes,
      clonedBytes,
      clonedRows,
      position,
      databases,
      problems,
      phases,
      totalMs: Math.round(now() - t0),
    };
    o.log?.("warn", `n${self} was re-cloned from n${primary} in ${report.totalMs} ms; what it discarded is in ${saved}`, report);
    return report;
  } finally {
    if (cloneFile) await rm(cloneFile, { force: true }).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    await me?.end().catch(() => undefined); // also releases the lock
  }
}

// ---------------------------------------------------------------------------------------------
// The state DbEffects keeps, as health and eligibility show it (pure).

export type DbRepairStatus =
  | { state: "diverged"; primary: number; since: number; why: string; failures: number; lastError?: string; nextAttemptAt?: number }
  | { state: "repairing"; primary: number; since: number; why: string; errant: string }
  | { state: "repaired"; primary: number; at: number; report: RepairReport };

const iso = (ms: number) => new Date(ms).toISOString();

/** One line: "diverged: being re-cloned from n2", "repaired at ...: re-cloned from n2 ...". */
export function describeRepair(s: DbRepairStatus): string {
  if (s.state === "repairing") return `diverged: being re-cloned from n${s.primary}${s.errant ? ` (discarding ${s.errant})` : ""}`;
  if (s.state === "diverged") {
    const next = s.nextAttemptAt ? `; next re-clone attempt at ${iso(s.nextAttemptAt)}` : "";
    return `diverged from n${s.primary}: ${s.why}${s.lastError ? `; re-clone failed ${s.failures} time(s): ${s.lastError}` : ""}${next}`;
  }
  const r = s.report;
  return `repaired at ${iso(s.at)}: re-cloned from n${s.primary} in ${r.totalMs} ms${r.errant ? `, discarded ${r.errant}` : ""} (saved in ${r.discardedFile})`;
}

/**
 * May this node become master as far as its own database goes? No while it diverged, is being
 * re-cloned, its replication is broken, or its mariadbd does not answer.
 */
export function localEligibility(me: DbNodeHealth | undefined, repair: DbRepairStatus | null): { eligible: boolean; reason: string } {
  if (repair && repair.state !== "repaired") return { eligible: false, reason: describeRepair(repair) };
  if (!me) return { eligible: true, reason: "database not checked yet" };
  if (!me.reachable) return { eligible: false, reason: `the local database server does not answer: ${me.error ?? "no answer"}` };
  if (me.replication === "error") return { eligible: false, reason: `replication broken: ${me.error ?? "error"}` };
  if (me.replication === "disk-full") return { eligible: false, reason: `replication stalled: ${me.error ?? "disk full"}` };
  const state = me.replication === "none" ? me.role : `${me.role} ${me.replication}`;
  return { eligible: true, reason: repair ? `${state}; ${describeRepair(repair)}` : state };
}

/**
 * The watch's reading of a diverged or refused replica (null: it looks fine). Seq-based only (the
 * primary is not asked); rebuildFromPrimary checks exactly before it changes anything.
 */
export function divergence(me: DbNodeHealth, primary: DbNodeHealth | undefined): string | null {
  if (me.replication === "error" && /^IO error 1236\b/.test(me.error ?? "")) return `the primary refused it: ${me.error}`;
  // gtid_strict_mode refuses a replicated transaction ordered before one of the node's own.
  if (me.replication === "error" && /^SQL error 1950\b/.test(me.error ?? "")) return `its history diverged from the primary's: ${me.error}`;
  if (primary?.reachable && primary.role === "primary" && me.gtid && primary.gtid) {
    const mine = parseGtidPos(me.gtid);
    const theirs = parseGtidPos(primary.gtid);
    const ahead = [...mine.values()].filter((g) => quickVerdict(g, theirs) === "lacks");
    if (ahead.length) return `it has transactions the primary lacks (errant GTIDs: ${compressGtids(ahead)})`;
  }
  return null;
}

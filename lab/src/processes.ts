// Finding, starting and signalling processes that live inside a lab node.
import { spawn } from "node:child_process";
import { openSync, closeSync, readFileSync, existsSync } from "node:fs";
import { runSyncQuiet } from "@ha/shared";

/** The kinds of process a test may kill, pause or restart inside a node. */
export const PROCESS_KINDS = ["corosync", "agent", "mariadb", "panel", "vm", "rsyncd"] as const;
export type ProcessKind = (typeof PROCESS_KINDS)[number];

export function parseProcessKind(s: string): ProcessKind | "all" {
  if (s === "all" || (PROCESS_KINDS as readonly string[]).includes(s)) return s as ProcessKind | "all";
  throw new Error(`unknown process "${s}": use one of ${PROCESS_KINDS.join(", ")} or all`);
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

/** Decides what kind a process is from its command line (pure, tested). */
export function classifyCmdline(cmd: string): ProcessKind | "anchor" | "other" {
  const argv0 = cmd.split(" ")[0] ?? "";
  if (cmd === "sleep infinity") return "anchor";
  if (argv0.endsWith("corosync")) return "corosync";
  if (argv0.endsWith("mariadbd") || argv0.endsWith("mysqld")) return "mariadb";
  if (/corolistener\.ts daemon|corolistener daemon/.test(cmd)) return "agent";
  if (/panel\/server/.test(cmd)) return "panel";
  if (/ha-vm /.test(cmd)) return "vm";
  // File replication's receiver: the node wrapper and the rsync daemon it runs.
  if (/nodereplication\.ts serve/.test(cmd) || (argv0.endsWith("rsync") && cmd.includes(" --daemon"))) return "rsyncd";
  return "other";
}

/** All processes whose network namespace is `ns`: by construction, only what the lab started there. */
export function pidsInNetns(ns: string): number[] {
  return runSyncQuiet("ip", ["netns", "pids", ns])
    .split("\n")
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0 && n !== process.pid);
}

export function findProcesses(ns: string, kind: ProcessKind | "all"): Array<{ pid: number; kind: string; cmd: string }> {
  return pidsInNetns(ns)
    .map((pid) => {
      const cmd = cmdline(pid);
      return { pid, cmd, kind: classifyCmdline(cmd) };
    })
    .filter((p) => p.cmd !== "" && (kind === "all" ? p.kind !== "anchor" && p.kind !== "other" : p.kind === kind));
}

export const isAlive = (pid: number) => existsSync(`/proc/${pid}`) && !/^\S+ \S+ Z/.test(safeStat(pid));
function safeStat(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/\(.*\)/, "x");
  } catch {
    return "";
  }
}

/** Sends SIGTERM (and SIGCONT, for paused ones), then SIGKILL to whatever is left after graceMs. */
export function terminate(pids: number[], graceMs = 3000): void {
  for (const pid of pids) {
    for (const sig of ["SIGTERM", "SIGCONT"] as const) {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  }
  const deadline = Date.now() + graceMs;
  const shared = new Int32Array(new SharedArrayBuffer(4));
  while (pids.some(isAlive) && Date.now() < deadline) Atomics.wait(shared, 0, 0, 50);
  for (const pid of pids.filter(isAlive)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

/** Starts a long-running process detached from us, output appended to logFile; returns its pid. */
export function spawnDetached(argv: string[], logFile: string, env: NodeJS.ProcessEnv = process.env, cwd?: string): number {
  const fd = openSync(logFile, "a");
  try {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { detached: true, stdio: ["ignore", fd, fd], env, cwd });
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${argv.join(" ")}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

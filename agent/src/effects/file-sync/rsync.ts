// Pure parts of file replication: the rsync client's argv, the receiving daemon's rsyncd.conf, and
// reading rsync's --stats output and exit status. No I/O here (tested in agent/test/unit).
import type { FileSet, FileSyncConfig } from "./config.ts";

/** Where the hook script lives in this checkout (rsyncd runs it before and after every transfer). */
export const COMMIT_HOOK = new URL("./commit-version.sh", import.meta.url).pathname;

/**
 * The client's argv for one push of a file set to one node. `--link-dest=../current` makes the staging
 * copy hard-link every unchanged file from the node's current version, so a cycle writes only what
 * changed; the daemon's post-xfer hook then flips `current` to it (see commit-version.sh).
 */
export function rsyncPushArgs(o: { set: string; fileSet: FileSet; host: string; config: FileSyncConfig }): string[] {
  const c = o.config;
  return [
    "--archive", // recursive, symlinks, permissions, times, owner/group (we run as root), devices
    "--hard-links",
    "--delete-after", // a staging copy left by an interrupted run loses files the master no longer has
    "--link-dest=../current",
    // Compare mtimes to the nanosecond: a file rewritten at the same size within the second of the
    // previous copy would otherwise look unchanged (rsync's default compares whole seconds).
    "--modify-window=-1",
    "--stats",
    `--timeout=${c.ioTimeoutSec}`,
    `--contimeout=${c.connectTimeoutSec}`,
    `--port=${c.port}`,
    `${o.fileSet.source.replace(/\/+$/, "")}/`, // trailing slash: the directory's contents
    `rsync://${c.user}@${o.host}/${o.set}/staging/`,
  ];
}

/** rsyncd.conf for a node: one write-only module per file set, reachable only with the secret. */
export function rsyncdConf(o: { config: FileSyncConfig; hook?: string }): string {
  const c = o.config;
  const hook = o.hook ?? COMMIT_HOOK;
  const lines = [
    "# Written by `nodereplication serve`: receives the master's file sets (README \"File replication\").",
    `pid file = ${c.runDir}/rsyncd.pid`,
    "use chroot = no",
    "reverse lookup = no",
    `hosts allow = ${c.hostsAllow}`,
    "hosts deny = *",
    "",
  ];
  for (const [name, set] of Object.entries(c.sets)) {
    lines.push(
      `[${name}]`,
      `path = ${set.target}`,
      "read only = no",
      "write only = yes", // nobody reads the copies back over the network
      "list = no",
      "uid = root",
      "gid = root",
      `auth users = ${c.user}`,
      `secrets file = ${c.runDir}/rsyncd.secrets`,
      "strict modes = yes",
      // One writer at a time: two masters during a failover cannot interleave in staging.
      "max connections = 1",
      `lock file = ${c.runDir}/${name}.lock`,
      `pre-xfer exec = /bin/sh ${hook} pre`, // via sh: works without the exec bit
      `post-xfer exec = /bin/sh ${hook} post`,
      "",
    );
  }
  return lines.join("\n");
}

/** The secrets file's content (the daemon insists on mode 600). */
export const rsyncdSecrets = (c: FileSyncConfig) => `${c.user}:${c.secret}\n`;

export type RsyncStats = {
  files: number;
  created: number;
  deleted: number;
  transferred: number;
  totalBytes: number;
  transferredBytes: number;
};

/** Reads `rsync --stats` output; fields rsync did not print stay 0. */
export function parseRsyncStats(out: string): RsyncStats {
  const num = (label: string) => {
    const m = new RegExp(`^${label}:\\s*([\\d,.]+)`, "m").exec(out);
    return m ? Number(m[1]!.replace(/[,.](?=\d{3}\b)/g, "")) : 0;
  };
  return {
    files: num("Number of files"),
    created: num("Number of created files"),
    deleted: num("Number of deleted files"),
    transferred: num("Number of regular files transferred"),
    totalBytes: num("Total file size"),
    transferredBytes: num("Total transferred file size"),
  };
}

/** rsync's documented exit codes (man rsync, EXIT VALUES). */
const EXIT_CODES: Record<number, string> = {
  1: "syntax or usage error",
  2: "protocol incompatibility",
  3: "errors selecting input/output files, dirs",
  4: "requested action not supported",
  5: "error starting client-server protocol",
  6: "daemon unable to append to log-file",
  10: "error in socket I/O",
  11: "error in file I/O",
  12: "error in rsync protocol data stream",
  13: "errors with program diagnostics",
  14: "error in IPC code",
  20: "received SIGUSR1 or SIGINT",
  21: "some error returned by waitpid()",
  22: "error allocating core memory buffers",
  23: "partial transfer due to error",
  24: "partial transfer due to vanished source files",
  25: "the --max-delete limit stopped deletions",
  30: "timeout in data send/receive",
  35: "timeout waiting for daemon connection",
};

/**
 * One line for people (the panel, incidents) from a failed run: rsync's own `@ERROR`/`rsync:` lines
 * first (they name the cause: auth failed, connection refused...), then the exit code's meaning.
 */
export function describeRsyncFailure(code: number | null, signal: string | null, stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !/^rsync error: .* at \S+\(\d+\)/.test(l)); // the generic trailer repeats the code
  const what = signal ? `rsync killed by ${signal}` : `rsync exit ${code}${code !== null && EXIT_CODES[code] ? ` (${EXIT_CODES[code]})` : ""}`;
  const detail = [...new Set(lines)].slice(0, 4).join("; ");
  return (detail ? `${what}: ${detail}` : what).slice(0, 2048);
}

/** The daemon refused because another copy holds the module (a run still committing, or a second master). */
export const isBusy = (code: number | null, stderr: string) => code === 5 && /max connections/.test(stderr);

/**
 * Only exit 0 counts: the daemon's hook commits on status 0 only, so even exit 24 (source files vanished
 * while copying) leaves the node's old set in place, and we report the run as failed; the next retries.
 */
export const rsyncSucceeded = (code: number | null) => code === 0;

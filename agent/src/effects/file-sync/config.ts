// The agent config's `fileSync` section: which file sets the master copies to every node, how often,
// and the rsync daemon every node runs to receive them (docs/operations.md "File replication").
import { Cron } from "croner";
import { z } from "zod";

const absolutePath = z.string().regex(/^\/\S*$/, "an absolute path without spaces");
/** rsync module and file-set names end up in URLs and rsyncd.conf section headers. */
const setName = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, "lower-case letters, digits, '_' and '-', at most 64");

function isCronPattern(p: string): boolean {
  try {
    new Cron(p, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}

export const FileSetSchema = z
  .object({
    /** The directory on the master whose contents are copied (it is the truth; nodes mirror it). */
    source: absolutePath,
    /**
     * The rsync module's directory on every node. The complete copy is `<target>/current` (a symlink
     * to the newest finished version); `<target>/staging` is the copy in progress.
     */
    target: absolutePath,
  })
  .strict();
export type FileSet = z.infer<typeof FileSetSchema>;

export const DEFAULT_FILE_SETS: Record<string, FileSet> = {
  mgrfiles: { source: "/usr/local/mgr5/var/mgrfiles", target: "/usr/local/mgr5/var/replica/mgrfiles" },
};

export const FileSyncConfigSchema = z
  .object({
    /** When the master copies: a croner pattern (5 fields, or 6 with seconds first). */
    schedule: z.string().min(1).refine(isCronPattern, "not a cron pattern croner accepts (e.g. \"*/5 * * * *\")").default("*/5 * * * *"),
    /** The rsync daemon's user and shared secret (every node has the same config). */
    user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/).default("mgrsync"),
    secret: z.string().min(12, "at least 12 characters").regex(/^\S+$/, "no whitespace"),
    port: z.number().int().min(1).max(65535).default(873),
    /** The address the node's rsync daemon listens on: its control-network address. */
    listenAddress: z.ipv4().optional(),
    /** Who may connect (rsyncd `hosts allow`), e.g. the cluster subnet "172.31.224.0/24". */
    hostsAllow: z.string().regex(/^[0-9./ ,:a-fA-F]+$/).default("127.0.0.1"),
    /** rsync --timeout / --contimeout, seconds: a hung peer fails the run instead of blocking it. */
    ioTimeoutSec: z.number().int().positive().default(60),
    connectTimeoutSec: z.number().int().positive().default(10),
    /** Where `nodereplication serve` writes rsyncd.conf, the secrets file and the lock files. */
    runDir: absolutePath.default("/run/corolistener/rsyncd"),
    sets: z.record(setName, FileSetSchema).default(DEFAULT_FILE_SETS),
  })
  .strict();
export type FileSyncConfig = z.output<typeof FileSyncConfigSchema>;

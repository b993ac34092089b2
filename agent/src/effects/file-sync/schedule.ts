// Runs replication on the master only: a croner job that exists while this node is master, one run
// right after it becomes master (a new master brings the nodes up to its set at once), and never two
// runs at the same time (a slow cycle makes the next tick skip, it does not pile up).
import { Cron } from "croner";
import type { FileReplicator, NodeSyncResult, SyncLog } from "./replicator.ts";

export class FileSyncSchedule {
  private job: Cron | null = null;
  private running: Promise<void> | null = null;
  /** Aborts the copies of the run in progress (a node that stops being master stops copying at once). */
  private abort: AbortController | null = null;

  constructor(
    private readonly o: { pattern: string; sets: string[]; replicator: FileReplicator; log: SyncLog },
  ) {
    // A bad pattern stops start-up with croner's message instead of failing later on the master.
    new Cron(o.pattern, { paused: true }).stop();
  }

  /** Called after every core step; cheap when nothing changed. */
  setMaster(isMaster: boolean) {
    if (isMaster && !this.job) {
      this.o.log("info", `file replication scheduled (${this.o.pattern}) for ${this.o.sets.join(", ")}: this node is master`);
      this.job = new Cron(this.o.pattern, { unref: true }, () => void this.runNow("schedule"));
      void this.runNow("became master");
    } else if (!isMaster && this.job) {
      this.o.log("info", "file replication stopped: this node is no longer master");
      this.stop();
    }
  }

  /** One pass over every file set, unless one is already running (then that one's outcome counts). */
  runNow(why: string): Promise<void> {
    if (this.running) {
      this.o.log("info", `file replication (${why}) skipped: the previous run is still going`);
      return this.running;
    }
    const abort = (this.abort = new AbortController());
    this.running = (async () => {
      try {
        for (const set of this.o.sets) {
          if (abort.signal.aborted) break;
          const results: NodeSyncResult[] = await this.o.replicator.run(set, abort.signal);
          const failed = results.filter((r) => !r.ok).length;
          this.o.log(failed ? "warn" : "info", `file replication of ${set} (${why}): ${results.length - failed}/${results.length} nodes ok`);
        }
      } catch (err) {
        this.o.log("error", `file replication (${why}) failed: ${(err as Error).message}`);
      } finally {
        this.running = null;
        this.abort = null;
      }
    })();
    return this.running;
  }

  stop() {
    this.job?.stop();
    this.job = null;
    this.abort?.abort();
  }
}

// At most `limit` VM starts at once on this node (agent config `vm.maxParallelStarts`, default 4).
// Starting many VMs at once after a failover makes every one of them slow (disk, CPU); a few at a
// time gets the first ones up sooner. Only starts take a slot: stops, the heartbeat, the cluster IP
// and the panel have their own queues and never wait for it.

export const DEFAULT_MAX_PARALLEL_STARTS = 4;

export class StartLimit {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number = DEFAULT_MAX_PARALLEL_STARTS) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`vm.maxParallelStarts must be an integer >= 1, got ${limit}`);
  }

  /** Starts running now. */
  get running(): number {
    return this.active;
  }

  /** Starts waiting for a slot (first come, first served). */
  get queued(): number {
    return this.waiting.length;
  }

  /** Run `start` when a slot is free; the slot is released however it ends. */
  async run<T>(start: () => Promise<T>): Promise<T> {
    if (this.active < this.limit) this.active += 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve)); // the slot is handed over
    try {
      return await start();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }
}

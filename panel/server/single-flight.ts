// Identical list reads that arrive while one is being answered share its result: under load, 100
// browsers asking for the VM list cost one query and one JSON encoding instead of 100. Nothing is
// kept once the read is done, so no answer is older than the read it joined. A write bumps the
// generation: a read that began before the write is never handed to a request made after it.
export class SingleFlight {
  private readonly inFlight = new Map<string, Promise<string>>();
  private generation = 0;

  /** After a write: later requests start a fresh read. */
  invalidate() {
    this.generation++;
  }

  /** The JSON text of `compute()`, shared with identical requests (`key`) in progress. */
  json(key: string, compute: () => Promise<unknown>): Promise<string> {
    const k = `${this.generation}\n${key}`;
    let p = this.inFlight.get(k);
    if (!p) {
      p = compute()
        .then((v) => JSON.stringify(v))
        .finally(() => this.inFlight.delete(k));
      this.inFlight.set(k, p);
    }
    return p;
  }
}

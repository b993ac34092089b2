// A push-based async iterator: events() hands one out per consumer; it ends on stop().
import type { ClusterEvent } from './types.ts';

export class EventStream implements AsyncIterator<ClusterEvent> {
  private readonly queue: ClusterEvent[] = [];
  private waiter: ((r: IteratorResult<ClusterEvent>) => void) | null = null;
  private ended = false;

  constructor(private readonly onClose: () => void) {}

  push(ev: ClusterEvent): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: ev, done: false });
    } else {
      this.queue.push(ev);
    }
  }

  /** Ends the stream; queued events are still delivered first. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onClose();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<ClusterEvent>> {
    const ev = this.queue.shift();
    if (ev) return Promise.resolve({ value: ev, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** Called by `break` in for-await: unsubscribe and drop what is queued. */
  return(): Promise<IteratorResult<ClusterEvent>> {
    this.queue.length = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }
}

// Blocks in poll(2) on one libuv worker thread (koffi async call) until an fd is ready or
// wake() is called. Results come back on the main thread, so corosync callbacks (run later by
// X_dispatch on the main thread) never execute on a foreign thread and idle costs no CPU.
import { POLLERR, POLLHUP, POLLIN, POLLNVAL, libc, makePipe } from './libc.ts';

const POLLFD_SIZE = 8; // struct pollfd { int fd; short events; short revents; }
export const POLL_BROKEN = POLLERR | POLLHUP | POLLNVAL;

export class FdPoller {
  private readonly wakeRead: number;
  private readonly wakeWrite: number;
  private busy = false;
  private closed = false;

  constructor() {
    [this.wakeRead, this.wakeWrite] = makePipe();
  }

  /** Resolves with fd -> revents for the ready fds among `fds` (empty map after a wake-up). */
  wait(fds: number[]): Promise<Map<number, number>> {
    if (this.closed) return Promise.reject(new Error('poller closed'));
    if (this.busy) return Promise.reject(new Error('poller already waiting'));
    const all = [this.wakeRead, ...fds];
    const buf = Buffer.alloc(all.length * POLLFD_SIZE);
    all.forEach((fd, i) => {
      buf.writeInt32LE(fd, i * POLLFD_SIZE);
      buf.writeInt16LE(POLLIN, i * POLLFD_SIZE + 4);
    });
    this.busy = true;
    return new Promise((resolve) => {
      // `buf` stays referenced by this closure until the worker thread is done with it.
      libc().poll.async(buf, all.length, -1, (err: unknown, n: number) => {
        this.busy = false;
        const ready = new Map<number, number>();
        if (err || n <= 0) return resolve(ready); // EINTR and friends: caller just polls again
        all.forEach((fd, i) => {
          const revents = buf.readInt16LE(i * POLLFD_SIZE + 6) & 0xffff;
          if (revents === 0) return;
          if (fd === this.wakeRead) this.drain();
          else ready.set(fd, revents);
        });
        resolve(ready);
      });
    });
  }

  /** Makes a pending (or the next) wait() return promptly. Safe to call from anywhere. */
  wake(): void {
    if (!this.closed) libc().write(this.wakeWrite, Buffer.from([1]), 1); // EAGAIN = already pending
  }

  get waiting(): boolean {
    return this.busy;
  }

  /** Closes the wake-up pipe; only call when no wait() is pending. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc().close(this.wakeRead);
    libc().close(this.wakeWrite);
  }

  private drain(): void {
    const scratch = Buffer.alloc(64);
    while (libc().read(this.wakeRead, scratch, scratch.length) > 0);
  }
}

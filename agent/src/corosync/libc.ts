// libc poll/pipe helpers for the dispatch loop (Linux x86_64/aarch64 constants).
import { koffi, lazy, loadLib } from './ffi.ts';

export const POLLIN = 0x001;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

export const libc = lazy(() => {
  const lib = loadLib('libc.so.6');
  return {
    // struct pollfd { int fd; short events; short revents; } is passed as a raw 8-byte-per-entry Buffer.
    poll: lib.func('int poll(void *fds, unsigned long nfds, int timeout)'),
    pipe2: lib.func('int pipe2(void *fds, int flags)'),
    read: lib.func('long read(int fd, void *buf, unsigned long count)'),
    write: lib.func('long write(int fd, const void *buf, unsigned long count)'),
    close: lib.func('int close(int fd)'),
    // Only used for WDIOC_SETTIMEOUT, whose argument is an int in/out.
    ioctl: lib.func('int ioctl(int fd, unsigned long request, void *arg)'),
  };
});

/** Creates a non-blocking close-on-exec pipe; returns [readFd, writeFd]. */
export function makePipe(): [number, number] {
  const fds = Buffer.alloc(8);
  if (libc().pipe2(fds, O_NONBLOCK | O_CLOEXEC) !== 0) {
    throw new Error(`pipe2 failed: errno ${koffi.errno()}`);
  }
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

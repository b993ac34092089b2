// The watchdog: if the daemon stops stepping (hung, paused, crashed mid-fence), the node is reset.
// Production nodes use /dev/watchdog; without one (the lab), a supervisor process plays the watchdog
// and "resets" the node by killing every process in the node's network namespace.
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, writeSync, closeSync, existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { koffi } from "../corosync/ffi.ts";
import { libc } from "../corosync/libc.ts";

export interface Watchdog {
  /** The node must be reset if not petted again within `ms`. */
  pet(ms: number): void;
  /** Clean shutdown: no reset. */
  disarm(): void;
  /** Reset the node now (the Fence action). */
  resetNow(reason: string): void;
}

/** WDIOC_SETTIMEOUT = _IOWR('W', 6, int) on Linux (x86_64 and aarch64). */
const WDIOC_SETTIMEOUT = 0xc0045706;

/**
 * Whether to pet a kernel watchdog whose timer runs for `timeoutMs` after each pet, when the
 * core's deadline is `remainingMs` away. Petting restarts the full timer, so we pet only while the
 * whole timer still ends before the deadline; after that we stop, and the kernel resets the node
 * no later than the deadline (up to one timer early, never late).
 */
export function shouldPetKernelWatchdog(remainingMs: number, timeoutMs: number): boolean {
  return remainingMs >= timeoutMs;
}

/**
 * /dev/watchdog. Its timer is set to `timeoutSec` (the driver default is often 60 s, far too long
 * to honour a fence deadline) and petted only while that timer ends before the core's deadline.
 *
 * The arithmetic (T = the timeout the ioctl returned; a driver may round up, so we use its value;
 * D = the core's deadline): a pet at t restarts the kernel's timer, which then expires at t + T.
 * We pet only while D - t >= T, so no expiry the kernel holds is later than the D it was set for.
 * The daemon pets on every step (at least every tickMs, 100 ms), so the last pet comes with D - t
 * in [T, T + tickMs): a running daemon that stops meeting its deadline is reset in (D - tickMs, D],
 * one that hangs is reset up to T early. Never late, provided no deadline moves to less than T
 * after a pet already made: with the default settings each core term is >= 1 s away when it
 * appears, except the start-up ones (startedAt + leaseMarginMs / + storageWriteMaxMs), and opening
 * the device also pings it (as does WDIOC_SETTIMEOUT) -- the start-up IP term holds anyway, since
 * the daemon releases a leftover IP synchronously before it opens the watchdog (createCore).
 * On top comes the kernel's own lateness: none to speak of for softdog (a kernel hrtimer, then
 * emergency_restart), up to one tick of its counter for a board watchdog (some count coarsely,
 * e.g. Intel TCO in 0.6 s). Once it fires the machine stops: no process or address outlives it.
 * See README.md "Watchdog margins".
 */
export class DevWatchdog implements Watchdog {
  private fd: number | null;
  readonly timeoutMs: number;
  constructor(path = "/dev/watchdog", timeoutSec = 1) {
    const fd = openSync(path, "w");
    try {
      this.timeoutMs = setKernelWatchdogTimeout(fd, timeoutSec) * 1000;
    } catch (err) {
      writeSync(fd, "V"); // opening armed it: disarm before giving up
      closeSync(fd);
      throw err;
    }
    this.fd = fd;
  }
  pet(ms: number) {
    if (this.fd !== null && shouldPetKernelWatchdog(ms, this.timeoutMs)) writeSync(this.fd, "\0");
  }
  disarm() {
    if (this.fd === null) return;
    writeSync(this.fd, "V"); // magic close: the driver stops the timer
    closeSync(this.fd);
    this.fd = null;
  }
  resetNow() {
    // Stop petting; write to sysrq for an immediate reboot where allowed.
    try {
      writeSync(openSync("/proc/sysrq-trigger", "w"), "b");
    } catch {
      /* the kernel watchdog fires within its timeout */
    }
  }
}

/** Sets the kernel watchdog's timeout; returns what the driver actually chose (it may round up). */
function setKernelWatchdogTimeout(fd: number, seconds: number): number {
  const arg = Buffer.alloc(4);
  arg.writeInt32LE(seconds, 0);
  if (libc().ioctl(fd, WDIOC_SETTIMEOUT, arg) !== 0) {
    throw new Error(`/dev/watchdog: cannot set the timeout to ${seconds} s (ioctl WDIOC_SETTIMEOUT failed, errno ${koffi.errno()}); refusing to run with the driver's default`);
  }
  return arg.readInt32LE(0);
}

export const SUPERVISOR = fileURLToPath(new URL("./watchdog-supervisor.ts", import.meta.url));

/** CLOCK_MONOTONIC in ms, the same in every process of the machine (unlike performance.now()), and never stepped (unlike Date.now()). */
export function monoNow(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/**
 * Node's arguments for the supervisor. --single-threaded-gc: its main thread runs at real-time
 * priority, and must not wait for a GC helper thread that the load keeps off the CPU.
 */
export function supervisorArgs(tsxLoader: string, script = SUPERVISOR): string[] {
  return ["--single-threaded-gc", "--import", tsxLoader, script];
}

/**
 * A separate process holding the deadline: it keeps counting when the daemon is paused. It arms
 * a timer for the exact deadline (re-armed on every pet) and raises its own scheduling priority
 * above the agent's and the workload's (watchdog-supervisor.ts), so a loaded node is reset on time.
 */
export class SupervisorWatchdog implements Watchdog {
  private child: ChildProcess;
  /**
   * `clusterIp`: a reset loses runtime state, so the supervisor also removes this address (a real
   * reboot would), and the addresses of the VM processes it kills.
   */
  constructor(tsxLoader: string, clusterIp?: { cidr: string; device: string }) {
    const env = { ...process.env, WATCHDOG_RELEASE_CIDR: clusterIp?.cidr ?? "", WATCHDOG_RELEASE_DEV: clusterIp?.device ?? "" };
    this.child = spawn(process.execPath, supervisorArgs(tsxLoader), { stdio: ["pipe", "inherit", "inherit"], detached: true, env });
    this.child.unref();
    this.child.stdin?.on("error", () => undefined);
  }
  private send(msg: object) {
    this.child.stdin?.write(JSON.stringify(msg) + "\n");
  }
  pet(ms: number) {
    // `deadline` (wall clock) for a supervisor of an older agent version still running beside us.
    this.send({ mono: monoNow() + ms, deadline: Date.now() + ms });
  }
  disarm() {
    this.send({ disarm: true });
    this.child.stdin?.end();
  }
  resetNow(reason: string) {
    this.send({ reset: reason });
  }
}

export function createWatchdog(tsxLoader: string, clusterIp?: { cidr: string; device: string }): Watchdog {
  return existsSync("/dev/watchdog") ? new DevWatchdog() : new SupervisorWatchdog(tsxLoader, clusterIp);
}

/** Pids sharing our network namespace, except us and the lab's namespace holder (`sleep infinity`). */
export function nodeProcesses(selfPid: number): number[] {
  return nodeProcessList(selfPid).map((p) => p.pid);
}

/** nodeProcesses with each one's command line (NUL-separated, as in /proc/PID/cmdline). */
export function nodeProcessList(selfPid: number): Array<{ pid: number; cmdline: string }> {
  const myNet = readlinkSync(`/proc/${selfPid}/ns/net`);
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === selfPid) continue;
    try {
      if (readlinkSync(`/proc/${d}/ns/net`) !== myNet) continue;
      const cmdline = readFileSync(`/proc/${d}/cmdline`, "utf8");
      if (cmdline.split("\0").join(" ").trim() !== "sleep infinity") out.push({ pid: Number(d), cmdline });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

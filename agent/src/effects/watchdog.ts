// The watchdog: if the daemon stops stepping (hung, paused, crashed mid-fence), the node is reset.
// Production nodes use /dev/watchdog; without one (the lab), a supervisor process plays the watchdog
// and "resets" the node by killing every process in the node's network namespace.
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, writeSync, closeSync, existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface Watchdog {
  /** The node must be reset if not petted again within `ms`. */
  pet(ms: number): void;
  /** Clean shutdown: no reset. */
  disarm(): void;
  /** Reset the node now (the Fence action). */
  resetNow(reason: string): void;
}

/** /dev/watchdog: petted while the core's deadline holds; the kernel resets after its own margin. */
export class DevWatchdog implements Watchdog {
  private fd: number | null;
  constructor(path = "/dev/watchdog") {
    this.fd = openSync(path, "w");
  }
  pet(ms: number) {
    if (this.fd !== null && ms > 0) writeSync(this.fd, "\0");
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
      /* the kernel watchdog fires after its margin */
    }
  }
}

const SUPERVISOR = fileURLToPath(new URL("./watchdog-supervisor.ts", import.meta.url));

/** A separate process holding the deadline: it keeps counting when the daemon is paused. */
export class SupervisorWatchdog implements Watchdog {
  private child: ChildProcess;
  /** `clusterIp`: a reset loses runtime state, so the supervisor also removes this address (a real reboot would). */
  constructor(tsxLoader: string, clusterIp?: { cidr: string; device: string }) {
    const env = { ...process.env, WATCHDOG_RELEASE_CIDR: clusterIp?.cidr ?? "", WATCHDOG_RELEASE_DEV: clusterIp?.device ?? "" };
    this.child = spawn(process.execPath, ["--import", tsxLoader, SUPERVISOR], { stdio: ["pipe", "inherit", "inherit"], detached: true, env });
    this.child.unref();
    this.child.stdin?.on("error", () => undefined);
  }
  private send(msg: object) {
    this.child.stdin?.write(JSON.stringify(msg) + "\n");
  }
  pet(ms: number) {
    this.send({ deadline: Date.now() + ms });
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
  const myNet = readlinkSync(`/proc/${selfPid}/ns/net`);
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      if (pid === selfPid) return false;
      try {
        if (readlinkSync(`/proc/${pid}/ns/net`) !== myNet) return false;
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim() !== "sleep infinity";
      } catch {
        return false;
      }
    });
}

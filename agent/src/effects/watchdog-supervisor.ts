// The lab's watchdog: reads deadlines from the daemon on stdin; when one passes (the daemon is
// hung or paused) or a reset is asked for, kills every process of this node, like a hardware reset,
// and removes the runtime addresses a reboot would lose: the cluster IP and the killed VMs' own.
//
// On time under load: a timer is armed for the exact deadline and re-armed on every pet (a 100 ms
// poll fired up to 84 ms late on a loaded lab), on CLOCK_MONOTONIC (monoNow, shared with the
// daemon, never stepped), and this process's main thread runs at a real-time priority (SCHED_FIFO
// 10, below corosync's own SCHED_RR 99) so a node busy with the agent, VMs and databases cannot
// delay it: a woken real-time thread preempts every normal one at once, which no nice value
// guarantees. It sleeps all the time but for a few ms per reset, and only the main thread is
// raised (V8's helper threads keep their priority). When real-time is refused (no CAP_SYS_NICE,
// or an RT budget of 0 in the cgroup) it falls back to nice -10, else runs as is; either way it
// says so on stderr and never fails for it. WATCHDOG_PRIORITY=rt|nice|none picks (benchmarks).
import { createInterface } from "node:readline";
import { spawnSync } from "node:child_process";
import { setPriority } from "node:os";
import { koffi, loadLib } from "../corosync/ffi.ts";
import { monoNow, nodeProcessList } from "./watchdog.ts";
import { vmAddressFromCmdline } from "./vm/net.ts";

const SCHED_FIFO = 1;
const RT_PRIORITY = 10;

/** Raises this thread's scheduling priority as far as allowed; says how it runs. */
function raisePriority(mode: string): string {
  const errors: string[] = [];
  if (mode === "rt") {
    try {
      const sched = loadLib("libc.so.6").func("int sched_setscheduler(int pid, int policy, void *param)") as (pid: number, policy: number, param: Buffer) => number;
      const param = Buffer.alloc(4);
      param.writeInt32LE(RT_PRIORITY, 0);
      // pid 0: the calling thread, i.e. the main thread, which runs the timer and the reset.
      if (sched(0, SCHED_FIFO, param) === 0) return `SCHED_FIFO priority ${RT_PRIORITY}`;
      errors.push(`SCHED_FIFO refused (errno ${koffi.errno()})`);
    } catch (err) {
      errors.push(`SCHED_FIFO: ${(err as Error).message}`);
    }
  }
  if (mode === "rt" || mode === "nice") {
    try {
      setPriority(0, -10);
      return `nice -10${errors.length ? ` (${errors.join("; ")})` : ""}`;
    } catch (err) {
      errors.push(`nice -10 refused (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  return `normal priority${errors.length ? `: cannot raise it (${errors.join("; ")}); resets may come late on a loaded node` : ""}`;
}

const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} watchdog: ${msg}\n`);

/** The deadline on CLOCK_MONOTONIC (ms), null before the first pet. */
let deadline: number | null = null;
let disarmed = false;
let timer: NodeJS.Timeout | null = null;

/** `overdue`: the deadline this reset is for (null: a reset request). */
function reset(reason: string, overdue: number | null = null) {
  const firedAt = monoNow();
  // Kill first, then speak: the processes must stop as soon as possible.
  const procs = nodeProcessList(process.pid);
  for (const { pid } of procs) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  const killedAt = monoNow();
  // The cluster IP first (another node will take it), then every killed VM's address.
  const addrs: Array<{ cidr: string; dev: string }> = [];
  const { WATCHDOG_RELEASE_CIDR: cidr, WATCHDOG_RELEASE_DEV: dev } = process.env;
  if (cidr && dev) addrs.push({ cidr, dev });
  for (const p of procs) {
    const vm = vmAddressFromCmdline(p.cmdline);
    const a = vm && { cidr: `${vm.ip}/${vm.prefix}`, dev: vm.dev };
    if (a && !addrs.some((x) => x.cidr === a.cidr && x.dev === a.dev)) addrs.push(a);
  }
  let removed = "";
  if (addrs.length) {
    // One `ip` for all; -force goes on past addresses that are not held.
    const r = spawnSync("ip", ["-force", "-batch", "-"], { input: addrs.map((a) => `addr del ${a.cidr} dev ${a.dev}\n`).join(""), stdio: ["pipe", "ignore", "pipe"], encoding: "utf8" });
    const failed = (r.stderr ?? "").match(/Command failed -:\d+/g)?.length ?? 0;
    removed = `, removed the addresses ${addrs.map((a) => a.cidr).join(", ")}${failed ? ` (${failed} not held)` : ""} in ${(monoNow() - killedAt).toFixed(1)} ms`;
  }
  const late = overdue !== null ? `; done ${(monoNow() - overdue).toFixed(1)} ms after the deadline` : "";
  log(`resetting node: ${reason}; killed ${procs.length} processes in ${(killedAt - firedAt).toFixed(1)} ms${removed}${late}`);
  process.exit(0);
}

/** (Re-)arms the timer for the deadline; resets if it has passed. */
function arm() {
  if (timer) clearTimeout(timer);
  timer = null;
  if (disarmed || deadline === null) return;
  const left = deadline - monoNow();
  if (left <= 0) return reset(`deadline passed ${(-left).toFixed(1)} ms ago`, deadline);
  // A Node timer may run up to a millisecond early (its loop clock is cached): arm() checks again.
  timer = setTimeout(arm, Math.ceil(left));
}

/**
 * Arms once every line already read is applied: pets queued while this process started up (or
 * while it was descheduled) arrive together, and only the newest deadline counts, as it would have
 * had each been read on time. Judging the first stale one alone reset healthy nodes at start.
 */
let armPending = false;
function armSoon() {
  if (armPending) return;
  armPending = true;
  setImmediate(() => {
    armPending = false;
    arm();
  });
}

log(`supervisor pid ${process.pid} running at ${raisePriority(process.env.WATCHDOG_PRIORITY || "rt")}`);

createInterface({ input: process.stdin })
  .on("line", (line) => {
    let m: { mono?: number; deadline?: number; disarm?: boolean; reset?: string };
    try {
      m = JSON.parse(line) as typeof m;
    } catch {
      return; // ignore garbage
    }
    if (m.reset) reset(m.reset);
    if (m.disarm) disarmed = true;
    if (typeof m.mono === "number") deadline = m.mono;
    else if (typeof m.deadline === "number") deadline = monoNow() + (m.deadline - Date.now()); // an older agent's wall-clock deadline
    armSoon();
  })
  // The daemon went away: a clean stop disarmed us; otherwise the last deadline still holds (the
  // armed timer keeps this process alive until then).
  .on("close", () => disarmed && process.exit(0));

// How late the lab's watchdog (agent/src/effects/watchdog-supervisor.ts) resets a node, under CPU
// stress. Each sample pets a fresh supervisor (as the daemon spawns it) with a deadline 100-300 ms
// ahead, then lets it pass; the supervisor reports how long after the deadline its reset fired and
// finished (processes killed, addresses removed). Prints the distributions; asserts nothing.
//   flock /tmp/ha-lab.lock node --import tsx lab/bench/watchdog-lateness.ts [--samples 200] [--stress 4]
//     [--priority rt|nice|none] [--supervisor PATH] [--pool 4] [--max-seconds 600]
// --stress N: N busy-loop processes (nice 0, like the agent and the VMs) for the whole run, bounded
// by --max-seconds (`timeout`) and ended by pid. --priority: the supervisor's WATCHDOG_PRIORITY.
// --supervisor: another supervisor script to compare (e.g. an older version; it must print a line
// on stderr once it is listening). Every supervisor runs in a namespace of its own
// (wdbench-<pid>-<i>, with a bridge vmbr0 holding the "cluster IP" 10.254.0.1/24), since a reset
// kills every process of its network namespace; the namespaces are removed at the end.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readlinkSync } from "node:fs";
import { monoNow, supervisorArgs, SUPERVISOR } from "../../agent/src/effects/watchdog.ts";
import { REPO_ROOT } from "../src/index.ts";
import { argNumber, argText } from "./args.ts";

const samples = argNumber("samples", 200);
const stress = argNumber("stress", 4);
const priority = argText("priority", "rt");
const script = argText("supervisor", SUPERVISOR);
const poolSize = argNumber("pool", 4);
const maxSeconds = argNumber("max-seconds", 600);
const TSX = `file://${REPO_ROOT}/node_modules/tsx/dist/loader.mjs`;
const CIDR = "10.254.0.1/24";

const ip = (...args: string[]) => spawnSync("ip", args, { encoding: "utf8" });
const ownNet = readlinkSync("/proc/self/ns/net");

type Slot = { ns: string; child: ChildProcess; ready: Promise<void>; exited: Promise<void>; stderr: string };
const slots: Slot[] = [];
const namespaces: string[] = [];
const busy: ChildProcess[] = [];

function spawnSupervisor(ns: string): Slot {
  const env = { ...process.env, WATCHDOG_RELEASE_CIDR: CIDR, WATCHDOG_RELEASE_DEV: "vmbr0", WATCHDOG_PRIORITY: priority };
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, ...supervisorArgs(TSX, script)], { stdio: ["pipe", "ignore", "pipe"], env });
  child.stdin!.on("error", () => undefined);
  const slot: Slot = { ns, child, stderr: "", ready: null!, exited: null! };
  slot.ready = new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      slot.stderr += d.toString();
      // `ip netns exec` execs node in place: the pid is the supervisor's. Never let one run in our namespace.
      let net = "";
      try {
        net = readlinkSync(`/proc/${child.pid}/ns/net`);
      } catch {
        /* exited */
      }
      if (net === ownNet) {
        child.kill("SIGKILL");
        reject(new Error(`supervisor pid ${child.pid} runs in the bench's own network namespace: aborting`));
      } else resolve();
    });
    child.on("exit", () => reject(new Error(`supervisor in ${ns} exited before it was ready: ${slot.stderr}`)));
  });
  slot.ready.catch(() => undefined);
  slot.exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return slot;
}

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  const f = (x: number) => x.toFixed(1);
  return `n=${s.length} min ${f(s[0]!)}  median ${f(q(0.5))}  p90 ${f(q(0.9))}  p99 ${f(q(0.99))}  max ${f(s[s.length - 1]!)} ms`;
}

async function main() {
  for (let i = 0; i < poolSize; i++) {
    const ns = `wdbench-${process.pid}-${i}`;
    if (ip("netns", "add", ns).status !== 0) throw new Error(`ip netns add ${ns} failed`);
    namespaces.push(ns);
    ip("-n", ns, "link", "set", "lo", "up");
    ip("-n", ns, "link", "add", "vmbr0", "type", "bridge");
    ip("-n", ns, "link", "set", "vmbr0", "up");
  }
  for (let i = 0; i < stress; i++) {
    busy.push(spawn("timeout", ["-s", "KILL", String(maxSeconds), "sh", "-c", "while :; do :; done"], { stdio: "ignore" }));
  }
  for (const ns of namespaces) slots.push(spawnSupervisor(ns));
  const fired: number[] = [];
  const killed: number[] = [];
  const done: number[] = [];
  let lines = "";
  const started = Date.now();
  for (let s = 0; s < samples; s++) {
    if ((Date.now() - started) / 1000 > maxSeconds - 30) {
      console.log(`stopping after ${s} samples: --max-seconds ${maxSeconds} reached`);
      break;
    }
    const i = s % poolSize;
    const slot = slots[i]!;
    await slot.ready;
    ip("-n", slot.ns, "addr", "add", CIDR, "dev", "vmbr0");
    const ms = 100 + Math.random() * 200;
    slot.child.stdin!.write(JSON.stringify({ mono: monoNow() + ms, deadline: Date.now() + ms }) + "\n");
    const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms + 15_000).unref());
    if ((await Promise.race([slot.exited, timeout])) === "timeout") throw new Error(`no reset within 15 s of the deadline: ${slot.stderr}`);
    const f = /deadline passed ([\d.]+) ms ago/.exec(slot.stderr);
    const d = /done ([\d.]+) ms after the deadline/.exec(slot.stderr);
    const k = /killed \d+ processes in ([\d.]+) ms/.exec(slot.stderr);
    if (!f) throw new Error(`no lateness in the supervisor's output: ${slot.stderr}`);
    fired.push(Number(f[1]));
    if (k) killed.push(Number(f[1]) + Number(k[1]));
    if (d) done.push(Number(d[1]));
    if (s === 0) lines = slot.stderr.trim();
    if (ip("-n", slot.ns, "-o", "addr", "show", "dev", "vmbr0").stdout.includes(CIDR) && d) throw new Error(`the reset left ${CIDR} on vmbr0`);
    slots[i] = spawnSupervisor(slot.ns);
  }
  console.log(`supervisor ${script}, priority ${script === SUPERVISOR ? priority : "its own"}, ${stress} busy loops on ${spawnSync("nproc", { encoding: "utf8" }).stdout.trim()} cores; first sample's log:\n${lines}`);
  console.log(`reset fired after the deadline: ${stats(fired)}`);
  if (killed.length) console.log(`processes killed after the deadline: ${stats(killed)}`);
  if (done.length) console.log(`reset done (killed, addresses removed): ${stats(done)}`);
}

function cleanup() {
  for (const b of busy) if (b.pid && b.exitCode === null) b.kill("SIGTERM"); // `timeout` passes it on to its loop
  for (const s of slots) {
    s.child.stdin?.end(JSON.stringify({ disarm: true }) + "\n");
    if (s.child.pid && s.child.exitCode === null) s.child.kill("SIGKILL");
  }
  for (const ns of namespaces) ip("netns", "del", ns);
}

process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});
main().then(
  () => cleanup(),
  (err: Error) => {
    cleanup();
    console.error(err.message);
    process.exitCode = 1;
  },
);

// The lab's watchdog (watchdog-supervisor.ts), run as the daemon runs it, in a network namespace of
// its own (a reset kills every process of its namespace): it resets on time, kills the node's
// processes, and removes the addresses a reboot would lose (the cluster IP and the killed VMs'),
// and only those. Needs root (ip netns); run under `flock /tmp/ha-lab.lock`.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import { monoNow, supervisorArgs } from "../../src/effects/watchdog.ts";
import { REPO_ROOT } from "../../../lab/src/index.ts";

const TSX = `file://${REPO_ROOT}/node_modules/tsx/dist/loader.mjs`;
const NS = `wdtest-${process.pid}`;
const OWN = "10.254.1.2/24"; // the node's own address: a reboot keeps it (configuration)
const CLUSTER = "10.254.1.10/24";
const VM1 = "10.254.1.128/24";
const VM2 = "10.254.1.129/24";
const ownNet = readlinkSync("/proc/self/ns/net");
const started: ChildProcess[] = [];

const ip = (...args: string[]) => spawnSync("ip", args, { encoding: "utf8" });
const addresses = () => ip("-n", NS, "-o", "addr", "show", "dev", "vmbr0").stdout;
const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once("exit", () => r())));

function inNs(argv: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const c = spawn("ip", ["netns", "exec", NS, ...argv], { stdio: ["pipe", "ignore", "pipe"], env });
  c.stdin!.on("error", () => undefined);
  started.push(c);
  return c;
}

/** A stand-in VM process: what the supervisor sees of a VM is its command line. */
async function fakeVm(name: string, cidr: string) {
  const [addr, prefix] = cidr.split("/");
  const c = inNs([process.execPath, "-e", "setInterval(() => {}, 1e9)", "ha-vm", name, "--ip", addr!, "--port", "80", "--dev", "vmbr0", "--prefix", prefix!]);
  for (let i = 0; i < 100 && !readCmdline(c.pid!).includes("ha-vm"); i++) await new Promise((r) => setTimeout(r, 20));
  return c;
}
function readCmdline(pid: number) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
}

/** The supervisor as SupervisorWatchdog starts it; resolves once it runs (never in our own namespace). */
async function supervisor(): Promise<{ child: ChildProcess; log: () => string; send: (m: object) => void }> {
  const env = { ...process.env, WATCHDOG_RELEASE_CIDR: CLUSTER, WATCHDOG_RELEASE_DEV: "vmbr0" };
  const child = inNs([process.execPath, ...supervisorArgs(TSX)], env);
  let log = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      log += d.toString();
      if (log.includes("\n")) resolve();
    });
    child.once("exit", () => reject(new Error(`the supervisor exited: ${log}`)));
  });
  if (readlinkSync(`/proc/${child.pid}/ns/net`) === ownNet) {
    child.kill("SIGKILL");
    throw new Error("the supervisor runs in the test's own network namespace: refusing to go on");
  }
  return { child, log: () => log, send: (m) => child.stdin!.write(JSON.stringify(m) + "\n") };
}

before(() => {
  ip("netns", "del", NS);
  assert.equal(ip("netns", "add", NS).status, 0, "ip netns add (needs root)");
  ip("-n", NS, "link", "set", "lo", "up");
  assert.equal(ip("-n", NS, "link", "add", "vmbr0", "type", "bridge").status, 0);
  ip("-n", NS, "link", "set", "vmbr0", "up");
});
after(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  ip("netns", "del", NS);
});

describe("the lab's watchdog supervisor", () => {
  test("a passed deadline resets the node on time: its processes die, the cluster IP and the VMs' addresses go, its own address stays", async () => {
    for (const a of [OWN, CLUSTER, VM1, VM2]) assert.equal(ip("-n", NS, "addr", "add", a, "dev", "vmbr0").status, 0);
    const vms = [await fakeVm("web1", VM1), await fakeVm("web2", VM2)];
    const sup = await supervisor();
    // Its main thread runs at real-time priority when allowed (root here): /proc/PID/stat fields 40, 41.
    const stat = readFileSync(`/proc/${sup.child.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const [rtPrio, policy] = [Number(fields[37]), Number(fields[38])];
    assert.match(sup.log(), /supervisor pid \d+ running at SCHED_FIFO priority 10\n/);
    assert.deepEqual({ policy, rtPrio }, { policy: 1, rtPrio: 10 });

    const deadline = monoNow() + 300;
    sup.send({ mono: deadline, deadline: Date.now() + 300 });
    await Promise.race([exited(sup.child), new Promise((r) => setTimeout(r, 5000))]);
    const resetSeenAt = monoNow();
    assert.equal(sup.child.exitCode, 0, `the supervisor reset the node and exited: ${sup.log()}`);
    assert.ok(resetSeenAt >= deadline, "not before the deadline");
    const late = Number(/deadline passed ([\d.]+) ms ago/.exec(sup.log())?.[1]);
    assert.ok(late >= 0 && late < 50, `fired ${late} ms after the deadline: ${sup.log()}`);
    // (It also kills its own helper processes, e.g. tsx's esbuild service: the count is not 2.)
    assert.match(sup.log(), /killed \d+ processes in [\d.]+ ms, removed the addresses 10\.254\.1\.10\/24, 10\.254\.1\.128\/24, 10\.254\.1\.129\/24 in [\d.]+ ms; done [\d.]+ ms after the deadline\n/);
    await Promise.all(vms.map(exited));
    assert.deepEqual(vms.map((v) => v.signalCode), ["SIGKILL", "SIGKILL"]);
    const left = addresses();
    assert.ok(left.includes(OWN), left);
    for (const a of [CLUSTER, VM1, VM2]) assert.ok(!left.includes(a), `${a} is gone: ${left}`);
  });

  test("disarmed, it lets the deadline pass and exits when the daemon closes the pipe", async () => {
    assert.equal(ip("-n", NS, "addr", "add", CLUSTER, "dev", "vmbr0").status, 0);
    const vm = await fakeVm("web1", VM1);
    const sup = await supervisor();
    sup.send({ mono: monoNow() + 200 });
    sup.send({ disarm: true });
    sup.child.stdin!.end();
    await Promise.race([exited(sup.child), new Promise((r) => setTimeout(r, 5000))]);
    assert.equal(sup.child.exitCode, 0);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(vm.exitCode ?? vm.signalCode, null, "the VM still runs");
    assert.ok(addresses().includes(CLUSTER));
    vm.kill("SIGKILL");
    await exited(vm);
    ip("-n", NS, "addr", "del", CLUSTER, "dev", "vmbr0");
  });

  test("a reset request (Fence) resets at once; an older agent's wall-clock deadline still counts", async () => {
    const vm = await fakeVm("web1", VM1);
    const sup = await supervisor();
    sup.send({ deadline: Date.now() + 60_000 });
    sup.send({ reset: "fencing: test" });
    await Promise.race([exited(sup.child), new Promise((r) => setTimeout(r, 5000))]);
    assert.match(sup.log(), /resetting node: fencing: test; killed \d+ processes/);
    await exited(vm);

    const sup2 = await supervisor();
    const deadline = monoNow() + 200;
    sup2.send({ deadline: Date.now() + 200 }); // no `mono`: as an agent before it sends
    await Promise.race([exited(sup2.child), new Promise((r) => setTimeout(r, 5000))]);
    assert.ok(monoNow() >= deadline);
    assert.match(sup2.log(), /resetting node: deadline passed [\d.]+ ms ago; killed \d+ processes/);
  });
});

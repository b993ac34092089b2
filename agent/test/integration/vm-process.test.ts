// The process VM driver on a real 2-node lab: each node has its own network + mount namespace and
// sees the same shared storage at /run/ha-storage. The driver runs inside the nodes (via vmctl.ts),
// as the daemon would. Every test runs with both VM programs (native C and Node.js): they must
// behave the same.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Lab, REPO_ROOT } from "../../../lab/src/index.ts";

const VMCTL = join(REPO_ROOT, "agent/src/effects/vm/vmctl.ts");
const TSX = ["node", "--import", `file://${REPO_ROOT}/node_modules/tsx/dist/loader.mjs`];
const IP = "172.31.224.128";
const DISK = "/run/ha-storage/vms/web1.disk";
const WEB1 = { name: "web1", ramMb: 512, vcpus: 1, disk: { kind: "network", path: DISK }, ip: IP, ha: true };

let lab: Lab;
let program: "native" | "node";

type Reply = { ok: boolean; result?: unknown; error?: string };
async function vmctl(node: number, args: string[], opts: object = {}): Promise<Reply> {
  const r = await lab.exec(node, [...TSX, VMCTL, "--opts", JSON.stringify({ program, ...opts }), ...args], { timeoutMs: 60_000 });
  const last = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(last) as Reply;
  } catch {
    throw new Error(`vmctl ${args.join(" ")} on n${node}: no JSON reply (exit ${r.code}): ${r.stdout} ${r.stderr}`);
  }
}
async function ok(node: number, args: string[], opts: object = {}): Promise<unknown> {
  const r = await vmctl(node, args, opts);
  assert.ok(r.ok, `vmctl ${args.join(" ")} on n${node} failed: ${r.error}`);
  return r.result;
}

/** GET http://IP/ from inside a node (the root namespace has no route to the lab). */
async function probe(node: number): Promise<{ vm: string; host: string; pid: number; startedAt: string; diskOk: boolean } | null> {
  const js = `fetch("http://${IP}/",{signal:AbortSignal.timeout(2000)}).then(r=>r.text()).then(t=>console.log(t),()=>console.log("null"))`;
  const r = await lab.exec(node, ["node", "-e", js], { timeoutMs: 10_000 });
  return JSON.parse(r.stdout.trim() || "null");
}

async function hasAddress(node: number, ip = IP): Promise<boolean> {
  const r = await lab.exec(node, ["ip", "-o", "addr", "show", "dev", "vmbr0"]);
  return r.stdout.includes(`${ip}/24`);
}

const diskText = () => readFileSync(join(lab.storageDir(), "vms/web1.disk"), "utf8");

before(async () => {
  lab = await Lab.up({ name: "vm5", nodes: 2 });
});
after(async () => {
  await lab?.down();
});

for (const kind of ["native", "node"] as const) {
  describe(`${kind} VM program`, () => {
    before(async () => {
      program = kind;
      for (const node of [1, 2]) await ok(node, ["undefine", "web1"]); // left defined by the other program's run
      rmSync(join(lab.storageDir(), "vms/web1.disk"), { force: true });
    });

    test("define, start, probe, state and list on n1", async () => {
      await ok(1, ["define", JSON.stringify(WEB1)]);
      assert.equal(await ok(1, ["state", "web1"]), "stopped");
      await ok(1, ["start", "web1"]);
      assert.equal(await ok(1, ["state", "web1"]), "running");
      assert.deepEqual(await ok(1, ["list"]), [{ name: "web1", state: "running" }]);
      assert.equal(await ok(2, ["state", "web1"]), "absent", "n2 has its own runtime dir and definitions");
      // The lab recognises the process by "ha-vm web1" in its command line.
      const procs = lab.processes(1, "vm");
      assert.equal(procs.length, 1);
      assert.match(procs[0]!.cmd, /ha-vm web1/);
      // ... and it is the program asked for.
      assert.match(procs[0]!.cmd, kind === "native" ? /\/process-vm-[0-9a-f]{12} ha-vm/ : /\/process-vm\.mjs ha-vm/);
      assert.ok(await hasAddress(1));
      // Probed from the other node, over the lab bridge.
      const answer = await probe(2);
      assert.equal(answer?.vm, "web1");
      assert.equal(answer?.host, "n1");
      assert.equal(answer?.pid, procs[0]!.pid);
      // Its disk is on the shared storage, one line per second with the writer's hostname.
      await new Promise((r) => setTimeout(r, 1200));
      assert.match(diskText(), /n1 pid=\d+ boot\n.*n1 pid=\d+ tick\n/);
      // Starting again where it runs is a no-op.
      await ok(1, ["start", "web1"]);
      assert.equal(lab.processes(1, "vm").length, 1);
    });

    test("a second start on another node (other mount namespace, same disk) fails on the disk lock", async () => {
      await ok(2, ["define", JSON.stringify(WEB1)]);
      const r = await vmctl(2, ["start", "web1"]);
      assert.equal(r.ok, false);
      assert.match(r.error!, /^vm web1: start failed: disk \/run\/ha-storage\/vms\/web1\.disk is in use by a running VM elsewhere \(last write: .* n1 pid=\d+/);
      // It never took the address (no gratuitous ARP stole the traffic) and left no process behind.
      assert.equal(await hasAddress(2), false);
      assert.equal(lab.processes(2, "vm").length, 0);
      assert.equal(await ok(2, ["state", "web1"]), "stopped");
      assert.equal((await probe(2))?.host, "n1", "the running VM still answers");
    });

    test("graceful stop: the VM shuts down, drops its address, and the disk lock goes with it", async () => {
      await ok(1, ["stop", "web1", "--timeout", "5000"]);
      assert.equal(await ok(1, ["state", "web1"]), "stopped");
      assert.equal(lab.processes(1, "vm").length, 0);
      assert.equal(await hasAddress(1), false);
      assert.equal(await probe(2), null);
      assert.match(diskText(), /n1 pid=\d+ shutdown\n$/);
      // Now n2 may run it.
      await ok(2, ["start", "web1"]);
      assert.equal((await probe(1))?.host, "n2");
      await ok(2, ["stop", "web1", "--timeout", "5000"]);
      assert.equal(await hasAddress(2), false);
    });

    test("a VM that ignores SIGTERM is killed after the timeout and its address removed", async () => {
      await ok(1, ["start", "web1"]);
      const [vm] = lab.processes(1, "vm");
      process.kill(vm!.pid, "SIGSTOP"); // a hung VM: the SIGTERM stays pending
      const t0 = Date.now();
      await ok(1, ["stop", "web1", "--timeout", "1500"]);
      const took = Date.now() - t0;
      assert.ok(took >= 1500, `stop returned after ${took} ms, before the 1500 ms grace period`);
      assert.ok(took < 10_000, `stop took ${took} ms`);
      assert.equal(lab.processes(1, "vm").length, 0);
      assert.equal(await hasAddress(1), false);
      assert.doesNotMatch(diskText().trim().split("\n").pop()!, /shutdown/, "it was killed, not shut down");
    });

    test("force stop kills at once", async () => {
      await ok(1, ["start", "web1"]);
      const [vm] = lab.processes(1, "vm");
      process.kill(vm!.pid, "SIGSTOP");
      const t0 = Date.now();
      await ok(1, ["stop", "web1", "--timeout", "60000", "--force"]);
      assert.ok(Date.now() - t0 < 10_000);
      assert.equal(lab.processes(1, "vm").length, 0);
      assert.equal(await hasAddress(1), false);
    });

    test("a killed VM (node-side crash) reads as stopped, releases its disk, and stop cleans its address", async () => {
      await ok(1, ["start", "web1"]);
      lab.kill(1, "vm");
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await ok(1, ["state", "web1"]), "stopped");
      assert.ok(await hasAddress(1), "nobody removed the address yet");
      await ok(1, ["stop", "web1", "--timeout", "1000"]);
      assert.equal(await hasAddress(1), false);
      await ok(2, ["start", "web1"]); // the kernel dropped the dead process's lock
      assert.equal((await probe(1))?.host, "n2");
      await ok(2, ["stop", "web1", "--timeout", "5000"]);
    });

    test("storage cut: a running VM's disk writes fail; a start where storage is cut fails clearly", async () => {
      await ok(1, ["start", "web1"]);
      await lab.storageCut(1);
      try {
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal((await probe(2))?.diskOk, false, "the VM on n1 can no longer write its disk");
        await ok(1, ["stop", "web1", "--timeout", "5000"]);
      } finally {
        await lab.storageHeal(1);
      }
      await lab.storageCut(2);
      try {
        const r = await vmctl(2, ["start", "web1"]);
        assert.match(r.error ?? "", /^vm web1: start failed: cannot open disk \/run\/ha-storage\/vms\/web1\.disk: EROFS/);
        assert.equal(await hasAddress(2), false);
      } finally {
        await lab.storageHeal(2);
      }
    });

    test("undefine refuses a running VM; resources come from the node or the config", async () => {
      await ok(1, ["start", "web1"]);
      const r = await vmctl(1, ["undefine", "web1"]);
      assert.equal(r.error, "vm web1: undefine failed: it is running: stop it first");
      await ok(1, ["stop", "web1", "--timeout", "5000"]);
      await ok(1, ["undefine", "web1"]);
      assert.equal(await ok(1, ["state", "web1"]), "absent");
      assert.deepEqual(await ok(1, ["list"]), []);
      const start = await vmctl(1, ["start", "web1"]);
      assert.equal(start.error, "vm web1: start failed: not defined on this node");

      const fake = (await ok(1, ["resources"], { capacity: { ramMb: 4096, vcpus: 8 } })) as { ramMb: number; vcpus: number };
      assert.deepEqual(fake, { ramMb: 4096, vcpus: 8 });
      const real = (await ok(1, ["resources"])) as { ramMb: number; vcpus: number };
      const memKb = Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))![1]);
      assert.equal(real.ramMb, Math.floor(memKb / 1024));
      assert.ok(real.vcpus >= 1);
    });

    test("a new driver removes the addresses that VMs killed with their driver left behind; a running VM's stays", async () => {
      const IP2 = "172.31.224.129";
      const WEB2 = { ...WEB1, name: "web2", ip: IP2, disk: { kind: "network", path: "/run/ha-storage/vms/web2.disk" } };
      await ok(1, ["define", JSON.stringify(WEB1)]);
      await ok(1, ["define", JSON.stringify(WEB2)]);
      await ok(1, ["start", "web1"]);
      await ok(1, ["start", "web2"]);
      try {
        // A reset or crash as the lab does it: the VM and its driver die, the interface keeps the address.
        const web1 = lab.processes(1, "vm").find((p) => /ha-vm web1 /.test(p.cmd));
        process.kill(web1!.pid, "SIGKILL");
        for (let i = 0; i < 50 && lab.processes(1, "vm").some((p) => p.pid === web1!.pid); i++) await new Promise((r) => setTimeout(r, 100));
        assert.equal(await ok(1, ["state", "web1"]), "stopped");
        assert.ok(await hasAddress(1, IP), "the killed VM left its address");
        // A new driver (each vmctl is one, as a restarted agent is): its first listing cleans up.
        const r = await lab.exec(1, [...TSX, VMCTL, "--opts", JSON.stringify({ program }), "list"], { timeoutMs: 60_000 });
        assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").pop()!), { ok: true, result: [{ name: "web1", state: "stopped" }, { name: "web2", state: "running" }] });
        assert.match(r.stderr, /removed the addresses of VMs that do not run here \(left by killed VMs\) from vmbr0: web1 172\.31\.224\.128\/24\n/);
        assert.equal(await hasAddress(1, IP), false, "the leftover address is gone");
        assert.ok(await hasAddress(1, IP2), "the running VM keeps its address");
        const js = `fetch("http://${IP2}/",{signal:AbortSignal.timeout(2000)}).then(r=>r.text()).then(t=>console.log(t),()=>console.log("null"))`;
        assert.equal(JSON.parse((await lab.exec(2, ["node", "-e", js], { timeoutMs: 10_000 })).stdout.trim() || "null")?.vm, "web2");
        // Nothing left to clean: the next driver says nothing.
        const again = await lab.exec(1, [...TSX, VMCTL, "--opts", JSON.stringify({ program }), "list"], { timeoutMs: 60_000 });
        assert.doesNotMatch(again.stderr, /removed/);
        assert.ok(await hasAddress(1, IP2));
      } finally {
        await ok(1, ["stop", "web2", "--timeout", "5000"]);
        await ok(1, ["stop", "web1", "--timeout", "5000"]);
        await ok(1, ["undefine", "web2"]);
        rmSync(join(lab.storageDir(), "vms/web2.disk"), { force: true });
      }
    });
  });
}

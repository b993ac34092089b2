// Issue 5 on a real lab: HA VMs (process driver) come back on surviving nodes after a crash, a
// partition and a storage cut; non-HA VMs stay down; no VM ever runs on two nodes at once.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, VmChecker, sleep, waitUntil } from "../../src/index.ts";

const until = <T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 60_000) =>
  waitUntil(what, fn, timeoutMs, 250);

async function define(lab: Lab, name: string, o: { ha: boolean; ramMb?: number; ip: string }) {
  const r = await lab.exec(1, ["./corolistener", "vm", "define", name, "--ram", String(o.ramMb ?? 256), "--disk", `network:/run/ha-storage/vms/${name}.disk`, "--ip", o.ip, ...(o.ha ? ["--ha"] : []), "-c", "/etc/corosync/corolistener.json"]);
  assert.equal(r.code, 0, r.stderr);
}

const running = (where: Map<string, number[]>) => [...where.keys()].sort();
const on = (where: Map<string, number[]>, node: number) => [...where].filter(([, ns]) => ns.includes(node)).map(([vm]) => vm).sort();

describe("VM HA on a 4-node lab", { timeout: 400_000 }, () => {
  let lab: Lab;
  let checker: VmChecker;
  const ha = Array.from({ length: 8 }, (_, i) => `ha${i + 1}`);
  const plain = Array.from({ length: 4 }, (_, i) => `plain${i + 1}`);
  before(async () => {
    lab = await Lab.up({ name: "v4", nodes: 4, agents: true });
    checker = new VmChecker(lab).start();
    let ip = 130;
    for (const name of ha) await define(lab, name, { ha: true, ip: `172.31.224.${ip++}` });
    for (const name of plain) await define(lab, name, { ha: false, ip: `172.31.224.${ip++}` });
    await until("all 12 VMs running", () => checker.where().size === 12);
  });
  after(async () => {
    const violations = checker?.stop() ?? [];
    await lab?.down();
    assert.deepEqual(violations, [], "a VM ran on two nodes at once");
  });

  it("spreads VMs over the nodes (fewest VMs first)", () => {
    const counts = lab.topo.nodes.map((n) => on(checker.where(), n.id).length);
    assert.deepEqual(counts, [3, 3, 3, 3]);
  });

  it("crash a node: its HA VMs run again elsewhere, its non-HA VMs stay down", async () => {
    const victim = 2;
    const lost = on(checker.where(), victim);
    const lostHa = lost.filter((v) => v.startsWith("ha"));
    await lab.crash(victim);
    const expected = [...ha, ...plain.filter((p) => !lost.includes(p))].sort();
    await until(`HA VMs of n${victim} (${lostHa}) back`, () => running(checker.where()).join() === expected.join(), 90_000);
    for (const vm of lostHa) assert.ok(!checker.where().get(vm)?.includes(victim));
    await sleep(3000);
    assert.deepEqual(running(checker.where()), expected, "non-HA VMs of the crashed node stay down");
    await lab.boot(victim);
    await lab.waitQuorate([1, 2, 3, 4], 60_000);
  });

  it("cut the shared storage of a node: it stops its VMs and they come up elsewhere", async () => {
    const victim = 3;
    const before = running(checker.where());
    const mine = on(checker.where(), victim);
    assert.ok(mine.length > 0, "the victim runs VMs");
    await lab.storageCut(victim);
    await until(`n${victim} stopped its VMs`, () => on(checker.where(), victim).length === 0, 60_000);
    const backElsewhere = before.filter((v) => !mine.includes(v) || v.startsWith("ha"));
    await until("its HA VMs back elsewhere", () => backElsewhere.every((v) => checker.where().has(v)), 90_000);
    await lab.storageHeal(victim);
  });

  it("not enough RAM anywhere: the VM stays down with the reason in the master's log; a VM that fits starts", async () => {
    // Each lab node offers 4096 MB and already runs three 256 MB VMs.
    await define(lab, "big1", { ha: true, ramMb: 3900, ip: "172.31.224.190" });
    await define(lab, "fits1", { ha: true, ramMb: 1024, ip: "172.31.224.191" });
    await until("fits1 running", () => checker.where().has("fits1"), 60_000);
    const log = (id: number) => readFileSync(join(lab.nodeDir(id), "log", "corolistener.log"), "utf8");
    await until("the reason big1 stays down", () => lab.topo.nodes.some((n) => /big1 stays down: needs 3900 MB, most free is \d+ MB/.test(log(n.id))), 30_000);
    assert.ok(!checker.where().has("big1"), "big1 does not run anywhere");
  });
});

/** Lines of a process VM's disk: "<ISO time> <host> pid=<n> boot|tick|shutdown". */
function diskWrites(lab: Lab, vm: string): Array<{ t: number; host: string }> {
  const text = readFileSync(join(lab.storageDir(), "vms", `${vm}.disk`), "utf8");
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" "))
    .map(([t, host]) => ({ t: Date.parse(t!), host: host! }));
}

describe("VM HA on a 5-node lab partitioned 2|3 with VMs on the minority", { timeout: 300_000 }, () => {
  let lab: Lab;
  let checker: VmChecker;
  const vms = Array.from({ length: 10 }, (_, i) => `p${i + 1}`);
  before(async () => {
    lab = await Lab.up({ name: "v5", nodes: 5, agents: true });
    checker = new VmChecker(lab).start();
    let ip = 150;
    for (const name of vms) await define(lab, name, { ha: true, ip: `172.31.224.${ip++}` });
    await until("all 10 VMs running", () => checker.where().size === 10);
  });
  after(async () => {
    const violations = checker?.stop() ?? [];
    await lab?.down();
    assert.deepEqual(violations, [], "a VM ran on two nodes at once");
  });

  it("the isolated minority stops its VMs before the majority starts them (disk timestamps from both sides)", async () => {
    const minority = [...on(checker.where(), 4), ...on(checker.where(), 5)];
    assert.ok(minority.length > 0, "VMs run on n4/n5");
    // Control network split 2|3, and the minority's data link down: it cannot reach the test IP,
    // so it is isolated (not merely excluded) and must fence its VMs.
    await lab.partition([[1, 2, 3], [4, 5]]);
    await lab.cut(4, { control: false, data: true });
    await lab.cut(5, { control: false, data: true });
    await until("every VM running on the majority", () => vms.every((vm) => (checker.where().get(vm) ?? []).every((n) => n <= 3) && checker.where().has(vm)), 120_000);
    for (const vm of minority) {
      const writes = diskWrites(lab, vm);
      const oldHost = writes[0]!.host;
      const lastOld = Math.max(...writes.filter((w) => w.host === oldHost).map((w) => w.t));
      const firstNew = Math.min(...writes.filter((w) => w.host !== oldHost).map((w) => w.t));
      assert.ok(["n4", "n5"].includes(oldHost), `${vm} first ran on the minority (${oldHost})`);
      assert.ok(lastOld < firstNew, `${vm}: last write on ${oldHost} at ${new Date(lastOld).toISOString()} is before the first write elsewhere at ${new Date(firstNew).toISOString()}`);
    }
    await lab.heal();
  });
});

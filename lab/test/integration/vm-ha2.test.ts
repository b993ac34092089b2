// Issue 5 on a real 4-node lab (`vmx`), the issue's own scenario: 20 HA VMs (and 3 non-HA ones) on
// the master, 10 HA VMs elsewhere; kill the master: every HA VM runs again on a surviving node, none
// on two nodes at once (VmChecker polls every node), non-HA VMs stay down, RAM limits respected.
// Then maintenance: `corolistener maintenance <id> on` drains a node (its VMs restart elsewhere one
// by one: the process driver has no live migration), and `corolistener admission` answers.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, VmChecker, masterOf, masterOfHealthyCluster, sleep, waitUntil } from "../../src/index.ts";

const AGENT_CONFIG = "/etc/corosync/corolistener.json";
/** What every lab node offers VMs (lab.ts agentConfig). */
const NODE_RAM_MB = 4096;

const until = <T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 60_000) =>
  waitUntil(what, fn, timeoutMs, 250);

const writeJson = (path: string, value: unknown) => {
  writeFileSync(`${path}.tmp`, JSON.stringify(value));
  renameSync(`${path}.tmp`, path);
};

type VmDef = { name: string; ramMb: number; ha: boolean; ip: string; owner?: number };

/**
 * Writes VM records (and, for `owner`, an ownership record with epoch 1) straight into the cluster
 * metadata on the lab's shared storage, in the format of agent/src/effects/cluster-metadata.ts:
 * much faster than 33 `corolistener vm define` runs, and the only way to pick initial owners.
 */
function defineVms(lab: Lab, vms: VmDef[]) {
  const dir = join(lab.storageDir(), "cluster");
  mkdirSync(join(dir, "vms"), { recursive: true });
  mkdirSync(join(dir, "owners"), { recursive: true });
  // Owners first: the master must never see such a VM without its owner and place it itself.
  for (const v of vms) if (v.owner !== undefined) writeJson(join(dir, "owners", `${v.name}.json`), { vm: v.name, node: v.owner, epoch: 1 });
  for (const v of vms) {
    writeJson(join(dir, "vms", `${v.name}.json`), {
      definition: { name: v.name, ramMb: v.ramMb, vcpus: 1, disk: { kind: "network", path: `/run/ha-storage/vms/${v.name}.disk` }, ip: v.ip, ha: v.ha },
      restartPriority: 0,
      desired: "running",
    });
  }
}

/** Whether node `id`'s agent runs with `target` in maintenance (the daemon's status file). */
async function inMaintenance(lab: Lab, id: number, target: number): Promise<boolean | null> {
  const r = await lab.exec(id, ["cat", "/run/corolistener/status.json"]);
  if (r.code !== 0) return null;
  const view = (JSON.parse(r.stdout) as { view: { nodes: Array<{ nodeid: number; maintenance?: boolean }> } }).view;
  return view.nodes.find((n) => n.nodeid === target)?.maintenance === true;
}

const on = (where: Map<string, number[]>, node: number) => [...where].filter(([, ns]) => ns.includes(node)).map(([vm]) => vm).sort();

describe("VM HA: kill the master with 20 HA VMs on it; maintenance drain", { timeout: 300_000 }, () => {
  let lab: Lab;
  let checker: VmChecker;
  let master = 0;
  const ramOf = new Map<string, number>();
  const onMasterHa = Array.from({ length: 20 }, (_, i) => `m${i + 1}`);
  const onMasterPlain = ["mp1", "mp2", "mp3"];
  const elsewhere = Array.from({ length: 10 }, (_, i) => `o${i + 1}`);

  /** RAM used per node by the VMs that run there now. */
  const ramUse = () => {
    const use = new Map<number, number>();
    for (const [vm, nodes] of checker.where()) for (const n of nodes) use.set(n, (use.get(n) ?? 0) + (ramOf.get(vm) ?? 0));
    return use;
  };

  before(async () => {
    // Shorter storage/fence timeouts keep the file quick; the relations settingsProblems() checks hold.
    lab = await Lab.up({ name: "vmx", nodes: 4, agents: true, ha: { storageTimeoutMs: 2000, fenceTimeoutMs: 3000 } });
    checker = new VmChecker(lab).start();
    master = await until("a master and every node a member", () => masterOfHealthyCluster(lab, 1), 90_000);
    let ip = 20;
    const defs: VmDef[] = [
      // 20 x 128 + 3 x 128 = 2944 MB on the master.
      ...onMasterHa.map((name) => ({ name, ramMb: 128, ha: true, ip: `172.31.224.${ip++}`, owner: master })),
      ...onMasterPlain.map((name) => ({ name, ramMb: 128, ha: false, ip: `172.31.224.${ip++}`, owner: master })),
      // Placed by the master on the three others (fewest VMs first): 3-4 x 600 MB each, so the
      // survivors of the master's death start from different free RAM.
      ...elsewhere.map((name) => ({ name, ramMb: 600, ha: true, ip: `172.31.224.${ip++}` })),
    ];
    for (const d of defs) ramOf.set(d.name, d.ramMb);
    defineVms(lab, defs);
    await until("all 33 VMs running", () => checker.where().size === 33, 120_000);
  });

  after(async () => {
    const violations = checker?.stop() ?? [];
    await lab?.down();
    assert.deepEqual(violations, [], "a VM ran on two nodes at once");
  });

  it("starts with the explicit owners: 23 VMs on the master, the 10 others spread over the rest", () => {
    const where = checker.where();
    assert.deepEqual(on(where, master), [...onMasterHa, ...onMasterPlain].sort());
    for (const n of lab.topo.nodes.filter((n) => n.id !== master)) {
      const mine = on(where, n.id);
      assert.ok(mine.length >= 3 && mine.length <= 4, `n${n.id} runs 3-4 of the 10 others: ${mine}`);
    }
  });

  it("kill the master: every HA VM runs again on a survivor, non-HA VMs stay down, RAM respected", async () => {
    const victim = master;
    const t0 = Date.now();
    await lab.crash(victim);
    const ha = [...onMasterHa, ...elsewhere].sort();
    await until("every HA VM running on a survivor", () => ha.every((vm) => (checker.where().get(vm) ?? []).some((n) => n !== victim)), 120_000);
    console.log(`# all ${onMasterHa.length} HA VMs of the killed master running again after ${Date.now() - t0} ms`);
    await sleep(3000); // would a non-HA VM come up late?
    const where = checker.where();
    for (const vm of onMasterPlain) assert.ok(!where.has(vm), `non-HA ${vm} stays down (runs on ${where.get(vm)})`);
    for (const vm of ha) assert.equal(where.get(vm)?.length, 1, `${vm} runs exactly once: ${where.get(vm)}`);
    for (const [node, mb] of ramUse()) assert.ok(mb <= NODE_RAM_MB, `n${node} uses ${mb} MB of VM RAM, more than its ${NODE_RAM_MB} MB`);
    assert.equal(on(where, victim).length, 0);

    master = await until("a new master", async () => {
      const m = await masterOf(lab, lab.topo.nodes.find((n) => n.id !== victim)!.id);
      return m !== null && m !== victim ? m : null;
    });
    await lab.boot(victim);
    await lab.waitQuorate([1, 2, 3, 4], 60_000);
    // The old master owns its non-HA VMs still: back in the cluster, it starts them again.
    await until("the non-HA VMs back on their node", () => onMasterPlain.every((vm) => checker.where().get(vm)?.[0] === victim), 60_000);
  });

  it("admission: `corolistener admission --json` answers for every node, exit code 0 ok / 2 warn", async () => {
    const r = await lab.exec(master, ["./corolistener", "admission", "--json", "-c", AGENT_CONFIG]);
    assert.ok(r.code === 0 || r.code === 2, `exit ${r.code}: ${r.stderr}`);
    const report = JSON.parse(r.stdout) as { ok: boolean; summary: string; nodes: Array<{ nodeid: number; ok: boolean; staysDown: unknown[] }> };
    assert.equal(r.code, report.ok ? 0 : 2, report.summary);
    assert.deepEqual(report.nodes.map((n) => n.nodeid), [1, 2, 3, 4]);
    console.log(`# admission: ${report.summary}`);
  });

  it("maintenance on: the node is drained one VM at a time, nothing lands on it; off: it takes VMs again", async () => {
    const where0 = checker.where();
    // The busiest node that is not the master (the master can be drained too; this keeps the panel still).
    const victim = lab.topo.nodes.map((n) => n.id).filter((id) => id !== master).sort((a, b) => on(where0, b).length - on(where0, a).length)[0]!;
    const drained = on(where0, victim);
    const running0 = [...where0.keys()].sort();
    assert.ok(drained.length > 0, `n${victim} runs VMs`);
    const other = lab.topo.nodes.find((n) => n.id !== victim)!.id;
    const r = await lab.exec(other, ["./corolistener", "maintenance", String(victim), "on", "-c", AGENT_CONFIG]);
    assert.equal(r.code, 0, r.stderr);
    let peakDown = 0;
    await until(
      `n${victim} drained (${drained.join(",")})`,
      () => {
        const w = checker.where();
        peakDown = Math.max(peakDown, running0.filter((vm) => !w.has(vm)).length);
        return on(w, victim).length === 0 && running0.every((vm) => w.get(vm)?.length === 1);
      },
      120_000,
    );
    // One by one: never more than one VM down at a time during the drain (polling may miss some).
    assert.ok(peakDown <= 1, `at most one VM down at a time during the drain, saw ${peakDown}`);
    for (const [node, mb] of ramUse()) assert.ok(mb <= NODE_RAM_MB, `n${node} uses ${mb} MB of VM RAM`);
    await sleep(3000);
    assert.equal(on(checker.where(), victim).length, 0, "nothing is placed on a node in maintenance");

    const off = await lab.exec(other, ["./corolistener", "maintenance", String(victim), "off", "-c", AGENT_CONFIG]);
    assert.equal(off.code, 0, off.stderr);
    await until(`the master sees n${victim} out of maintenance`, async () => (await inMaintenance(lab, master, victim)) === false, 30_000);
    // A new VM goes to the node with the fewest VMs: the one just out of maintenance.
    defineVms(lab, [{ name: "after1", ramMb: 64, ha: true, ip: "172.31.224.90" }]);
    ramOf.set("after1", 64);
    await until("after1 placed on the node back from maintenance", () => checker.where().get("after1")?.[0] === victim, 60_000);
  });
});

// VM recovery benchmark (prints numbers, asserts nothing): crash the node with the most HA VMs and
// measure until every one of its VMs answers its HTTP probe again on another node, with phases:
//   detection  crash -> a survivor's corosync shows the new membership
//   fencing    detection -> the master reassigns the first VM (waits until the crashed node is
//              proven fenced: heartbeat stale for storageTimeoutMs + fenceTimeoutMs)
//   start      reassignment -> the last VM answers
// Run: node --import tsx lab/bench/vm-recovery.ts [--vms 24] [--crashes 5] [--storage-ms 5000] [--fence-ms 5000]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, Probe, HTTP_WATCH, VmChecker, sleep } from "../src/index.ts";
import { argNumber as arg } from "./args.ts";

const vmCount = arg("vms", 24);
const crashes = arg("crashes", 5);
const ha = { storageTimeoutMs: arg("storage-ms", 5000), fenceTimeoutMs: arg("fence-ms", 5000) };

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const line = (name: string, xs: number[]) => `  ${name.padEnd(28)} median ${pct(xs, 0.5)} ms   p95 ${pct(xs, 0.95)} ms   max ${Math.max(...xs)} ms`;

async function until<T>(fn: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

async function main() {
  const lab = await Lab.up({ name: "vb", nodes: 4, agents: true, ha });
  const checker = new VmChecker(lab);
  const ipOf = (i: number) => `172.31.224.${130 + i}`;
  const names = Array.from({ length: vmCount }, (_, i) => `b${i + 1}`);
  const phases = { detection: [] as number[], fencing: [] as number[], start: [] as number[], total: [] as number[], perVm: [] as number[] };
  try {
    for (const [i, name] of names.entries()) {
      await lab.exec(1, ["./corolistener", "vm", "define", name, "--ram", "64", "--disk", `network:/run/ha-storage/vms/${name}.disk`, "--ip", ipOf(i), "--ha", "-c", "/etc/corosync/corolistener.json"]);
    }
    await until(() => checker.where().size === vmCount || undefined, 120_000, "all VMs running");
    for (let c = 0; c < crashes; c++) {
      const where = checker.where();
      const master = JSON.parse((await lab.exec(1, ["./corolistener", "-l", "--json"])).stdout).master as number;
      // The busiest node that is not the master (a master crash adds the panel failover on top).
      const victim = lab.topo.nodes.map((n) => n.id).filter((id) => id !== master).sort((a, b) => [...where.values()].filter((ns) => ns.includes(b)).length - [...where.values()].filter((ns) => ns.includes(a)).length)[0]!;
      const lost = [...where].filter(([, ns]) => ns.includes(victim)).map(([vm]) => vm);
      const observer = lab.topo.nodes.map((n) => n.id).find((id) => id !== victim && id !== master) ?? master;
      const members = new Probe(lab, observer, ["--no-group"]);
      const urls = lost.map((vm) => `http://${ipOf(names.indexOf(vm))}/`);
      const http = new Probe(lab, observer, [urls[0]!, "50", ...urls.slice(1)], HTTP_WATCH);
      await members.waitFor((l) => l.type === "quorum", 15_000);
      await until(() => urls.every((u) => http.lines.some((l) => l.url === u && String(l.state).startsWith("200"))) || undefined, 30_000, "probes up");
      const [m0, h0] = [members.lines.length, http.lines.length];
      const logFile = join(lab.nodeDir(master), "log", "corolistener.log");
      const logStart = readFileSync(logFile, "utf8").length;
      const t0 = Date.now();
      await lab.crash(victim);
      const q = await members.waitFor((l) => l.type === "quorum" && !(l as { members?: number[] }).members?.includes(victim), 30_000, m0);
      const answered = new Map<string, number>();
      await until(() => {
        for (const l of http.lines.slice(h0)) if (l.url && String(l.state).startsWith("200") && !answered.has(String(l.url))) answered.set(String(l.url), l.t);
        return answered.size === urls.length || undefined;
      }, 120_000, "every VM answering again");
      const assigned = readFileSync(logFile, "utf8")
        .slice(logStart)
        .split("\n")
        .filter((l) => lost.some((vm) => l.includes(`"${vm} now owned by`)))
        .map((l) => (JSON.parse(l) as { time: number }).time)[0];
      const last = Math.max(...answered.values());
      phases.detection.push(q.t - t0);
      if (assigned) {
        phases.fencing.push(assigned - q.t);
        phases.start.push(last - assigned);
      }
      phases.total.push(last - t0);
      phases.perVm.push(...[...answered.values()].map((t) => t - t0));
      console.log(`crash ${c + 1}: n${victim} with ${lost.length} VMs, all answering again after ${last - t0} ms`);
      members.stop();
      http.stop();
      await lab.boot(victim);
      await lab.waitQuorate([1, 2, 3, 4], 60_000);
      await sleep(5000);
    }
  } finally {
    await lab.down();
  }
  console.log(`4-node lab, ${vmCount} HA VMs (process driver), storageTimeoutMs ${ha.storageTimeoutMs}, fenceTimeoutMs ${ha.fenceTimeoutMs}, ${crashes} crashes:`);
  console.log(line("crash -> all VMs answering", phases.total));
  console.log(line("  each VM answering", phases.perVm));
  console.log(line("  detection", phases.detection));
  if (phases.fencing.length) console.log(line("  fencing wait + placement", phases.fencing));
  if (phases.start.length) console.log(line("  start (reassigned -> last up)", phases.start));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

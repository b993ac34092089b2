// VM recovery benchmark with the issue's phases (prints numbers, asserts nothing). Each round puts
// 50 fresh HA VMs on the master (explicit owners), kills it, and measures until every VM answers its
// HTTP probe again on another node:
//   detection   kill -> a survivor's corosync shows the new membership
//   election    detection -> the new master is elected (its log)
//   fencing     election -> the first VM is reassigned: the dead node's heartbeat must be stale for
//               storageTimeoutMs + fenceTimeoutMs (its watchdog has reset it by then)
//   placement   first -> last of the 50 reassigned
//   start       last reassigned -> last VM answering (start handshake, process boot, at most
//               vm.maxParallelStarts starts at once per node), and per VM:
//     handshake   reassigned (master's log) -> StartVm issued on its new node (ownership write,
//                 start message round, intent written to the heartbeat)
//     boot        StartVm issued -> the VM answers its probe (waiting for a start slot, process
//                 start, disk lock, address, listen; CPU-bound when 3 lab nodes share 2 cores)
// Runs every configuration given (default: the defaults, then storageTimeoutMs 2000 / fenceTimeoutMs 3000).
//   node --import tsx lab/bench/vm-recovery-phases.ts [--kills 10] [--vms 50] [--configs default,fast] [--probe-ms 200]
//     [--vm-program native|node] [--keep-logs DIR]
// --vm-program: the lab VMs' program; "native" (C, default) starts in ~1 ms of CPU, "node" pays a
// Node.js start-up (~0.12 s of CPU) per VM, which on a 2-core lab dominates the start phase.
// A round whose set-up fails (e.g. the VMs did not all come up on the master) is reported and
// skipped; the bench goes on with the next round.
import { cpSync, readFileSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, Probe, HTTP_WATCH, VmChecker, masterOf, masterOfHealthyCluster, sleep, waitUntil } from "../src/index.ts";
import { argText as arg } from "./args.ts";

const kills = Number(arg("kills", "10"));
const vmCount = Number(arg("vms", "50"));
/** HTTP probe period per VM: 50 VMs at 50 ms would be 1,000 requests/s on a 2-core machine. */
const probeMs = Number(arg("probe-ms", "200"));
const CONFIGS: Record<string, Record<string, number>> = {
  default: {},
  fast: { storageTimeoutMs: 2000, fenceTimeoutMs: 3000 },
};
const configs = arg("configs", "default,fast").split(",");
for (const c of configs) if (!CONFIGS[c]) throw new Error(`unknown config ${c}: use ${Object.keys(CONFIGS).join(", ")}`);

const keepLogs = arg("keep-logs", "");
const vmProgram = arg("vm-program", "native") as "native" | "node";
if (vmProgram !== "native" && vmProgram !== "node") throw new Error(`--vm-program ${String(vmProgram)}: use native or node`);
const PHASES = ["detection", "election", "fencing", "placement", "start", "handshake", "boot", "total"] as const;
/** Per VM, not per kill. */
const PER_VM: ReadonlySet<Phase> = new Set(["handshake", "boot"]);
type Phase = (typeof PHASES)[number];

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const stats = (xs: number[]) => (xs.length === 0 ? "no samples" : `median ${pct(xs, 0.5)} ms   p95 ${pct(xs, 0.95)} ms   max ${Math.max(...xs)} ms   (n=${xs.length})`);

const writeJson = (path: string, value: unknown) => {
  writeFileSync(`${path}.tmp`, JSON.stringify(value));
  renameSync(`${path}.tmp`, path);
};

/** VM records (cluster-metadata.ts format) with an explicit owner, straight on the shared storage. */
function defineOn(lab: Lab, names: string[], ips: string[], owner: number) {
  const dir = join(lab.storageDir(), "cluster");
  mkdirSync(join(dir, "vms"), { recursive: true });
  mkdirSync(join(dir, "owners"), { recursive: true });
  for (const name of names) writeJson(join(dir, "owners", `${name}.json`), { vm: name, node: owner, epoch: 1 });
  names.forEach((name, i) =>
    writeJson(join(dir, "vms", `${name}.json`), {
      definition: { name, ramMb: 64, vcpus: 1, disk: { kind: "network", path: `/run/ha-storage/vms/${name}.disk` }, ip: ips[i], ha: true },
      restartPriority: 0,
      desired: "running",
    }),
  );
}

function setDesired(lab: Lab, names: string[], desired: "running" | "stopped") {
  for (const name of names) {
    const path = join(lab.storageDir(), "cluster", "vms", `${name}.json`);
    writeJson(path, { ...JSON.parse(readFileSync(path, "utf8")), desired });
  }
}

function forget(lab: Lab, names: string[]) {
  for (const name of names) {
    for (const sub of ["vms", "owners"]) rmSync(join(lab.storageDir(), "cluster", sub, `${name}.json`), { force: true });
    rmSync(join(lab.storageDir(), "vms", `${name}.disk`), { force: true });
  }
}

/** Times (ms since epoch) of log lines of node `id` written after `fromChar`. */
function logLines(lab: Lab, id: number, fromChar: number): Array<{ time: number; msg: string }> {
  return readFileSync(join(lab.nodeDir(id), "log", "corolistener.log"), "utf8")
    .slice(fromChar)
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      try {
        return JSON.parse(l) as { time: number; msg: string };
      } catch {
        return null;
      }
    })
    .filter((l): l is { time: number; msg: string } => l !== null && typeof l.msg === "string");
}
/** Copies every node's logs to <keepLogs>/<label>/nK (for reading a slow or failed round afterwards). */
function saveLogs(lab: Lab, label: string) {
  if (!keepLogs) return;
  for (const n of lab.topo.nodes) {
    try {
      cpSync(join(lab.nodeDir(n.id), "log"), join(keepLogs, label, `n${n.id}`), { recursive: true });
    } catch {
      /* a node without logs yet */
    }
  }
}

const logSize = (lab: Lab, id: number) => readFileSync(join(lab.nodeDir(id), "log", "corolistener.log"), "utf8").length;

async function runConfig(name: string): Promise<Record<Phase, number[]>> {
  const ha = CONFIGS[name]!;
  const out = Object.fromEntries(PHASES.map((p) => [p, [] as number[]])) as Record<Phase, number[]>;
  const lab = await Lab.up({ name: "vmx", nodes: 4, agents: true, ha, vmProgram });
  const checker = new VmChecker(lab);
  try {
    let previous: string[] = [];
    let failedSetups = 0;
    for (let round = 0; round < kills + failedSetups && failedSetups < kills; round++) {
      const master = await waitUntil("a master and every node a member", () => masterOfHealthyCluster(lab, 1), 90_000).catch(async (err: Error) => {
        saveLogs(lab, `${name}-r${round}-unhealthy`);
        throw new Error(`${err.message}; n1 says:\n${(await lab.exec(1, ["./corolistener", "-l"])).stdout}`);
      });
      const names = Array.from({ length: vmCount }, (_, i) => `r${round}v${i}`);
      // Two address pools, alternating, so a new VM never reuses the address of one just stopped.
      const ips = names.map((_, i) => `172.31.224.${(round % 2 === 0 ? 120 : 180) + i}`);
      defineOn(lab, names, ips, master);
      const setUp = await waitUntil(`${vmCount} VMs running on n${master}`, () => names.every((vm) => checker.where().get(vm)?.[0] === master), 120_000, 250).then(
        () => true,
        (err: Error) => {
          const where = checker.where();
          const byNode = lab.topo.nodes.map((n) => `n${n.id}: ${names.filter((vm) => where.get(vm)?.includes(n.id)).length}`);
          console.log(`[${name}] round ${round + 1}: set-up failed, skipped: ${err.message} (VMs per node: ${byNode.join(", ")}; not running: ${names.filter((vm) => !where.has(vm)).length})`);
          saveLogs(lab, `${name}-r${round}-setup`);
          return false;
        },
      );
      if (!setUp) {
        failedSetups += 1;
        setDesired(lab, names, "stopped");
        await waitUntil("the failed round's VMs stopped", () => names.every((vm) => !checker.where().has(vm)), 60_000, 250);
        forget(lab, names);
        await sleep(2000);
        continue;
      }
      const observer = lab.topo.nodes.map((n) => n.id).find((id) => id !== master)!;
      const members = new Probe(lab, observer, ["--no-group"]);
      const urls = ips.map((ip) => `http://${ip}/`);
      const http = new Probe(lab, observer, [urls[0]!, String(probeMs), ...urls.slice(1)], HTTP_WATCH);
      try {
        await members.waitFor((l) => l.type === "quorum", 15_000);
        await waitUntil("every probe answering", () => urls.every((u) => http.lines.some((l) => l.url === u && String(l.state).startsWith("200"))), 60_000, 100);
        const marks = new Map(lab.topo.nodes.map((n) => [n.id, logSize(lab, n.id)]));
        const m0 = members.lines.length;
        const t0 = Date.now();
        await lab.crash(master);
        const detected = await members.waitFor((l) => l.type === "quorum" && !(l as { members?: number[] }).members?.includes(master), 30_000, m0);
        const victimHost = `"host":"n${master}"`;
        const answered = new Map<string, number>();
        await waitUntil(
          "every VM answering again elsewhere",
          () => {
            for (const l of http.lines) {
              if (l.t > t0 && l.url && String(l.state).startsWith("200") && !String(l.state).includes(victimHost) && !answered.has(String(l.url))) answered.set(String(l.url), l.t);
            }
            return answered.size === urls.length;
          },
          180_000,
          100,
        );
        const last = Math.max(...answered.values());
        const newMaster = await waitUntil("the new master", async () => {
          const m = await masterOf(lab, observer);
          return m !== null && m !== master ? m : null;
        }, 30_000);
        const log = logLines(lab, newMaster, marks.get(newMaster)!);
        const elected = log.find((l) => l.time >= t0 && l.msg.startsWith("term ") && l.msg.includes(`: master n${newMaster}`))?.time;
        const assigned = log.filter((l) => l.time >= t0 && names.some((vm) => l.msg.startsWith(`${vm} now owned by`))).map((l) => l.time);
        out.detection.push(detected.t - t0);
        if (elected !== undefined) out.election.push(Math.max(0, elected - detected.t));
        if (assigned.length > 0) {
          out.fencing.push(Math.min(...assigned) - (elected ?? detected.t));
          out.placement.push(Math.max(...assigned) - Math.min(...assigned));
          out.start.push(last - Math.max(...assigned));
        }
        out.total.push(last - t0);
        // Per VM: reassigned (master) -> StartVm issued (its new node) -> answering (probe).
        const assignedAt = new Map<string, number>();
        for (const l of log) {
          const m = /^(\S+) now owned by n\d+/.exec(l.msg);
          if (m && l.time >= t0 && names.includes(m[1]!) && !assignedAt.has(m[1]!)) assignedAt.set(m[1]!, l.time);
        }
        const issuedAt = new Map<string, number>();
        for (const n of lab.topo.nodes.filter((n) => n.id !== master)) {
          for (const l of n.id === newMaster ? log : logLines(lab, n.id, marks.get(n.id)!)) {
            const m = /^StartVm: (\S+) owned by/.exec(l.msg);
            if (m && l.time >= t0 && names.includes(m[1]!)) issuedAt.set(m[1]!, Math.max(issuedAt.get(m[1]!) ?? 0, l.time));
          }
        }
        ips.forEach((ip, i) => {
          const vm = names[i]!;
          const [a, s0, up] = [assignedAt.get(vm), issuedAt.get(vm), answered.get(`http://${ip}/`)];
          if (a !== undefined && s0 !== undefined) out.handshake.push(s0 - a);
          if (s0 !== undefined && up !== undefined) out.boot.push(up - s0);
        });
        saveLogs(lab, `${name}-r${round}`);
        console.log(`[${name}] kill ${round + 1}/${kills}: master n${master} with ${vmCount} VMs, all answering again after ${last - t0} ms (new master n${newMaster})`);
      } finally {
        members.stop();
        http.stop();
      }
      await lab.boot(master);
      await lab.waitQuorate([1, 2, 3, 4], 60_000);
      // The previous round's VMs make room for the next round's.
      if (previous.length) forget(lab, previous);
      setDesired(lab, names, "stopped");
      await waitUntil("this round's VMs stopped", () => names.every((vm) => !checker.where().has(vm)), 60_000, 250);
      previous = names;
      await sleep(2000);
    }
  } finally {
    await lab.down();
  }
  return out;
}

async function main() {
  const results: Array<[string, Record<Phase, number[]>]> = [];
  for (const c of configs) results.push([c, await runConfig(c)]);
  for (const [c, r] of results) {
    const ha = CONFIGS[c]!;
    console.log(`\n4-node lab, master killed with ${vmCount} HA VMs (process driver, ${vmProgram} VM program, probed every ${probeMs} ms), ${kills} kills, ${Object.keys(ha).length ? Object.entries(ha).map(([k, v]) => `${k} ${v}`).join(", ") : "default settings (storageTimeoutMs 5000, fenceTimeoutMs 5000)"}:`);
    console.log(`  ${"kill -> every VM answering".padEnd(28)} ${stats(r.total)}`);
    for (const p of PHASES.filter((p) => p !== "total")) console.log(`    ${(PER_VM.has(p) ? `${p} (per VM)` : p).padEnd(26)} ${stats(r[p])}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

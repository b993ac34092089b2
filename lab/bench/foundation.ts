// Benchmark for the foundation (prints numbers, asserts nothing):
//  - `lab up` time for 3 and 16 nodes
//  - cut -> the cut node sees quorum lost, and -> the others see the new membership (20 tries)
//  - agent RSS and idle CPU over 60 s
// Run: node --import tsx lab/bench/foundation.ts [--tries 20] [--idle 60]
import { readFileSync } from "node:fs";
import { Lab, Probe, sleep } from "../src/index.ts";
import { argNumber as arg } from "./args.ts";

const tries = arg("tries", 20);
const idleSeconds = arg("idle", 60);

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `median ${q(0.5)} ms, p95 ${q(0.95)} ms, max ${s[s.length - 1]} ms, min ${s[0]} ms (n=${s.length})`;
};

type Quorum = { type: string; t: number; quorate?: boolean; members?: number[] };
const isQuorum = (pred: (l: Quorum) => boolean) => (l: { type: string }) => l.type === "quorum" && pred(l as Quorum);

async function upTime(nodes: number) {
  const t0 = Date.now();
  const lab = await Lab.up({ name: "bench", nodes, agents: false });
  const ms = Date.now() - t0;
  await lab.down();
  return ms;
}

async function main() {
  console.log(`lab up (corosync started, every node quorate with all members):`);
  for (const n of [3, 16]) console.log(`  ${n} nodes: ${await upTime(n)} ms`);

  const lab = await Lab.up({ name: "bench", nodes: 3, agents: true });
  try {
    const cutNode = new Probe(lab, 3, ["--no-group"]);
    const other = new Probe(lab, 1, ["--no-group"]);
    await cutNode.waitFor(isQuorum((l) => l.quorate === true), 15_000);
    await other.waitFor(isQuorum((l) => l.quorate === true), 15_000);
    const lost: number[] = [];
    const seen: number[] = [];
    for (let i = 0; i < tries; i++) {
      const [m3, m1] = [cutNode.lines.length, other.lines.length];
      const t0 = Date.now();
      await lab.cut(3);
      const a = await cutNode.waitFor(isQuorum((l) => l.quorate === false), 30_000, m3);
      const b = await other.waitFor(isQuorum((l) => l.members?.join() === "1,2"), 30_000, m1);
      lost.push((a as Quorum).t - t0);
      seen.push((b as Quorum).t - t0);
      const [h3, h1] = [cutNode.lines.length, other.lines.length];
      await lab.heal();
      await cutNode.waitFor(isQuorum((l) => l.members?.length === 3), 30_000, h3);
      await other.waitFor(isQuorum((l) => l.members?.length === 3), 30_000, h1);
      await sleep(500);
    }
    cutNode.stop();
    other.stop();
    console.log(`corosync token 1000 ms, token_coefficient 0, consensus default (1200 ms):`);
    console.log(`  cut -> cut node sees quorum lost:      ${stats(lost)}`);
    console.log(`  cut -> others see the new membership:  ${stats(seen)}`);

    const agent = lab.processes(1, "agent")[0];
    if (!agent) throw new Error("no agent on n1");
    const cpu = () => {
      const f = readFileSync(`/proc/${agent.pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
      return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in ms at 100 Hz
    };
    const rss = () => /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.pid}/status`, "utf8"))?.[1];
    const c0 = cpu();
    await sleep(idleSeconds * 1000);
    const used = cpu() - c0;
    console.log(`agent on n1 (pid ${agent.pid}) over ${idleSeconds} s idle: CPU ${used} ms (${((used / (idleSeconds * 1000)) * 100).toFixed(3)}%), RSS ${rss()} kB`);
  } finally {
    await lab.down();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// Failover benchmark (prints numbers, asserts nothing). For each lab size, crashes the current master
// N times (every process killed, links down, as a power cut) and measures from the crash to:
//   (a) a surviving node's corosync reporting the new membership,
//   (b) the cluster IP being up on the new master,
//   (c) the panel answering HTTP 200 through the cluster IP (polled every 50 ms from a surviving node).
// Run: node --import tsx lab/bench/failover.ts [--kills 30] [--sizes 3,7]
import { execFile } from "node:child_process";
import { Lab, Probe, HTTP_WATCH, sleep } from "../src/index.ts";
import { argText as arg } from "./args.ts";
import { DEFAULT_SETTINGS } from "../../agent/src/core/types.ts";
import { transitionLeaseMs } from "../../agent/src/core/lease.ts";

const kills = Number(arg("kills", "30"));
const sizes = arg("sizes", "3,7").split(",").map(Number);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};
const line = (name: string, xs: number[]) =>
  `  ${name.padEnd(34)} median ${pct(xs, 0.5)} ms   p95 ${pct(xs, 0.95)} ms   max ${Math.max(...xs)} ms   min ${Math.min(...xs)} ms`;

const holder = (lab: Lab) =>
  Promise.all(
    lab.topo.nodes.map(
      (n) => new Promise<boolean>((r) => execFile("ip", ["-n", n.ns, "-o", "-4", "addr", "show", "dev", "vmbr0"], (e, out) => r(!e && out.includes(` ${lab.topo.clusterIp}/`)))),
    ),
  ).then((held) => lab.topo.nodes.filter((_, i) => held[i]).map((n) => n.id));

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(20);
  }
  throw new Error(`timed out: ${what}`);
}

async function bench(size: number) {
  const lab = await Lab.up({ name: "fb", nodes: size, agents: true });
  const a: number[] = [];
  const b: number[] = [];
  const c: number[] = [];
  try {
    let master = await until(async () => (await holder(lab))[0], 30_000, "first master");
    for (let i = 0; i < kills; i++) {
      // Watch from the surviving node with the highest id that is not the master.
      const observer = lab.topo.nodes.map((n) => n.id).filter((id) => id !== master).pop()!;
      const members = new Probe(lab, observer, ["--no-group"]);
      const http = new Probe(lab, observer, [`http://${lab.topo.clusterIp}:1500/api/health`, "50"], HTTP_WATCH);
      await members.waitFor((l) => l.type === "quorum" && (l as { quorate?: boolean }).quorate === true, 15_000);
      await http.waitFor((l) => l.type === "http" && String(l.state).startsWith("200"), 15_000);
      const [m0, h0] = [members.lines.length, http.lines.length];
      const t0 = Date.now();
      await lab.crash(master);
      const q = await members.waitFor((l) => l.type === "quorum" && !(l as { members?: number[] }).members?.includes(master), 30_000, m0);
      const newMaster = await until(async () => (await holder(lab)).find((id) => id !== master), 30_000, "new IP holder");
      const tb = Date.now();
      const ok = await http.waitFor((l) => l.type === "http" && String(l.state).startsWith("200") && !String(l.state).includes(`"node":"n${master}"`), 30_000, h0);
      a.push(q.t - t0);
      b.push(tb - t0);
      c.push(ok.t - t0);
      members.stop();
      http.stop();
      await lab.boot(master);
      await lab.waitQuorate(lab.topo.nodes.map((n) => n.id), 60_000);
      await sleep(3000); // let the rebooted node's agent join before the next crash
      master = newMaster;
    }
  } finally {
    await lab.down();
  }
  return { a, b, c };
}

async function main() {
  // The agents derive their lease from corosync's timing (lease.ts); the lab runs token 1000, consensus 1200.
  const s = DEFAULT_SETTINGS;
  const lease = transitionLeaseMs({ tokenMs: 1000, consensusMs: 1200 }, s.leaseRenewMs);
  console.log(`corosync: knet, token 1000 ms, token_coefficient 0, consensus 1200 ms (default 1.2 x token); agent lease ${lease} ms (token + consensus + renew ${s.leaseRenewMs} + slack), release budget ${s.releaseBudgetMs} ms, margin ${s.leaseMarginMs} ms: a new master waits ${lease + s.releaseBudgetMs + s.leaseMarginMs} ms after the last renewal it saw`);
  for (const size of sizes) {
    const r = await bench(size);
    console.log(`${size}-node lab, ${r.a.length} master crashes:`);
    console.log(line("(a) crash -> new membership", r.a));
    console.log(line("(b) crash -> cluster IP on new master", r.b));
    console.log(line("(c) crash -> panel HTTP 200", r.c));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// Watches every node's interfaces throughout a test and records any moment when more than one node
// holds the cluster IP (split brain) — the invariant the HA tests check.
import { execFile } from "node:child_process";
import type { Lab } from "./lab.ts";

export type IpSample = { t: number; holders: number[] };

function holdsIp(ns: string, ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile("ip", ["-n", ns, "-o", "-4", "addr", "show"], { timeout: 2000 }, (err, stdout) => {
      resolve(!err && stdout.includes(` ${ip}/`));
    });
  });
}

export class ClusterIpChecker {
  readonly samples: IpSample[] = [];
  readonly violations: IpSample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly lab: Lab, private readonly intervalMs = 50) {}

  start() {
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    return this;
  }

  private async sample() {
    if (this.busy) return;
    this.busy = true;
    try {
      const { nodes, clusterIp } = this.lab.topo;
      const held = await Promise.all(nodes.map((n) => holdsIp(n.ns, clusterIp)));
      const s = { t: Date.now(), holders: nodes.filter((_, i) => held[i]).map((n) => n.id) };
      this.samples.push(s);
      if (s.holders.length > 1) this.violations.push(s);
    } finally {
      this.busy = false;
    }
  }

  /** The current holder(s), sampled now. */
  async holders(): Promise<number[]> {
    const { nodes, clusterIp } = this.lab.topo;
    const held = await Promise.all(nodes.map((n) => holdsIp(n.ns, clusterIp)));
    return nodes.filter((_, i) => held[i]).map((n) => n.id);
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return { samples: this.samples.length, violations: this.violations };
  }
}

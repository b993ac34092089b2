// Samples every node's VM processes throughout a test and records any moment when one VM runs on
// two nodes at once (the invariant VM HA must never break).
import type { Lab } from "./lab.ts";

export type VmSample = { t: number; where: Map<string, number[]> };

export class VmChecker {
  readonly violations: Array<{ t: number; vm: string; nodes: number[] }> = [];
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly lab: Lab, private readonly intervalMs = 100) {}

  /** VM name -> nodes where a process for it runs now. */
  where(): Map<string, number[]> {
    const where = new Map<string, number[]>();
    for (const n of this.lab.topo.nodes) {
      for (const p of this.lab.processes(n.id, "vm")) {
        const name = /ha-vm (\S+)/.exec(p.cmd)?.[1];
        // A VM being started can briefly show two processes on one node: count nodes, not processes.
        if (name && !where.get(name)?.includes(n.id)) where.set(name, [...(where.get(name) ?? []), n.id]);
      }
    }
    return where;
  }

  start() {
    this.timer = setInterval(() => {
      for (const [vm, nodes] of this.where()) if (nodes.length > 1) this.violations.push({ t: Date.now(), vm, nodes });
    }, this.intervalMs);
    return this;
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.violations;
  }
}

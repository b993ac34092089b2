// Checker: never a VM on two nodes at once. Groups lab/src/vm-checker.ts's violation samples into
// intervals per VM (samples less than `gapMs` apart belong together).
export type DoubleVm = { vm: string; from: number; to: number; samples: number; nodes: number[] };

export function doubleVmIntervals(violations: Array<{ t: number; vm: string; nodes: number[] }>, gapMs = 1000): DoubleVm[] {
  const out: DoubleVm[] = [];
  const open = new Map<string, DoubleVm>();
  for (const v of [...violations].sort((a, b) => a.t - b.t)) {
    const cur = open.get(v.vm);
    if (cur && v.t - cur.to <= gapMs) {
      cur.to = v.t;
      cur.samples++;
      cur.nodes = [...new Set([...cur.nodes, ...v.nodes])].sort((a, b) => a - b);
    } else {
      const d = { vm: v.vm, from: v.t, to: v.t, samples: 1, nodes: [...v.nodes].sort((a, b) => a - b) };
      open.set(v.vm, d);
      out.push(d);
    }
  }
  return out;
}

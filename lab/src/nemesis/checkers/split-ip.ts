// Checker: never two cluster-IP holders at once. Turns the samples of lab/src/ip-checker.ts into
// intervals (consecutive samples with more than one holder).
import type { IpSample } from "../../ip-checker.ts";

export type SplitIp = { from: number; to: number; samples: number; holders: number[] };

export function splitIpIntervals(samples: IpSample[]): SplitIp[] {
  const out: SplitIp[] = [];
  let open: SplitIp | null = null;
  for (const s of samples) {
    if (s.holders.length > 1) {
      if (!open) out.push((open = { from: s.t, to: s.t, samples: 0, holders: [] }));
      open.to = s.t;
      open.samples++;
      open.holders = [...new Set([...open.holders, ...s.holders])].sort((a, b) => a - b);
    } else open = null;
  }
  return out;
}

/** The holders at time t: the last sample at or before t, if it is at most maxAgeMs old. */
export function holdersAt(samples: IpSample[], t: number, maxAgeMs = 1000): number[] | undefined {
  let lo = 0;
  let hi = samples.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (samples[mid]!.t <= t) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  const s = best >= 0 ? samples[best]! : undefined;
  return s && t - s.t <= maxAgeMs ? s.holders : undefined;
}

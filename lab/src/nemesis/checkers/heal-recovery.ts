// Checker: within `budgetMs` (10 s) of each heal there is a single master AND a write is accepted.
// Single master (cluster-view.ts singleMaster): one cluster-IP holder, whose fresh view says it is
// the quorate master, and no fresh view names another. Accepted: the first acknowledged write whose
// answer came after the heal. recovery = the later of the two, from the heal.
import { isAcked, type FaultRecord, type WriteOp } from "../history.ts";
import type { IpSample } from "../../ip-checker.ts";
import { singleMaster, type ViewSample } from "../cluster-view.ts";
import { holdersAt } from "./split-ip.ts";

export type HealRecovery = {
  index: number;
  kind: string;
  healedAt: number;
  singleMasterMs: number | null;
  master: number | null;
  firstAckMs: number | null;
  recoveryMs: number | null;
  ok: boolean;
};

export function checkHealRecovery(faults: FaultRecord[], views: ViewSample[], ip: IpSample[], writes: WriteOp[], budgetMs = 10_000, endAt = Infinity): HealRecovery[] {
  const acks = writes.filter((w) => isAcked(w.status)).map((w) => w.end).sort((a, b) => a - b);
  const healed = faults.filter((f) => f.healedAt !== null).sort((a, b) => a.healedAt! - b.healedAt!);
  return healed.map((f) => {
    const h = f.healedAt!;
    // Look until the next fault starts (its own effects are not this heal's).
    const until = Math.min(endAt, ...faults.filter((g) => g.injectedAt > h).map((g) => g.injectedAt));
    let singleMasterMs: number | null = null;
    let master: number | null = null;
    for (const s of views) {
      if (s.t < h || s.t > until) continue;
      const m = singleMaster(s, holdersAt(ip, s.t));
      if (m !== null) {
        singleMasterMs = s.t - h;
        master = m;
        break;
      }
    }
    const ack = acks.find((t) => t >= h && t <= until);
    const firstAckMs = ack === undefined ? null : ack - h;
    const recoveryMs = singleMasterMs === null || firstAckMs === null ? null : Math.max(singleMasterMs, firstAckMs);
    return { index: f.index, kind: f.kind, healedAt: h, singleMasterMs, master, firstAckMs, recoveryMs, ok: recoveryMs !== null && recoveryMs <= budgetMs };
  });
}

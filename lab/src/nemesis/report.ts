// The nemesis' result: what every checker found, the violations in words, and a printable summary.
import { formatSeqs, isAcked, type FaultRecord, type LoginOp, type ReadOp, type WriteOp } from "./history.ts";
import { describeFault, type Fault } from "./schedule.ts";
import type { LostWritesResult } from "./checkers/lost-writes.ts";
import type { StaleRead } from "./checkers/stale-reads.ts";
import type { SplitIp } from "./checkers/split-ip.ts";
import type { DoubleVm } from "./checkers/double-vm.ts";
import type { HealRecovery } from "./checkers/heal-recovery.ts";
import type { ReplicaCheck } from "./checkers/replicas.ts";

export type ReportInput = {
  seed: number;
  nodes: number;
  schedule: Fault[];
  records: FaultRecord[];
  startedAt: number;
  durationMs: number;
  writes: WriteOp[];
  reads: ReadOp[];
  logins: LoginOp[];
  clientNotes: Array<{ t: number; msg: string }>;
  /** null: no final state could be read (no primary and no final read). */
  lost: LostWritesResult | null;
  /** Where the final state came from. */
  finalSource: string | null;
  /** Acknowledged writes on no node's database at all (null: not read). */
  lostEverywhere: number[] | null;
  staleReads: StaleRead[];
  splitIp: SplitIp[];
  ipSamples: number;
  /** null: no VMs in this run. */
  doubleVm: DoubleVm[] | null;
  heals: HealRecovery[];
  healBudgetMs: number;
  replicas: ReplicaCheck | null;
  finalReadOk: boolean;
  harnessErrors: string[];
  warnings: string[];
  artifactsDir: string;
};

export type NemesisReport = Omit<ReportInput, "writes" | "reads" | "logins"> & {
  counts: {
    writes: number;
    acked: number;
    /** By status: "201", "503", "timeout", ... */
    writeStatus: Record<string, number>;
    reads: number;
    readsOk: number;
    logins: number;
    loginsOk: number;
  };
  violations: string[];
  logsKept?: string;
};

const sec = (ms: number | null) => (ms === null ? "never" : `${(ms / 1000).toFixed(1)} s`);

function countBy<T>(xs: T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

export function buildReport(i: ReportInput): NemesisReport {
  const rel = (t: number) => `+${((t - i.startedAt) / 1000).toFixed(1)}s`;
  const v: string[] = [];
  if (i.lost === null) {
    v.push("no final state: neither a final primary's database nor a final read through the master");
    if (i.lostEverywhere?.length) v.push(`${i.lostEverywhere.length} acknowledged writes are on no node's database at all: seqs ${formatSeqs(i.lostEverywhere)}`);
  }
  else {
    if (i.lost.lost.length) v.push(`lost ${i.lost.lost.length} acknowledged writes (absent from ${i.finalSource}): seqs ${formatSeqs(i.lost.lost)}${i.lostEverywhere?.length ? `; ${i.lostEverywhere.length} of them on no node at all (${formatSeqs(i.lostEverywhere)})` : i.lostEverywhere ? "; each is still on some node's database" : ""}`);
    if (i.lost.phantom.length) v.push(`${i.lost.phantom.length} refused or never-sent writes are in the final state: seqs ${formatSeqs(i.lost.phantom)}`);
  }
  if (i.staleReads.length) {
    const missing = new Set(i.staleReads.flatMap((r) => r.missing));
    const first = i.staleReads[0]!;
    v.push(`${i.staleReads.length} stale reads through the master (${missing.size} acknowledged writes missed, seqs ${formatSeqs(missing)}); first at ${rel(first.start)} missing ${formatSeqs(first.missing)}${i.staleReads.some((r) => r.final) ? "; the final read too" : ""}`);
  }
  if (!i.finalReadOk) v.push("no successful final read through the master");
  for (const s of i.splitIp) v.push(`two cluster-IP holders at once: n${s.holders.join(", n")} from ${rel(s.from)} to ${rel(s.to)} (${s.samples} samples)`);
  for (const d of i.doubleVm ?? []) v.push(`VM ${d.vm} on two nodes (n${d.nodes.join(", n")}) from ${rel(d.from)} to ${rel(d.to)} (${d.samples} samples)`);
  for (const h of i.heals.filter((h) => !h.ok)) {
    v.push(`fault #${h.index} ${h.kind}: ${h.recoveryMs === null ? "not writable with a single master" : `writable with a single master only ${sec(h.recoveryMs)}`} after the heal (budget ${sec(i.healBudgetMs)}; single master ${sec(h.singleMasterMs)}, first accepted write ${sec(h.firstAckMs)})`);
  }
  for (const p of i.replicas?.problems ?? []) v.push(`database ${p.node === null ? "" : `n${p.node} `}at the end: ${p.problem}`);
  if (i.replicas === null) v.push("the nodes' databases were not checked at the end");
  for (const e of i.harnessErrors) v.push(`harness: ${e.split("\n")[0]}`);
  const { writes, reads, logins, ...rest } = i;
  return {
    ...rest,
    counts: {
      writes: writes.length,
      acked: writes.filter((w) => isAcked(w.status)).length,
      writeStatus: countBy(writes, (w) => String(w.status)),
      reads: reads.length,
      readsOk: reads.filter((r) => r.status === 200).length,
      logins: logins.length,
      loginsOk: logins.filter((l) => isAcked(l.status)).length,
    },
    violations: v,
  };
}

export function percentile(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? s[0]!;
}

/** Nodes whose database was left diverged or broken (the replica checker's problems, per node). */
export const divergedNodes = (r: NemesisReport) => [...new Set((r.replicas?.problems ?? []).map((p) => p.node).filter((n): n is number => n !== null))].sort((a, b) => a - b);

export function formatSummary(r: NemesisReport): string {
  const rel = (t: number | null) => (t === null ? "-" : `+${((t - r.startedAt) / 1000).toFixed(1)}s`);
  const lines: string[] = [];
  lines.push(`nemesis seed ${r.seed}: ${r.nodes} nodes, ${r.records.length}/${r.schedule.length} faults run, ${(r.durationMs / 1000).toFixed(0)} s`);
  const kinds = countBy(r.records.filter((f) => !f.skipped), (f) => f.kind);
  lines.push(`faults by kind: ${Object.entries(kinds).sort().map(([k, n]) => `${k} ${n}`).join(", ") || "none"}${r.records.some((f) => f.skipped) ? ` (skipped: ${r.records.filter((f) => f.skipped).length})` : ""}`);
  const st = r.counts.writeStatus;
  const indeterminate = r.lost?.indeterminate ?? Object.entries(st).filter(([k]) => !/^[1-4]\d\d$/.test(k)).reduce((s, [, n]) => s + n, 0);
  lines.push(`writes: ${r.counts.writes} attempted, ${r.counts.acked} acknowledged, ${st["503"] ?? 0} answered 503, ${indeterminate} indeterminate in all (kept ${r.lost?.indeterminateKept ?? "?"}); by status: ${Object.entries(st).map(([k, n]) => `${k}: ${n}`).join(", ")}`);
  lines.push(`reads: ${r.counts.reads} (${r.counts.readsOk} ok); logins/setup: ${r.counts.logins} (${r.counts.loginsOk} ok)`);
  lines.push(`lost acknowledged writes: ${r.lost ? `${r.lost.lost.length} (final state: ${r.finalSource}; on no node at all: ${r.lostEverywhere?.length ?? "?"})` : `unknown (no final state; on no node at all: ${r.lostEverywhere?.length ?? "?"})`}`);
  lines.push(`stale reads: ${r.staleReads.length}`);
  lines.push(`split-IP samples: ${r.splitIp.reduce((s, x) => s + x.samples, 0)} (of ${r.ipSamples}; ${r.splitIp.length} intervals)`);
  lines.push(`double-VM samples: ${r.doubleVm === null ? "n/a (no VMs)" : r.doubleVm.reduce((s, x) => s + x.samples, 0)}`);
  const rec = r.heals.map((h) => h.recoveryMs).filter((x): x is number => x !== null);
  const fmt = (x: number | null) => (x === null ? "-" : `${(x / 1000).toFixed(1)} s`);
  lines.push(`heal->writable: median ${fmt(percentile(rec, 0.5))}, p95 ${fmt(percentile(rec, 0.95))}, max ${fmt(rec.length ? Math.max(...rec) : null)} (n=${rec.length}; never: ${r.heals.length - rec.length}; over ${fmt(r.healBudgetMs)}: ${r.heals.filter((h) => !h.ok).length})`);
  lines.push(`nodes left diverged/broken: ${r.replicas ? divergedNodes(r).length : "unknown"}${divergedNodes(r).length ? ` (n${divergedNodes(r).join(", n")})` : ""}; final primary n${r.replicas?.primary ?? "?"}`);
  if (r.replicas) {
    lines.push("databases at the end:");
    for (const n of r.replicas.nodes) {
      const role = !n.reachable ? `unreachable (${n.error ?? ""})` : n.readOnly === false ? "primary" : n.replica ? `replica of ${n.replica.masterHost} (IO ${n.replica.io}, SQL ${n.replica.sql})${n.replica.ioError ? ` IO error ${n.replica.ioError.slice(0, 160)}` : ""}${n.replica.sqlError ? ` SQL error ${n.replica.sqlError.slice(0, 160)}` : ""}` : "read-only, not replicating";
      lines.push(`  n${n.id}: ${role}; gtid ${n.pos ?? "?"}; ${n.seqs?.length ?? "?"} rows of this run`);
    }
  }
  lines.push("faults:");
  for (const f of r.records) {
    const h = r.heals.find((x) => x.index === f.index);
    const plan = r.schedule.find((s) => s.index === f.index);
    lines.push(`  #${f.index} ${f.kind} n${f.target ?? "?"}${f.peer ? `+n${f.peer}` : ""} (master n${f.masterBefore ?? "?"} -> n${f.masterAfter ?? "?"}) at ${rel(f.injectedAt)} heal ${rel(f.healedAt)}${f.skipped ? ` SKIPPED: ${f.skipped}` : ""}${h ? ` single master ${sec(h.singleMasterMs)}, first write ${sec(h.firstAckMs)}` : ""}${plan ? ` [${describeFault(plan).replace(/^#\d+ /, "")}]` : ""}${f.notes.length ? `; ${f.notes.join("; ")}` : ""}`);
  }
  if (r.warnings.length) lines.push(`warnings:\n${r.warnings.map((w) => `  - ${w}`).join("\n")}`);
  lines.push(r.violations.length ? `VIOLATIONS (${r.violations.length}):\n${r.violations.map((x) => `  - ${x}`).join("\n")}` : "no violations");
  lines.push(`artifacts: ${r.artifactsDir}${r.logsKept ? ` (node logs in ${r.logsKept})` : ""}`);
  return lines.join("\n");
}

// The nemesis run: a lab with agents and MariaDB, the client writing through the panel, the
// samplers (cluster IP holders, agents' views, VM processes), the schedule's faults one after the
// other (inject, hold, heal, wait for recovery, settle), then the final checks. Used by
// lab/test/integration/nemesis.test.ts (a short seed) and lab/bench/nemesis.ts (the long run).
//
// The lab plays systemd and the machine's power button after a heal: a node whose corosync, mariadbd
// or agent is gone (killed by the fault, or by the lab's watchdog resetting the node after a paused
// or killed agent) is booted again (lab.boot starts what is missing), as Restart= and a reboot would.
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sleep } from "@ha/shared";
import { Lab, REPO_ROOT } from "../lab.ts";
import { ClusterIpChecker } from "../ip-checker.ts";
import { VmChecker } from "../vm-checker.ts";
import { makeSchedule, describeFault, type Fault, type ScheduleOptions } from "./schedule.ts";
import { NemesisClient, type ClientOptions } from "./client.ts";
import { ClusterViewSampler, allAgree, singleMaster } from "./cluster-view.ts";
import { executeFault, healEverything } from "./faults.ts";
import { defineNemesisVms } from "./vms.ts";
import { isAcked, type FaultRecord } from "./history.ts";
import { checkLostWrites } from "./checkers/lost-writes.ts";
import { checkStaleReads } from "./checkers/stale-reads.ts";
import { splitIpIntervals, holdersAt } from "./checkers/split-ip.ts";
import { doubleVmIntervals } from "./checkers/double-vm.ts";
import { checkHealRecovery } from "./checkers/heal-recovery.ts";
import { checkReplicas, type ReplicaCheck } from "./checkers/replicas.ts";
import { buildReport, type NemesisReport } from "./report.ts";

export type NemesisOptions = {
  seed: number;
  faults: number;
  nodes?: number;
  /** Lab name (1-8 lowercase letters/digits). */
  name?: string;
  /** HA VMs run during the test (0: none, the double-VM check is skipped). Default 3. */
  vms?: number;
  /** The agents' HA settings (default: the product's defaults). */
  ha?: Record<string, number | boolean>;
  /** Overrides of the schedule's ranges (holds, settles, kinds). */
  schedule?: Omit<Partial<ScheduleOptions>, "seed" | "faults" | "nodes">;
  client?: Partial<Omit<ClientOptions, "seed">>;
  /** The product's promise: single master and a write accepted within this long of each heal. */
  healBudgetMs?: number;
  /** How long to wait after a heal for a healthy cluster before going on regardless. */
  recoveryTimeoutMs?: number;
  /** How long the lab may take to elect a master and accept the first write. */
  startTimeoutMs?: number;
  /** Where the history, report and (see keepLogs) node logs go; default artifacts/nemesis/seed-N-<time>. */
  artifactsDir?: string;
  keepLogs?: "always" | "on-failure" | "never";
  ipIntervalMs?: number;
  log?: (msg: string) => void;
};

const KINDS_NEEDED = ["corosync", "mariadb", "agent"] as const;

export async function runNemesis(o: NemesisOptions): Promise<NemesisReport> {
  const nodes = o.nodes ?? 5;
  const budget = o.healBudgetMs ?? 10_000;
  const recoveryTimeout = o.recoveryTimeoutMs ?? 45_000;
  const startTimeout = o.startTimeoutMs ?? 180_000;
  const vmCount = o.vms ?? 3;
  const schedule = makeSchedule({ ...o.schedule, seed: o.seed, faults: o.faults, nodes });
  const dir = o.artifactsDir ?? join(REPO_ROOT, "artifacts", "nemesis", `seed-${o.seed}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  // A replay into the same directory starts clean (the history file is appended to).
  for (const stale of ["history.jsonl", "report.json", "logs"]) rmSync(join(dir, stale), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  const log = (msg: string) => (o.log ?? ((m: string) => process.stderr.write(m + "\n")))(`[nemesis +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
  log(`seed ${o.seed}, ${nodes} nodes, ${schedule.length} faults; artifacts in ${dir}\n${schedule.map((f) => `  ${describeFault(f)}`).join("\n")}`);

  let lab: Lab | undefined;
  let client: NemesisClient | undefined;
  let ip: ClusterIpChecker | undefined;
  let views: ClusterViewSampler | undefined;
  let vmc: VmChecker | undefined;
  const records: FaultRecord[] = [];
  const harnessErrors: string[] = [];
  const warnings: string[] = [];
  let replicas: ReplicaCheck | null = null;
  let finalSeqs: number[] | null = null;
  let finalSource: string | null = null;
  let onSomeNode: number[] | null = null;
  let finalReadOk = false;
  let report: NemesisReport | undefined;
  const ids = Array.from({ length: nodes }, (_, i) => i + 1);

  const latestHolders = () => (ip ? holdersAt(ip.samples, Date.now(), 1000) : undefined);
  /** The master now: the single master, else the single IP holder, else null. */
  const currentMaster = (): number | null => {
    if (!views) return null;
    const s = views.sample();
    const h = latestHolders();
    return singleMaster(s, h) ?? (h?.length === 1 ? h[0]! : null);
  };

  // Plays systemd + the power button: a node missing a process twice in a row (1 s apart) is booted.
  const misses = new Map<number, number>();
  const supervise = async (rec: FaultRecord | null) => {
    for (const id of ids) {
      const running = new Set(lab!.processes(id, "all").map((p) => p.kind));
      const lacks = KINDS_NEEDED.filter((k) => !running.has(k));
      if (lacks.length === 0) {
        misses.delete(id);
        continue;
      }
      const n = (misses.get(id) ?? 0) + 1;
      misses.set(id, n);
      if (n < 2) continue;
      misses.delete(id);
      const note = `n${id} lacks ${lacks.join(", ")}: booting it (as systemd / a reboot after a watchdog reset would)`;
      log(`  ${note}`);
      rec?.notes.push(note);
      try {
        await lab!.boot(id);
      } catch (err) {
        harnessErrors.push(`boot n${id}: ${(err as Error).message}`);
      }
    }
  };
  /** Healthy: a single master every node agrees on, every node a member, all processes up, and a write acknowledged since `since`. */
  const healthy = (since: number): number | null => {
    const s = views!.sample();
    const m = singleMaster(s, latestHolders());
    if (m === null || !allAgree(s, ids, m) || misses.size > 0) return null;
    return client && !client.writes.some((w) => isAcked(w.status) && w.end >= since) ? null : m;
  };
  /** Waits for a healthy cluster (supervising) up to timeoutMs; the time it was reached and the master, or nulls. */
  const recover = async (since: number, timeoutMs: number, rec: FaultRecord | null) => {
    const deadline = Date.now() + timeoutMs;
    let lastSupervise = 0;
    while (Date.now() < deadline) {
      if (Date.now() - lastSupervise >= 1000) {
        lastSupervise = Date.now();
        await supervise(rec);
      }
      const m = healthy(since);
      if (m !== null) return { at: Date.now(), master: m };
      await sleep(250);
    }
    return { at: null, master: currentMaster() };
  };
  const settle = async (ms: number, rec: FaultRecord | null) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      await supervise(rec);
      await sleep(Math.min(1000, Math.max(0, end - Date.now())));
    }
  };

  try {
    lab = await Lab.up({ name: o.name ?? "nem", nodes, agents: true, mariadb: true, ha: o.ha });
    log(`lab up (${lab.name})`);
    ip = new ClusterIpChecker(lab, o.ipIntervalMs ?? 100).start();
    views = new ClusterViewSampler(lab).start();
    const first = await recover(0, startTimeout, null);
    if (first.at === null) throw new Error(`no healthy cluster (single master, every node a member) within ${startTimeout} ms of the lab's start`);
    log(`master n${first.master}, every node a member`);
    if (vmCount > 0) {
      const names = defineNemesisVms(lab, vmCount);
      vmc = new VmChecker(lab, 500).start();
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && !names.every((n) => vmc!.where().has(n))) await sleep(500);
      if (!names.every((n) => vmc!.where().has(n))) warnings.push(`not every VM ran within 60 s of its definition (${names.filter((n) => !vmc!.where().has(n))} missing)`);
      else log(`${vmCount} HA VMs running`);
    }
    client = NemesisClient.start(lab, { ...o.client, seed: o.seed, historyFile: join(dir, "history.jsonl") });
    const writing = await client.waitFor(() => client!.writes.some((w) => isAcked(w.status)), startTimeout);
    if (!writing) throw new Error(`no write acknowledged within ${startTimeout} ms of the client's start (logins: ${JSON.stringify(client.logins.slice(-3))}; client notes: ${client.notes.map((n) => n.msg).join("; ")}; stderr: ${client.stderr.slice(-1000)})`);
    log("the client's writes are acknowledged; faults start");
    await settle(3000, null);

    for (const f of schedule) {
      const masterBefore = currentMaster();
      const rec: FaultRecord = { index: f.index, kind: f.kind, target: null, masterBefore, injectedAt: Date.now(), healedAt: null, recoveredAt: null, masterAfter: null, notes: [] };
      records.push(rec);
      log(`${describeFault(f)} (master n${masterBefore ?? "?"})`);
      try {
        await executeFault(lab, f, masterBefore, rec, log);
      } catch (err) {
        harnessErrors.push(`fault #${f.index} ${f.kind}: ${(err as Error).message}`);
        rec.notes.push(`harness error: ${(err as Error).message}`);
        await healEverything(lab);
        rec.healedAt ??= Date.now();
      }
      if (rec.skipped) {
        log(`  skipped: ${rec.skipped}`);
        continue;
      }
      const r = await recover(rec.healedAt!, recoveryTimeout, rec);
      rec.recoveredAt = r.at;
      rec.masterAfter = r.master;
      if (r.at === null) {
        const note = `not healthy within ${recoveryTimeout} ms of the heal`;
        rec.notes.push(note);
        warnings.push(`fault #${f.index} ${f.kind}: ${note}`);
        log(`  ${note}`);
      } else log(`  healthy ${((r.at - rec.healedAt!) / 1000).toFixed(1)} s after the heal, master n${r.master}`);
      await settle(f.settleMs, rec);
    }

    // The end: writes stop, the cluster settles, one read through the master, every node's database.
    await client.pause();
    const end = await recover(0, recoveryTimeout, null);
    if (end.at === null) warnings.push(`not healthy within ${recoveryTimeout} ms at the end`);
    const fr = await client.finalRead(15_000);
    finalReadOk = fr !== null;
    const acked = client.writes.filter((w) => isAcked(w.status)).map((w) => w.seq);
    replicas = await checkReplicas(lab, { seed: o.seed, master: currentMaster(), acked, timeoutMs: 20_000 });
    // The final state: the final primary's rows; without a primary, what the final read through the master saw.
    const primaryRows = replicas.nodes.find((n) => n.id === replicas!.primary)?.seqs;
    if (primaryRows) {
      finalSeqs = primaryRows;
      finalSource = `the final primary n${replicas.primary}'s database`;
    } else if (fr) {
      finalSeqs = fr.seen.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, k) => a + k));
      finalSource = "the final read through the master (no database is primary)";
    }
    onSomeNode = [...new Set(replicas.nodes.flatMap((n) => n.seqs ?? []))];
    log(`final check: primary n${replicas.primary ?? "?"}, ${replicas.problems.length} replica problems`);
  } catch (err) {
    harnessErrors.push((err as Error).stack ?? (err as Error).message);
    log(`harness error: ${(err as Error).message}`);
  } finally {
    const endAt = Date.now();
    ip?.stop();
    views?.stop();
    vmc?.stop();
    await client?.stop().catch(() => undefined);
    const writes = client?.writes ?? [];
    report = buildReport({
      seed: o.seed,
      nodes,
      schedule,
      records,
      startedAt: t0,
      durationMs: endAt - t0,
      writes,
      reads: client?.reads ?? [],
      logins: client?.logins ?? [],
      clientNotes: client?.notes ?? [],
      lost: finalSeqs ? checkLostWrites(writes, finalSeqs) : null,
      finalSource,
      lostEverywhere: onSomeNode ? checkLostWrites(writes, onSomeNode).lost : null,
      staleReads: checkStaleReads(writes, client?.reads ?? []),
      splitIp: splitIpIntervals(ip?.samples ?? []),
      ipSamples: ip?.samples.length ?? 0,
      doubleVm: vmc ? doubleVmIntervals(vmc.violations) : null,
      heals: checkHealRecovery(records, views?.samples ?? [], ip?.samples ?? [], writes, budget, endAt),
      healBudgetMs: budget,
      replicas,
      finalReadOk,
      harnessErrors,
      warnings,
      artifactsDir: dir,
    });
    writeFileSync(join(dir, "report.json"), JSON.stringify(report, null, 2));
    const keep = o.keepLogs ?? "on-failure";
    if (lab && (keep === "always" || (keep === "on-failure" && report.violations.length > 0))) {
      for (const n of lab.topo.nodes) {
        try {
          cpSync(join(lab.nodeDir(n.id), "log"), join(dir, "logs", `n${n.id}`), { recursive: true });
        } catch {
          /* a node that never wrote logs */
        }
      }
      report.logsKept = join(dir, "logs");
      writeFileSync(join(dir, "report.json"), JSON.stringify(report, null, 2));
    }
    await lab?.down();
  }
  return report!;
}

export type { Fault };

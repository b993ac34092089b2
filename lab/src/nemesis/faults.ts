// Injecting and healing the schedule's faults on a lab (lab/src/lab.ts does the work). Each fault:
// inject on the resolved target, hold, heal; `rec.healedAt` is when the heal started.
import { sleep } from "@ha/shared";
import type { Lab } from "../lab.ts";
import type { ProcessKind } from "../processes.ts";
import type { FaultRecord } from "./history.ts";
import { minorityPeer, type Fault } from "./schedule.ts";

/** The node a fault hits: its target, the master for "master" (else the fallback node). */
export function resolveTarget(f: Fault, master: number | null): number {
  return f.target === "master" ? (master ?? f.fallback) : f.target;
}

const KILLED: Partial<Record<Fault["kind"], ProcessKind>> = { "kill-agent": "agent", "kill-corosync": "corosync", "kill-mariadb": "mariadb" };

/** Injects, holds and heals one fault; fills rec (target, peer, healedAt, notes, skipped). */
export async function executeFault(lab: Lab, f: Fault, master: number | null, rec: FaultRecord, log: (msg: string) => void): Promise<void> {
  const t = resolveTarget(f, master);
  rec.target = t;
  if (f.target === "master" && master === null) rec.notes.push(`no single master when the fault started: n${t} instead`);
  const ids = lab.topo.nodes.map((n) => n.id);
  const heal = async (what: () => Promise<unknown>) => {
    rec.healedAt = Date.now();
    await what();
  };
  switch (f.kind) {
    case "partition-one":
    case "master-minority": {
      const group = f.kind === "partition-one" ? [t] : [t, minorityPeer(t, ids.length, f.peerRank ?? 0)];
      if (group.length === 2) rec.peer = group[1];
      const rest = ids.filter((id) => !group.includes(id));
      log(`  partition [${group.map((id) => `n${id}`)}] | [${rest.map((id) => `n${id}`)}]`);
      await lab.partition([group, rest]);
      await sleep(f.holdMs);
      await heal(() => lab.heal());
      return;
    }
    case "kill-agent":
    case "kill-corosync":
    case "kill-mariadb": {
      const kind = KILLED[f.kind]!;
      const pids = lab.processes(t, kind).map((p) => p.pid);
      if (pids.length === 0) {
        rec.skipped = `no ${kind} process on n${t}`;
        return;
      }
      lab.kill(t, kind);
      log(`  SIGKILL ${kind} on n${t} (pid ${pids.join(",")})`);
      await sleep(f.holdMs);
      await heal(() => lab.boot(t));
      return;
    }
    case "pause-agent": {
      if (lab.processes(t, "agent").length === 0) {
        rec.skipped = `no agent process on n${t}`;
        return;
      }
      lab.pause(t, "agent");
      log(`  SIGSTOP agent on n${t} for ${f.holdMs} ms`);
      await sleep(f.holdMs);
      await heal(async () => {
        const resumed = lab.resume(t, "agent");
        if (resumed.length === 0) rec.notes.push(`n${t}: no agent left to resume (the watchdog reset the node)`);
      });
      return;
    }
    case "crash": {
      await lab.crash(t);
      log(`  crash n${t}`);
      await sleep(f.holdMs);
      await heal(() => lab.boot(t));
      return;
    }
    case "flap": {
      const flaps = f.flaps ?? [];
      log(`  flap n${t}'s control link ${flaps.length} times`);
      for (let i = 0; i < flaps.length; i++) {
        await lab.cut(t);
        await sleep(flaps[i]!.downMs);
        if (i === flaps.length - 1) await heal(() => lab.heal(t));
        else {
          await lab.heal(t);
          await sleep(flaps[i]!.upMs);
        }
      }
      return;
    }
    case "storage-cut": {
      await lab.storageCut(t);
      log(`  storage cut on n${t}`);
      await sleep(f.holdMs);
      await heal(() => lab.storageHeal(t));
      return;
    }
  }
}

/** After a failed injection: undo whatever may be left (links, partition, storage). */
export async function healEverything(lab: Lab) {
  await lab.heal().catch(() => undefined);
  for (const n of lab.topo.nodes) await lab.storageHeal(n.id).catch(() => undefined);
}

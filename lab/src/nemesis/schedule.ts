// The nemesis' fault schedule (pure): the same seed gives the same list of faults on every machine.
// Each fault is injected, held, healed, and followed by a recovery wait and a settle period (run.ts).
//
// Faults aim at the current master most of the time (that is where the bugs are), sometimes at a
// random node. The master is only known when the fault starts, so a fault names "master" and the
// runner resolves it then; the random parts that depend on it (which node joins the master in a
// minority) are drawn here as ranks, so they stay seeded too.
//
// Kinds are drawn from a shuffled bag (every kind once, then a new shuffle), so even a short
// schedule covers many kinds and a long one covers them all evenly.
import { Prng } from "../../../agent/src/sim/prng.ts";

export const FAULT_KINDS = [
  "partition-one", // one node alone on the control network: [[x], rest]
  "master-minority", // the master and one other node in a minority: [[m, x], rest]
  "kill-agent", // SIGKILL the agent (the lab's watchdog then resets the node), restarted at heal
  "kill-corosync", // SIGKILL corosync, restarted at heal
  "kill-mariadb", // SIGKILL mariadbd, restarted at heal
  "pause-agent", // SIGSTOP the agent for 3-12 s, then SIGCONT
  "crash", // lab.crash (every process, links dark, addresses gone), lab.boot at heal
  "flap", // the control link down/up several times
  "storage-cut", // the shared storage unreachable inside the node
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** "master": the master when the fault starts; a number: that node. */
export type Target = "master" | number;

export type Fault = {
  index: number;
  kind: FaultKind;
  target: Target;
  /** When the target is "master" but no single master is known: this node instead. */
  fallback: number;
  /** master-minority: which other node joins the master (rank among the others, by id). */
  peerRank?: number;
  /** How long the fault stays before the heal (pause-agent: how long the agent is stopped). */
  holdMs: number;
  /** flap: the down/up periods, in order; the heal is the last up. */
  flaps?: Array<{ downMs: number; upMs: number }>;
  /** After the cluster has recovered from the heal, how long to let it run before the next fault. */
  settleMs: number;
};

export type Range = readonly [number, number];

export type ScheduleOptions = {
  seed: number;
  faults: number;
  nodes: number;
  /** Probability that a fault aims at the master (the rest: a random node). Default 0.75. */
  masterBias?: number;
  /** Hold of partitions, kills, crashes and storage cuts (ms). Default [5000, 15000]. */
  holdMs?: Range;
  /** pause-agent's stop (ms). Default [3000, 12000]. */
  pauseMs?: Range;
  /** Settle after recovery (ms). Default [3000, 8000]. */
  settleMs?: Range;
  /** flap: number of down/up cycles. Default [3, 5]. */
  flapCycles?: Range;
  /** flap: one down period (ms). Default [1000, 4000]; one up period: [1000, 3000]. */
  flapDownMs?: Range;
  flapUpMs?: Range;
  /** Only these kinds (default: all). */
  kinds?: readonly FaultKind[];
};

/** Kinds that always aim at the master (by their definition). */
const MASTER_ONLY: ReadonlySet<FaultKind> = new Set(["master-minority"]);

export function makeSchedule(o: ScheduleOptions): Fault[] {
  if (!Number.isInteger(o.nodes) || o.nodes < 3) throw new Error(`the nemesis needs at least 3 nodes, not ${o.nodes}`);
  if (!Number.isInteger(o.faults) || o.faults < 0) throw new Error(`faults must be a whole number >= 0, not ${o.faults}`);
  const kinds = [...(o.kinds ?? FAULT_KINDS)];
  if (kinds.length === 0) throw new Error("no fault kinds to draw from");
  const rng = new Prng(o.seed);
  const hold = o.holdMs ?? [5000, 15_000];
  const bias = o.masterBias ?? 0.75;
  let bag: FaultKind[] = [];
  const out: Fault[] = [];
  for (let index = 0; index < o.faults; index++) {
    if (bag.length === 0) bag = shuffle(rng, kinds);
    const kind = bag.pop()!;
    const target: Target = MASTER_ONLY.has(kind) || rng.chance(bias) ? "master" : rng.int(1, o.nodes);
    const fallback = rng.int(1, o.nodes);
    const f: Fault = { index, kind, target, fallback, holdMs: 0, settleMs: 0 };
    if (kind === "master-minority") f.peerRank = rng.int(0, o.nodes - 2);
    // Durations from a stream of their own: other ranges change the durations, never the faults.
    const p = rng.fork(index + 1);
    const between = ([lo, hi]: Range) => p.int(lo, hi);
    if (kind === "pause-agent") f.holdMs = between(o.pauseMs ?? [3000, 12_000]);
    else if (kind === "flap") {
      const cycles = between(o.flapCycles ?? [3, 5]);
      f.flaps = Array.from({ length: cycles }, () => ({ downMs: between(o.flapDownMs ?? [1000, 4000]), upMs: between(o.flapUpMs ?? [1000, 3000]) }));
      f.holdMs = f.flaps.reduce((s, p) => s + p.downMs + p.upMs, 0);
    } else f.holdMs = between(hold);
    f.settleMs = between(o.settleMs ?? [3000, 8000]);
    out.push(f);
  }
  return out;
}

function shuffle<T>(rng: Prng, items: readonly T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** The other node that joins the master in a minority: the peerRank-th of the others, by id. */
export function minorityPeer(master: number, nodes: number, peerRank: number): number {
  const others = Array.from({ length: nodes }, (_, i) => i + 1).filter((id) => id !== master);
  return others[peerRank % others.length]!;
}

/** One line for a fault, e.g. "#2 pause-agent master (fallback n3) hold 7.2 s settle 4.1 s". */
export function describeFault(f: Fault): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const target = f.target === "master" ? `master (else n${f.fallback})` : `n${f.target}`;
  const extra = f.kind === "master-minority" ? ` +peer rank ${f.peerRank}` : f.flaps ? ` ${f.flaps.map((p) => `${s(p.downMs)} down/${s(p.upMs)} up`).join(", ")}` : "";
  return `#${f.index} ${f.kind} ${target}${extra} hold ${s(f.holdMs)} settle ${s(f.settleMs)}`;
}

export const formatSchedule = (faults: Fault[]) => faults.map(describeFault).join("\n");

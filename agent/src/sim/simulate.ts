// simulate(): one seeded schedule. Builds a random cluster (nodes, prios, RAM, VMs), runs a fault
// phase, heals everything, lets the cluster settle, and reports the first invariant violation
// (safety: checked after every step; liveness: checked at the end).

import { transitionLeaseMs } from '../core/lease.ts';
import { createNodeCore, type CoreOptions, type NodeCore } from '../core/node-core.ts';
import { placeVms } from '../core/placement.ts';
import { resolveSettings, type NodeConfig, type NodeId, type Settings, type VmId, type VmSpec } from '../core/types.ts';
import { DEFAULT_FAULT_MIX, describeFault, generateFaults, type FaultMix, type ScheduledFault } from './faults.ts';
import type { SimSabotage } from './model.ts';
import { Prng } from './prng.ts';
import { DEFAULT_TIMING, World, type SimTiming, type Violation } from './world.ts';

export type Profile = 'default' | 'fast';

/**
 * Lease length of a schedule:
 *  - 'transition' (default): the product default, which outlasts the modeled membership
 *    transition (token + consensus + leaseRenewMs + slack): a member's failure does not make the
 *    master step down;
 *  - 'short': the old 1 s lease (0.6 s in the fast profile), shorter than a transition, as an
 *    operator gets by setting `ha.leaseMs` explicitly: masters step down during transitions;
 *  - 'mixed': every node picks one of the two, and nodes change theirs during the fault phase
 *    (a corosync.conf reload reaches nodes at different times; an upgrade mixes versions).
 */
export type LeaseMode = 'transition' | 'short' | 'mixed';

export interface SimOptions {
  seed: number;
  /** 3..7 is the interesting range. */
  nodes: number;
  /** Length of the fault phase in ticks (settings.tickMs each). */
  steps: number;
  /** Number of VMs (default 2 per node). */
  vms?: number;
  /** 'default' = product defaults and corosync token 1000 ms; 'fast' = scaled-down timeouts. */
  profile?: Profile;
  /** Default: chosen from the seed. */
  failback?: boolean;
  /** Fault weights, or 'none' for a quiet run. */
  faults?: Partial<FaultMix> | 'none';
  /** Faults at fixed times, on top of the random ones (scenario tests). */
  schedule?: ScheduledFault[];
  /** Default 'transition'. */
  lease?: LeaseMode;
  /** Mean time between fault families. */
  faultGapMs?: number;
  settings?: Partial<Settings>;
  timing?: Partial<SimTiming>;
  /** Deliberately broken core (or database model), for checking the checker. */
  sabotage?: SimSabotage;
  trace?: boolean;
  /** Longest allowed settle time after healing (default: derived from the timeouts). */
  quietMs?: number;
  /**
   * Check liveness (default true): after the heal the cluster must converge (one master with the
   * IP and panel, every VM running on its owner) within `quietMs` and stay so for `stableMs`.
   */
  liveness?: boolean;
  stableMs?: number;
  makeCore?: (id: NodeId, settings: Settings, options: CoreOptions) => NodeCore;
}

export interface SimResult {
  ok: boolean;
  violations: Violation[];
  trace: string[];
  stats: { events: number; simMs: number; resets: number; faults: number; coverage: Record<string, number> };
  /** The generated cluster, and the master its members agreed on at the end (null: none or disagreement). */
  nodes: NodeConfig[];
  firstMaster: NodeId | null;
  finalMaster: NodeId | null;
  /** Replays this exact run with a trace. */
  command: string;
}

/** Scaled-down timeouts: same ratios that matter, shorter runs. */
export const FAST_SETTINGS: Partial<Settings> = Object.freeze({
  tickMs: 100,
  // Outlasts the fast profile's transition (token 500 + consensus 600), like the product default.
  leaseMs: transitionLeaseMs({ tokenMs: 500, consensusMs: 600 }, 150),
  leaseRenewMs: 150,
  startWindowMs: 600,
  releaseBudgetMs: 600,
  leaseMarginMs: 100,
  fenceTimeoutMs: 1500,
  storageTimeoutMs: 1500,
  storageWriteMs: 400,
  storageReadMs: 400,
  storageWriteMaxMs: 300,
  testIpProbeMs: 400,
  testIpFreshMs: 1200,
  vmRetryMs: 1000,
  startupGraceMs: 2000,
  unstableWindowMs: 60_000,
  unstableMaxOutageMs: 8_000,
});

/** The lease every schedule had before it outlasted transitions ('short' lease mode). */
export const SHORT_LEASE_MS = 1000;
export const SHORT_LEASE_FAST_MS = 600;

export const FAST_TIMING: Partial<SimTiming> = Object.freeze({
  tokenMs: 500,
  consensusMs: 600,
  joinMs: 200,
  vmStartMs: [100, 500] as const,
  vmStopMs: [100, 500] as const,
  rebootMs: [800, 2000] as const,
  agentStartMs: [0, 600] as const,
  agentLateMs: [1500, 4000] as const,
  hangMs: 4000,
  masterWaitMs: 3000,
  dbRetryMs: 1000,
  rebuildMs: [300, 1500] as const,
});

export function simulate(opts: SimOptions): SimResult {
  const profile = opts.profile ?? 'default';
  const rng = new Prng(opts.seed);
  const setupRng = rng.fork(1);
  const faultRng = rng.fork(2);
  const worldRng = rng.fork(3);
  const failback = opts.failback ?? setupRng.chance(0.3);
  const leaseMode = opts.lease ?? 'transition';
  const shortLease = { leaseMs: profile === 'fast' ? SHORT_LEASE_FAST_MS : SHORT_LEASE_MS };
  const settings = resolveSettings({ ...(profile === 'fast' ? FAST_SETTINGS : {}), failback, ...(leaseMode === 'short' ? shortLease : {}), ...opts.settings });
  const timing: SimTiming = { ...DEFAULT_TIMING, ...(profile === 'fast' ? FAST_TIMING : {}), ...opts.timing };
  const nodeSettings = new Map<NodeId, Settings>();
  if (leaseMode === 'mixed') {
    // `settings` keeps the longer lease (it sizes the quiet period); each node picks its own.
    for (let id = 1; id <= opts.nodes; id++) if (setupRng.chance(0.5)) nodeSettings.set(id, { ...settings, ...shortLease });
  }

  const nodes = randomNodes(setupRng, opts.nodes);
  const vms = randomVms(setupRng, opts.vms ?? opts.nodes * 2);
  const owners = initialOwners(nodes, vms);

  const world = new World({
    rng: worldRng,
    nodeCount: opts.nodes,
    nodes,
    vms,
    owners,
    settings,
    nodeSettings,
    timing,
    makeCore: opts.makeCore ?? ((id, s, o) => createNodeCore(id, s, o)),
    sabotage: opts.sabotage,
    trace: opts.trace ?? false,
  });
  world.log(`cluster: ${nodes.map((n) => `n${n.nodeid}(prio ${n.prio}, ${n.ramMb} MB${n.reserve ? ', reserve' : ''}${n.maintenance ? ', maintenance' : ''})`).join(' ')}; failback ${failback}`);
  world.log(`VMs: ${vms.map((v) => `${v.id}(${v.ramMb} MB${v.ha ? '' : ', no HA'}${v.storage === 'local' ? ', local' : ''}) @n${owners.get(v.id)?.node}`).join(' ')}`);

  for (const n of nodes) world.bootAt(setupRng.int(0, 400), n.nodeid);
  const faultEnd = Math.max(1, opts.steps) * settings.tickMs;
  let faultCount = 0;
  if (opts.faults !== 'none') {
    const mix = { ...DEFAULT_FAULT_MIX, ...opts.faults };
    const schedule = generateFaults(faultRng, opts.nodes, faultEnd, mix, opts.faultGapMs ?? 2500);
    if (leaseMode === 'mixed') {
      // A few reloads that flip a node's lease between the two lengths.
      for (let i = faultRng.int(1, 3); i > 0; i--) {
        const node = faultRng.int(1, opts.nodes);
        schedule.push({ at: faultRng.int(0, faultEnd), fault: { kind: 'lease-change', node, leaseMs: faultRng.chance(0.5) ? shortLease.leaseMs : settings.leaseMs } });
      }
      schedule.sort((a, b) => a.at - b.at);
    }
    faultCount = schedule.length;
    for (const f of schedule) world.scheduleFault(f.at, f.fault);
    if (opts.trace) for (const f of schedule) world.trace.push(`   plan ${String(f.at).padStart(7)} ${describeFault(f.fault)}`);
  }
  for (const f of opts.schedule ?? []) {
    world.scheduleFault(f.at, f.fault);
    if (opts.trace) world.trace.push(`   plan ${String(f.at).padStart(7)} ${describeFault(f.fault)}`);
  }
  const quiet = opts.quietMs ?? quietPeriod(settings, timing);
  world.healAt(faultEnd);
  if (opts.liveness === false) world.endAt(faultEnd + quiet);
  else world.settle(faultEnd + 500, faultEnd + quiet, opts.stableMs ?? 2000);
  world.run();
  return {
    ok: world.violations.length === 0,
    violations: world.violations,
    trace: world.trace,
    stats: { events: world.events, simMs: world.now, resets: world.resets, faults: faultCount, coverage: world.coverage },
    nodes,
    firstMaster: world.firstMaster,
    finalMaster: agreedMaster(world),
    command: replayCommand(opts, profile),
  };
}

function agreedMaster(w: World): NodeId | null {
  const masters = new Set(w.nodes.map((n) => (n.core === null ? null : n.core.role().master)));
  return masters.size === 1 ? [...masters][0]! : null;
}

/** Long enough for the slowest recovery chain after the heal. */
export function quietPeriod(s: Settings, t: SimTiming): number {
  return (
    t.hangMs +
    2 * (t.tokenMs + t.consensusMs) +
    t.joinMs +
    s.leaseMs +
    s.releaseBudgetMs +
    s.leaseMarginMs +
    s.storageTimeoutMs +
    s.fenceTimeoutMs +
    2 * s.storageReadMs +
    t.rebootMs[1] +
    Math.max(t.agentStartMs[1], t.agentLateMs[1]) +
    s.startupGraceMs +
    2 * t.vmStartMs[1] +
    s.vmRetryMs +
    // The database: a promotion retried, a copy re-cloned, a follow that waited for it.
    2 * t.dbRetryMs +
    t.epochWaitMs +
    t.rebuildMs[1] +
    2000
  );
}

export function replayCommand(opts: SimOptions, profile: Profile): string {
  const parts = ['node --import tsx agent/src/sim/cli.ts', `--seed ${opts.seed}`, `--nodes ${opts.nodes}`, `--steps ${opts.steps}`, `--profile ${profile}`];
  if (opts.vms !== undefined) parts.push(`--vms ${opts.vms}`);
  if (opts.failback !== undefined) parts.push(opts.failback ? '--failback' : '--no-failback');
  if (opts.lease !== undefined && opts.lease !== 'transition') parts.push(`--lease ${opts.lease}`);
  if (opts.sabotage !== undefined) parts.push(`--sabotage ${opts.sabotage}`);
  if (opts.faults === 'none') parts.push('--no-faults');
  else if (opts.faults !== undefined) parts.push(`--faults ${Object.entries(opts.faults).map(([k, v]) => `${k}=${v}`).join(',')}`);
  parts.push('--trace');
  return parts.join(' ');
}

// ---------------------------------------------------------------------------
// Random cluster

function randomNodes(rng: Prng, count: number): NodeConfig[] {
  const nodes: NodeConfig[] = [];
  for (let id = 1; id <= count; id++) {
    nodes.push({ nodeid: id, prio: rng.pick([10, 50, 100, 100, 200]), addr: `10.0.0.${id}`, ramMb: rng.pick([8192, 16384, 16384, 32768]) });
  }
  if (rng.chance(0.25)) rng.pick(nodes).reserve = true;
  if (rng.chance(0.15)) rng.pick(nodes).maintenance = true;
  return nodes;
}

function randomVms(rng: Prng, count: number): VmSpec[] {
  const vms: VmSpec[] = [];
  for (let i = 1; i <= count; i++) {
    vms.push({
      id: `vm${i}`,
      ramMb: rng.pick([512, 1024, 2048, 4096, 8192]),
      ha: rng.chance(0.85),
      storage: rng.chance(0.1) ? 'local' : 'shared',
      restartPriority: rng.int(0, 3),
    });
  }
  return vms;
}

function initialOwners(nodes: NodeConfig[], vms: VmSpec[]): Map<VmId, { node: NodeId | null; epoch: number }> {
  const placed = placeVms(
    nodes.map((n) => ({ nodeid: n.nodeid, ramMb: n.ramMb, usedRamMb: 0, vmCount: 0, reserve: n.reserve === true, maintenance: n.maintenance === true })),
    vms.map((v) => ({ id: v.id, ramMb: v.ramMb, restartPriority: v.restartPriority })),
  );
  const owners = new Map<VmId, { node: NodeId | null; epoch: number }>();
  for (const v of vms) owners.set(v.id, { node: null, epoch: 0 });
  for (const p of placed.placements) owners.set(p.vm, { node: p.node, epoch: 1 });
  return owners;
}

// Faults: random schedules (generated up front from the seed, so a schedule is a pure function of
// (seed, nodes, steps, mix) and can be replayed and printed), and how each one is applied.

import type { NodeId } from '../core/types.ts';
import type { Prng } from './prng.ts';
import type { World } from './world.ts';

export type Fault =
  /** Split the control network: group index per node (index 0 = n1). */
  | { kind: 'partition'; groups: number[] }
  | { kind: 'heal-partition' }
  /** Control (corosync) link of one node. */
  | { kind: 'ctrl'; node: NodeId; up: boolean }
  /** Public link: decides whether the test IP answers. */
  | { kind: 'pub'; node: NodeId; up: boolean }
  | { kind: 'storage'; node: NodeId; up: boolean }
  /** Power loss; 'boot' powers it on again. */
  | { kind: 'crash'; node: NodeId }
  | { kind: 'boot'; node: NodeId }
  /** SIGSTOP of the agent only (corosync keeps running). */
  | { kind: 'pause'; node: NodeId; ms: number }
  /** SIGSTOP of corosync and the agent (the kernel still holds addresses, the watchdog runs). */
  | { kind: 'freeze'; node: NodeId; ms: number }
  /** New priority in the desired config (from the DB). */
  | { kind: 'prio'; node: NodeId; prio: number }
  | { kind: 'maintenance'; node: NodeId; on: boolean }
  /** Admin election request entered on this node. */
  | { kind: 'elect'; node: NodeId }
  /** The next VM stop on this node hangs for a long time. */
  | { kind: 'stop-hang'; node: NodeId }
  /** The agent process dies (VMs, addresses and corosync stay) and restarts after `ms`. */
  | { kind: 'agent-crash'; node: NodeId; ms: number }
  /** The node's lease timing changes (corosync.conf reload with another token): only in 'mixed' lease schedules. */
  | { kind: 'lease-change'; node: NodeId; leaseMs: number }
  /** mariadbd dies; it comes back (read-only, replication stopped) after `ms`. */
  | { kind: 'db-kill'; node: NodeId; ms: number };

export type FaultKind = Fault['kind'];

/** Relative weights of fault families. */
export interface FaultMix {
  partition: number;
  linkCut: number;
  isolate: number;
  flap: number;
  pubCut: number;
  storageCut: number;
  crash: number;
  pause: number;
  freeze: number;
  prio: number;
  maintenance: number;
  elect: number;
  stopHang: number;
  agentCrash: number;
  dbKill: number;
}

export const DEFAULT_FAULT_MIX: Readonly<FaultMix> = Object.freeze({
  partition: 3,
  linkCut: 3,
  isolate: 2,
  flap: 1,
  pubCut: 1,
  storageCut: 2,
  crash: 3,
  pause: 3,
  freeze: 2,
  prio: 2,
  maintenance: 1,
  elect: 1,
  stopHang: 1,
  agentCrash: 2,
  dbKill: 2,
});

export interface ScheduledFault {
  at: number;
  fault: Fault;
}

export function describeFault(f: Fault): string {
  switch (f.kind) {
    case 'partition':
      return `partition ${f.groups.map((g, i) => `n${i + 1}:${g}`).join(' ')}`;
    case 'heal-partition':
      return 'heal partition';
    case 'ctrl':
    case 'pub':
    case 'storage':
      return `${f.kind} link n${f.node} ${f.up ? 'up' : 'down'}`;
    case 'pause':
    case 'freeze':
      return `${f.kind} n${f.node} for ${f.ms} ms`;
    case 'agent-crash':
      return `agent crash n${f.node}, restart after ${f.ms} ms`;
    case 'lease-change':
      return `lease timing of n${f.node} -> ${f.leaseMs} ms`;
    case 'db-kill':
      return `kill mariadbd on n${f.node}, back after ${f.ms} ms`;
    case 'prio':
      return `prio n${f.node} = ${f.prio}`;
    case 'maintenance':
      return `maintenance n${f.node} ${f.on ? 'on' : 'off'}`;
    default:
      return `${f.kind} n${f.node}`;
  }
}

/**
 * Faults over [0, durationMs): roughly one fault family every `meanGapMs`, each with its repair
 * (some repairs fall after the fault phase; the heal phase repairs everything anyway).
 */
export function generateFaults(rng: Prng, nodeCount: number, durationMs: number, mix: FaultMix, meanGapMs: number): ScheduledFault[] {
  const out: ScheduledFault[] = [];
  const node = (): NodeId => rng.int(1, nodeCount);
  const add = (at: number, fault: Fault): void => {
    out.push({ at: Math.round(at), fault });
  };
  let t = rng.int(500, Math.max(600, meanGapMs));
  while (t < durationMs) {
    const family = rng.weighted(mix as unknown as Record<keyof FaultMix, number>);
    const n = node();
    switch (family) {
      case 'partition': {
        const groups = Array.from({ length: nodeCount }, () => rng.int(0, 1));
        add(t, { kind: 'partition', groups });
        add(t + rng.int(300, 15_000), { kind: 'heal-partition' });
        break;
      }
      case 'linkCut':
        add(t, { kind: 'ctrl', node: n, up: false });
        add(t + rng.int(200, 20_000), { kind: 'ctrl', node: n, up: true });
        break;
      case 'isolate': {
        const d = rng.int(500, 20_000);
        add(t, { kind: 'ctrl', node: n, up: false });
        add(t + rng.int(0, 300), { kind: 'pub', node: n, up: false });
        add(t + d, { kind: 'ctrl', node: n, up: true });
        add(t + d + rng.int(0, 300), { kind: 'pub', node: n, up: true });
        break;
      }
      case 'flap': {
        let at = t;
        const flaps = rng.int(3, 4);
        for (let i = 0; i < flaps; i++) {
          add(at, { kind: 'ctrl', node: n, up: false });
          at += rng.int(1_500, 6_000);
          add(at, { kind: 'ctrl', node: n, up: true });
          at += rng.int(1_000, 4_000);
        }
        break;
      }
      case 'pubCut':
        add(t, { kind: 'pub', node: n, up: false });
        add(t + rng.int(500, 20_000), { kind: 'pub', node: n, up: true });
        break;
      case 'storageCut':
        add(t, { kind: 'storage', node: n, up: false });
        add(t + rng.int(500, 20_000), { kind: 'storage', node: n, up: true });
        break;
      case 'crash':
        add(t, { kind: 'crash', node: n });
        add(t + rng.int(1_000, 25_000), { kind: 'boot', node: n });
        break;
      case 'pause':
        add(t, { kind: 'pause', node: n, ms: rng.chance(0.5) ? rng.int(50, 1_500) : rng.int(1_500, 6_000) });
        break;
      case 'freeze':
        add(t, { kind: 'freeze', node: n, ms: rng.chance(0.5) ? rng.int(50, 1_500) : rng.int(1_500, 6_000) });
        break;
      case 'prio':
        add(t, { kind: 'prio', node: n, prio: rng.pick([10, 20, 50, 100, 200]) });
        break;
      case 'maintenance':
        add(t, { kind: 'maintenance', node: n, on: true });
        add(t + rng.int(1_000, 20_000), { kind: 'maintenance', node: n, on: false });
        break;
      case 'elect':
        add(t, { kind: 'elect', node: n });
        break;
      case 'stopHang':
        add(t, { kind: 'stop-hang', node: n });
        break;
      case 'agentCrash':
        add(t, { kind: 'agent-crash', node: n, ms: rng.chance(0.5) ? rng.int(50, 1_500) : rng.int(1_500, 8_000) });
        break;
      case 'dbKill':
        add(t, { kind: 'db-kill', node: n, ms: rng.chance(0.5) ? rng.int(300, 2_000) : rng.int(2_000, 10_000) });
        break;
    }
    t += rng.int(Math.round(meanGapMs / 3), Math.round((meanGapMs * 5) / 3));
  }
  return out.sort((a, b) => a.at - b.at);
}

/** Apply one fault to the world. */
export function applyFault(w: World, f: Fault): void {
  w.log(`FAULT ${describeFault(f)}`);
  switch (f.kind) {
    case 'partition':
      f.groups.forEach((g, i) => {
        const n = w.nodes[i];
        if (n) n.group = g;
      });
      return w.corosync.topologyChanged();
    case 'heal-partition':
      for (const n of w.nodes) n.group = 0;
      return w.corosync.topologyChanged();
    case 'ctrl':
      w.node(f.node).ctrlUp = f.up;
      return w.corosync.topologyChanged();
    case 'pub':
      w.node(f.node).pubUp = f.up;
      return;
    case 'storage':
      w.node(f.node).storageUp = f.up;
      return;
    case 'crash':
      return w.reset(w.node(f.node), 'power loss', false);
    case 'boot': {
      const n = w.node(f.node);
      if (!n.up && !n.autoReboot) w.boot(n);
      return;
    }
    case 'pause': {
      const n = w.node(f.node);
      if (!n.agentUp || n.agentPaused) return;
      n.agentPaused = true;
      w.schedule(w.now + f.ms, { kind: 'resume-agent', node: n.id, agentGen: n.agentGen });
      return;
    }
    case 'freeze': {
      const n = w.node(f.node);
      if (!n.up || n.frozen) return;
      n.frozen = true;
      w.corosync.topologyChanged();
      w.schedule(w.now + f.ms, { kind: 'resume', node: n.id, gen: n.gen, what: 'freeze' });
      return;
    }
    case 'prio':
    case 'maintenance': {
      w.desiredNodes = w.desiredNodes.map((x) => (x.nodeid !== f.node ? x : f.kind === 'prio' ? { ...x, prio: f.prio } : { ...x, maintenance: f.on }));
      for (const n of w.nodes) {
        if (n.agentUp) w.arrive(n, { type: 'desired-config', now: 0, nodes: w.desiredNodes.map((x) => ({ ...x })) }, -1, 0, false, w.rng.int(0, 20));
      }
      return;
    }
    case 'elect': {
      const n = w.node(f.node);
      if (n.agentUp) w.arrive(n, { type: 'admin', now: 0, request: { kind: 'elect' } }, -1, 0, false);
      return;
    }
    case 'stop-hang':
      w.node(f.node).stopHang = true;
      return;
    case 'agent-crash':
      return w.crashAgent(w.node(f.node), f.ms);
    case 'lease-change':
      return w.changeLease(f.node, f.leaseMs);
    case 'db-kill':
      return w.db.kill(w.node(f.node), f.ms);
  }
}

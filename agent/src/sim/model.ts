// Data types of the simulated world: timing of the environment, the event queue entries,
// corosync rings, effect queues and the per-node state.

import type { CoreOptions, NodeCore, Sabotage } from '../core/node-core.ts';
import type { CoreAction, CoreEvent, NodeConfig, NodeId, Settings, VmId, VmSpec } from '../core/types.ts';
import type { DbEv } from './database.ts';
import type { Fault } from './faults.ts';
import type { Scheduled } from './heap.ts';
import type { Prng } from './prng.ts';

export type Range = readonly [number, number];

/** Latencies and corosync timing of the simulated environment. */
export interface SimTiming {
  /** corosync token timeout and consensus: a lost member is noticed after token + consensus. */
  tokenMs: number;
  consensusMs: number;
  /** New or returning members join a ring after this. */
  joinMs: number;
  /** Time to put a multicast into the total order, then to hand it to each member. */
  cpgMs: Range;
  deliverMs: Range;
  ipMs: Range;
  panelMs: Range;
  dbMs: Range;
  vmStartMs: Range;
  vmStopMs: Range;
  hbWriteMs: Range;
  /** Some writes succeed but too slowly to count. */
  slowWriteChance: number;
  hbReadMs: Range;
  storageErrorMs: Range;
  probeMs: Range;
  metaMs: Range;
  configMs: Range;
  vmStartFailChance: number;
  rebootMs: Range;
  /** The agent starts this long after corosync (boot): agents of a cluster start staggered. */
  agentStartMs: Range;
  /** Some agents start much later (slow unit, or never within the startup grace). */
  agentLateChance: number;
  agentLateMs: Range;
  /** Duration of a hung VM stop. */
  hangMs: number;
  // The database (database.ts)
  /** Between two client writes (through the cluster IP). */
  clientMs: Range;
  /** Replication and its acknowledgement, one way. */
  replMs: Range;
  /** A promotion's survey of the copies (connect, read state, freeze). */
  surveyMs: Range;
  /** A promotion catching up from a more advanced copy. */
  catchUpMs: Range;
  /** How long a promotion waits for a majority to take its epoch row. */
  epochWaitMs: number;
  /** How long a follow waits for the master to become writable. */
  masterWaitMs: number;
  /** A failed DB action is retried this often until a newer one replaces it. */
  dbRetryMs: number;
  /** Re-cloning a diverged copy. */
  rebuildMs: Range;
}

export const DEFAULT_TIMING: Readonly<SimTiming> = Object.freeze({
  tokenMs: 1000,
  consensusMs: 1200,
  joinMs: 300,
  cpgMs: [1, 3] as Range,
  deliverMs: [0, 2] as Range,
  ipMs: [20, 200] as Range,
  panelMs: [50, 400] as Range,
  dbMs: [20, 200] as Range,
  vmStartMs: [100, 800] as Range,
  vmStopMs: [100, 800] as Range,
  hbWriteMs: [2, 40] as Range,
  slowWriteChance: 0.02,
  hbReadMs: [2, 40] as Range,
  storageErrorMs: [50, 800] as Range,
  probeMs: [1, 30] as Range,
  metaMs: [5, 60] as Range,
  configMs: [50, 500] as Range,
  vmStartFailChance: 0.03,
  rebootMs: [1500, 4000] as Range,
  agentStartMs: [0, 1200] as Range,
  agentLateChance: 0.08,
  agentLateMs: [4000, 9000] as Range,
  hangMs: 12_000,
  clientMs: [100, 500] as Range,
  replMs: [1, 8] as Range,
  surveyMs: [5, 60] as Range,
  catchUpMs: [10, 300] as Range,
  epochWaitMs: 2000,
  masterWaitMs: 5000,
  dbRetryMs: 2000,
  rebuildMs: [500, 3000] as Range,
});

/** Simulator-only sabotage of the database model (the checker must catch it). */
export type DbSabotage =
  /** Acknowledge a write once one replica has it (MariaDB semi-sync), not a majority. */
  | 'one-ack'
  /** Promote from whatever copies answer, writable without a majority holding the epoch. */
  | 'no-majority'
  /** Re-clone a diverged copy only from a writable primary (liveness: must deadlock sometimes). */
  | 'clone-from-writable-only';
export type SimSabotage = Sabotage | DbSabotage;
export const DB_SABOTAGES: readonly DbSabotage[] = ['one-ack', 'no-majority', 'clone-from-writable-only'];

export interface Violation {
  at: number;
  invariant: string;
  message: string;
}

export type EvBody =
  | { kind: 'tick'; node: NodeId; agentGen: number }
  | { kind: 'arrive'; node: NodeId; agentGen: number; ev: CoreEvent; ring: number; pos: number; majority: boolean }
  | { kind: 'done'; node: NodeId; gen: number; agentGen: number; key: string; action: CoreAction; ok: boolean; startedAt: number }
  | { kind: 'sequence'; from: NodeId; agentGen: number; msg: unknown }
  | { kind: 'agent-start'; node: NodeId; gen: number }
  | { kind: 'reform' }
  | { kind: 'fault'; fault: Fault }
  | { kind: 'watchdog'; node: NodeId; gen: number }
  | { kind: 'resume'; node: NodeId; gen: number; what: 'pause' | 'freeze' }
  | { kind: 'resume-agent'; node: NodeId; agentGen: number }
  | { kind: 'reboot'; node: NodeId; gen: number }
  | { kind: 'config-lands'; version: number; nodes: NodeConfig[] }
  | { kind: 'heal' }
  | { kind: 'settle'; deadline: number; stableMs: number }
  | { kind: 'db'; ev: DbEv }
  | { kind: 'end' };

export type Ev = Scheduled & EvBody;

export interface Ring {
  id: number;
  members: NodeId[];
  key: string;
  alive: boolean;
  majority: boolean;
  /** CPG group: which agent incarnation of which member has joined (a subset of the ring). */
  joined: Map<NodeId, number>;
  pos: number;
  /** Master seen by synced members after processing each position: they must agree. */
  masterAt: Map<number, NodeId | null>;
}

export interface Queue {
  busy: boolean;
  items: CoreAction[];
  /** The action in progress and its planned outcome. */
  current: { action: CoreAction; ok: boolean; startedAt: number } | null;
}

export interface Backlogged {
  ev: CoreEvent;
  ring: number;
  pos: number;
  majority: boolean;
}

export interface SimNode {
  id: NodeId;
  /** Powered and running (kernel, corosync). */
  up: boolean;
  /** Bumped on every reset: events of an older generation are void. */
  gen: number;
  /** The agent process runs (it can crash and restart while the node stays up). */
  agentUp: boolean;
  agentGen: number;
  /** A freshly started agent still needs the current votequorum state. */
  needsQuorum: boolean;
  incarnation: number;
  autoReboot: boolean;
  agentPaused: boolean;
  frozen: boolean;
  ctrlUp: boolean;
  pubUp: boolean;
  storageUp: boolean;
  group: number;
  core: NodeCore | null;
  backlog: Backlogged[];
  ringId: number | null;
  lastArrival: number;
  queues: Map<string, Queue>;
  /** Physical state: what the kernel / hypervisor really has. */
  phys: { ip: boolean; panel: boolean; vms: Map<VmId, 'starting' | 'running' | 'stopping'> };
  /** Mirrors of what the core asked for (from its actions). */
  wantIp: boolean;
  wantPanel: boolean;
  /** PromoteDatabase emitted and no DemoteDatabase since. */
  wantDb: boolean;
  processedQuorate: boolean | null;
  lastOwnRenewSentAt: number | null;
  /** The lease that renewal announced (older cores: none; then the node's settings). */
  lastOwnRenewLeaseMs: number | null;
  fencedAt: number | null;
  watchdogAt: number;
  wdScheduledAt: number;
  stopHang: boolean;
  lastInventoryAt: number;
  lastSequenced: number;
  /** The last term the node's agents saw (the daemon persists it: CoreOptions.initialTerm). */
  persistedTerm: number;
}

export interface WorldConfig {
  rng: Prng;
  nodeCount: number;
  nodes: NodeConfig[];
  vms: VmSpec[];
  owners: Map<VmId, { node: NodeId | null; epoch: number }>;
  settings: Settings;
  /**
   * Per-node settings (nodes disagreeing on the lease, as during a corosync.conf reload or an
   * upgrade); nodes not listed use `settings`. A 'lease-change' fault updates it.
   */
  nodeSettings?: Map<NodeId, Settings>;
  timing: SimTiming;
  makeCore: (id: NodeId, settings: Settings, options: CoreOptions) => NodeCore;
  sabotage: SimSabotage | undefined;
  trace: boolean;
}

export function newSimNode(id: NodeId): SimNode {
  return {
    id,
    up: false,
    gen: 0,
    agentUp: false,
    agentGen: 0,
    needsQuorum: false,
    incarnation: 0,
    autoReboot: false,
    agentPaused: false,
    frozen: false,
    ctrlUp: true,
    pubUp: true,
    storageUp: true,
    group: 0,
    core: null,
    backlog: [],
    ringId: null,
    lastArrival: 0,
    queues: new Map(),
    phys: { ip: false, panel: false, vms: new Map() },
    wantIp: false,
    wantPanel: false,
    wantDb: false,
    processedQuorate: null,
    lastOwnRenewSentAt: null,
    lastOwnRenewLeaseMs: null,
    fencedAt: null,
    watchdogAt: Infinity,
    wdScheduledAt: Infinity,
    stopHang: false,
    lastInventoryAt: 0,
    lastSequenced: 0,
    persistedTerm: 0,
  };
}

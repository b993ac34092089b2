// Types shared by the pure HA core, the daemon that wires it, and the simulator.
// Everything here is plain data: JSON-serialisable, no classes, no clocks.

export type NodeId = number;
export type VmId = string;

// ---------------------------------------------------------------------------
// Settings

export interface Settings {
  /** Expected interval between `tick` events. Only used to size margins. */
  tickMs: number;
  /**
   * A master may hold the cluster IP/panel for this long after sending its last delivered renewal.
   * It must outlast a corosync membership transition (during which nothing is delivered), or
   * every member's failure makes the master step down: see transitionLeaseMs() in lease.ts. The
   * daemon sets it from the running corosync's timing unless the agent's config sets it.
   */
  leaseMs: number;
  /** The master multicasts a lease renewal this often (must be well below leaseMs). */
  leaseRenewMs: number;
  /**
   * After its lease expired a holder has this long to release the IP and stop the panel; its
   * watchdog resets the node at lastRenewal + leaseMs + releaseBudgetMs otherwise.
   */
  releaseBudgetMs: number;
  /**
   * A VM start announcement (`start`) must come back, and the VM be written into our heartbeat,
   * within this long after it was sent; a master relocating a departed node's VMs reads its
   * heartbeat only after it left + startWindowMs + leaseMarginMs. Not tied to leaseMs (which
   * follows corosync's transition time), so VM recovery does not slow down with a longer lease.
   */
  startWindowMs: number;
  /**
   * Extra slack a new master adds on top of leaseMs + releaseBudgetMs. Also the time a freshly
   * started agent has to release an address/panel left over by a crashed predecessor.
   */
  leaseMarginMs: number;
  /** A node that must self-fence (stop its VMs) has this long before it resets itself. */
  fenceTimeoutMs: number;
  /** A storage heartbeat that has not changed for this long (reader's clock) is stale. */
  storageTimeoutMs: number;
  /**
   * Heartbeat write period. Unless set: 1000 ms, or storageTimeoutMs / 4 when that is shorter, so
   * that one slow write (storage busy for up to storageTimeoutMs minus one period) is not taken
   * for storage isolation: with storageTimeoutMs 2000 and writes every 1000 ms, a single write
   * held up 1.2 s by a burst of fsyncs on the shared filesystem had the master stop every VM.
   */
  storageWriteMs: number;
  /**
   * Heartbeat read period. A crashed node's VMs move once its heartbeat is proven unchanged for
   * storage + fence, and the proof runs from the first read that showed the last value to the
   * latest read that still shows it: each read period of lag on both ends delays recovery.
   */
  storageReadMs: number;
  /** A heartbeat write only counts as good if it completed within this long. */
  storageWriteMaxMs: number;
  /** Test-IP probe period. */
  testIpProbeMs: number;
  /** A probe result older than this is ignored (treated as unreachable). */
  testIpFreshMs: number;
  /** Move the master to a better node when one appears (default: no needless failback). */
  failback: boolean;
  /** network_unstable: at least `unstableFlaps` outages shorter than `unstableMaxOutageMs` within `unstableWindowMs`. */
  unstableWindowMs: number;
  unstableFlaps: number;
  unstableMaxOutageMs: number;
  /** N+1 reserve nodes: they take VMs only when no regular node can. (Also settable per node.) */
  reserveNodes: NodeId[];
  /** Wait this long before retrying a VM start that failed. */
  vmRetryMs: number;
  /**
   * Startup grace: while every member of a majority CPG view is a freshly started agent (started
   * less than this long ago and never saw a master) and some node of the corosync quorum has no
   * agent in the view yet, no fresh master is elected, so a cluster that boots together elects
   * its best node rather than whoever joined first. Never delays a failover (an established
   * master, or any member past its grace, ends the wait). 0 = off.
   */
  startupGraceMs: number;
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  tickMs: 100,
  // = transitionLeaseMs({ tokenMs: 1000, consensusMs: 1200 }, 250): covers a membership transition
  // of the recommended corosync.conf (token 1000, token_coefficient 0, consensus 1.2 x token). The
  // daemon replaces it with the value for the running corosync's timing (lease.ts).
  leaseMs: 2750,
  leaseRenewMs: 250,
  // Not shortened with the longer lease: a tick to notice the expiry plus removing the address
  // (the watchdog waits for the IP only, not for the panel's up to 2 s exit), and a budget shorter
  // than the real release time turns every lease expiry into a watchdog reset of the node and its
  // VMs. The lease is what grew; the time a holder needs to let go did not.
  releaseBudgetMs: 1000,
  // The window the VM start handshake always had (it was leaseMs, 1000 by default).
  startWindowMs: 1000,
  leaseMarginMs: 200,
  fenceTimeoutMs: 5000,
  storageTimeoutMs: 5000,
  storageWriteMs: 1000,
  storageReadMs: 250, // a few small files 4x a second; 1000 made VM recovery ~0.75 s slower on average
  storageWriteMaxMs: 1000,
  testIpProbeMs: 1000,
  testIpFreshMs: 3000,
  failback: false,
  unstableWindowMs: 600_000,
  unstableFlaps: 3,
  unstableMaxOutageMs: 15_000,
  reserveNodes: [],
  vmRetryMs: 5000,
  startupGraceMs: 5000,
});

/** Merge partial settings over the defaults. */
export function resolveSettings(partial?: Partial<Settings>): Settings {
  const s: Settings = { ...DEFAULT_SETTINGS, reserveNodes: [...DEFAULT_SETTINGS.reserveNodes] };
  if (partial) {
    for (const [k, v] of Object.entries(partial)) {
      if (v !== undefined) (s as unknown as Record<string, unknown>)[k] = v;
    }
  }
  if (partial?.storageWriteMs === undefined) {
    s.storageWriteMs = Math.min(DEFAULT_SETTINGS.storageWriteMs, Math.max(s.tickMs, Math.floor(s.storageTimeoutMs / 4)));
  }
  return s;
}

/** Relations the safety argument relies on. Empty list = settings are safe. */
export function settingsProblems(s: Settings): string[] {
  const p: string[] = [];
  if (!(s.leaseRenewMs > 0 && s.leaseRenewMs * 2 <= s.leaseMs)) p.push(`leaseRenewMs ${s.leaseRenewMs} must be > 0 and <= leaseMs/2 (${s.leaseMs / 2})`);
  if (!(s.releaseBudgetMs >= 2 * s.tickMs)) p.push(`releaseBudgetMs ${s.releaseBudgetMs} must be >= 2*tickMs (${2 * s.tickMs}): a tick to notice plus the release itself`);
  if (!(s.startWindowMs >= 2 * s.tickMs)) p.push(`startWindowMs ${s.startWindowMs} must be >= 2*tickMs (${2 * s.tickMs})`);
  if (!(s.leaseMarginMs >= s.tickMs)) p.push(`leaseMarginMs ${s.leaseMarginMs} must be >= tickMs ${s.tickMs}`);
  if (!(s.storageWriteMs < s.storageTimeoutMs)) p.push(`storageWriteMs ${s.storageWriteMs} must be < storageTimeoutMs ${s.storageTimeoutMs}`);
  if (!(s.storageWriteMaxMs < s.fenceTimeoutMs)) p.push(`storageWriteMaxMs ${s.storageWriteMaxMs} must be < fenceTimeoutMs ${s.fenceTimeoutMs}`);
  if (!(s.fenceTimeoutMs > s.tickMs)) p.push(`fenceTimeoutMs must be > tickMs`);
  if (!(Number.isFinite(s.startupGraceMs) && s.startupGraceMs >= 0)) p.push(`startupGraceMs ${s.startupGraceMs} must be a finite number >= 0`);
  return p;
}

// ---------------------------------------------------------------------------
// Configuration and VMs

export interface NodeConfig {
  nodeid: NodeId;
  prio: number;
  addr?: string;
  replication?: boolean;
  /** Never chosen for VM placement. */
  maintenance?: boolean;
  /** N+1 reserve: takes VMs only when no regular node can. */
  reserve?: boolean;
  /** RAM available for VMs; undefined = not limited. */
  ramMb?: number;
}

export interface VmSpec {
  id: VmId;
  ramMb: number;
  /** Restarted on another node when its node fails. */
  ha: boolean;
  /** Local-disk VMs cannot be recovered elsewhere. */
  storage: 'shared' | 'local';
  /** Higher restarts first. */
  restartPriority: number;
  /** Default 'running'. */
  desired?: 'running' | 'stopped';
}

export interface Ownership {
  vm: VmId;
  node: NodeId | null;
  /** Monotonically increasing per VM; only the master bumps it. */
  epoch: number;
}

/** What a node says about itself. 'member' is the only good one. */
export type SelfStatus = 'starting' | 'member' | 'excluded' | 'network_isolation' | 'storage_isolation';

/** What the cluster shows for a configured node. */
export type NodeStatus =
  | 'leader'
  | 'member'
  | 'network_isolation'
  | 'storage_isolation'
  | 'full_failure'
  | 'excluded'
  | 'network_unstable'
  | 'unknown'
  | 'offline';

/** Content of a node's heartbeat file on shared storage. */
export interface Heartbeat {
  nodeid: NodeId;
  /** Differs for every agent start, so a restarted agent's seq 1 is still a change. */
  incarnation: number;
  seq: number;
  selfStatus: SelfStatus;
  /** VMs that are starting, running or stopping here (anything not confirmed stopped). */
  runningVms: VmId[];
}

// ---------------------------------------------------------------------------
// CPG messages (multicast by the core, delivered back in total order to every member)

/** [vm, owner, epoch] triples: compact on the wire. */
export type OwnerTriple = [VmId, NodeId | null, number];

/** What every member says about itself, in its hello and in every report. */
export interface ReportFields {
  prio: number;
  status: SelfStatus;
  running: VmId[];
  configVersion: number;
  nodeCount: number;
  failback: boolean;
  /**
   * > 0: the sender is a freshly started agent that never saw a master, and its startup grace
   * ends in this many ms. Absent (older agents) = 0.
   */
  graceLeftMs?: number;
  /** The sender's votequorum members if it is quorate, else []. Absent (older agents) = []. */
  quorumMembers?: NodeId[];
  /** Those of `running` that are still starting (not confirmed up). Absent (older agents) = []. */
  starting?: VmId[];
  /**
   * The sender reads the lease terms in renewals (true from this version on). Absent = an older
   * agent, which waits out a holder's lease with its own leaseMs (1000 by default): while one is
   * in the view, the master holds with at most LEGACY_LEASE_MS (lease.ts).
   */
  leaseTerms?: boolean;
  /**
   * false: the sender's database cannot become primary (mariadbd down, diverged and being
   * re-cloned, replication broken, its last promotion failed because it is behind): it is not
   * elected master while another good member's database can be. Absent = eligible (older agents,
   * nodes without a database section); present once the sender's daemon has judged it.
   */
  dbEligible?: boolean;
  /** Why not, for people (sent with dbEligible false), e.g. "diverged, being re-cloned from n2". */
  dbReason?: string;
}

export type CpgMessage =
  /** Sent by every member after each membership change; the round ends when all members' hellos are delivered. */
  | ({
      v: 1;
      kind: 'hello';
      members: NodeId[];
      term: number;
      /** "I am the master of a majority partition" at the time of sending. */
      claim: boolean;
      /** The sender's previous view had a majority. */
      majority: boolean;
      /** Time since the sender last saw a lease renewal (or since it started, if renewedBy is null). */
      msSinceRenewal: number;
      /** Whose renewal that was (null: none seen since the sender started). */
      renewedBy: NodeId | null;
      /** The terms that renewal carried (absent: older agent, or the renewal carried none). */
      renewLeaseMs?: number;
      renewReleaseBudgetMs?: number;
      owners: OwnerTriple[];
    } & ReportFields)
  /**
   * Master lease renewal; its delivery back to the master proves the ring works. `leaseMs` and
   * `releaseBudgetMs` are the terms of this renewal: the sender holds at most leaseMs after
   * sentAt and is reset by its watchdog releaseBudgetMs after that, so every node computes
   * "certainly gone" with the holder's values (absent in older agents' renewals: the
   * receiver's own settings).
   */
  | { v: 1; kind: 'renew'; term: number; sentAt: number; leaseMs?: number; releaseBudgetMs?: number }
  /** Member status report, sent whenever it changes (also when the grace ends or the quorum members change). */
  | ({ v: 1; kind: 'report' } & ReportFields)
  /** Admin asked for an election (best prio wins, even without failback). */
  | { v: 1; kind: 'elect'; reason: string }
  /** The sender (a former master) has released the cluster IP and panel. */
  | { v: 1; kind: 'released'; term: number }
  /** The master's VM table: specs plus owners. */
  | { v: 1; kind: 'vm-table'; term: number; vms: VmSpec[]; owners: OwnerTriple[] }
  /** Ownership change; applied only if its preconditions still hold at delivery. */
  | { v: 1; kind: 'assign'; term: number; vm: VmId; from: NodeId | null; fromEpoch: number; to: NodeId; epoch: number; reason: string }
  /** An owner announces it is about to start a VM; it starts only on (fresh) delivery of this. */
  | { v: 1; kind: 'start'; vm: VmId; epoch: number; sentAt: number }
  /**
   * Maintenance drain, step 1 (master): `node` (the owner at `epoch`, in maintenance) must stop
   * the VM and not start it again while the drain lasts.
   */
  | { v: 1; kind: 'drain'; term: number; vm: VmId; node: NodeId; epoch: number; reason: string }
  /** Drain step 2 (the drained node): the VM is stopped here; the master may now assign it elsewhere. */
  | { v: 1; kind: 'drained'; term: number; vm: VmId; epoch: number };

export type CpgMessageKind = CpgMessage['kind'];

// ---------------------------------------------------------------------------
// Events (inputs). `now` is a monotonic millisecond clock of the local node.

export type AdminRequest = { kind: 'elect' };

export type CoreEvent =
  | { type: 'tick'; now: number }
  /** From votequorum: is this node's partition quorate, and who is in it. */
  | { type: 'quorum'; now: number; quorate: boolean; members: NodeId[] }
  /** Local configuration (corosync.conf nodelist + product settings). */
  | { type: 'config'; now: number; version?: number; nodes: NodeConfig[]; settings?: Partial<Settings> }
  /** Desired configuration from the DB (acted upon by the master only). */
  | { type: 'desired-config'; now: number; nodes: NodeConfig[] }
  /** CPG group membership (virtual synchrony: same sequence on every member). */
  | { type: 'cpg-membership'; now: number; members: NodeId[] }
  /** A CPG message, including our own. Validated by the core: garbage is ignored. */
  | { type: 'cpg-message'; now: number; from: NodeId; msg: unknown }
  /** Result of a WriteHeartbeat action. */
  | { type: 'storage-write'; now: number; ok: boolean; seq: number; startedAt: number; error?: string }
  /** Result of a ReadHeartbeats action (all nodes' heartbeat files). */
  | { type: 'storage-read'; now: number; ok: boolean; startedAt: number; heartbeats: Heartbeat[]; error?: string }
  /** Result of a ProbeTestIp action. */
  | { type: 'test-ip'; now: number; reachable: boolean }
  /** VM definitions and owners as recorded on shared storage. */
  | { type: 'vm-inventory'; now: number; vms: VmSpec[]; owners: Ownership[] }
  /** VMs the local driver sees running on this node. Send at startup and on changes. */
  | { type: 'local-vms'; now: number; running: VmId[] }
  /** Completion of an action the effect layer executed. */
  | { type: 'action-result'; now: number; action: CoreAction; ok: boolean; error?: string }
  | { type: 'admin'; now: number; request: AdminRequest }
  /**
   * Can the local database become primary (see ReportFields.dbEligible)? Fed when it changes;
   * before the first one the node counts as eligible (nodes without a database never send it).
   */
  | { type: 'db-health'; now: number; eligible: boolean; reason: string };

export type CoreEventType = CoreEvent['type'];

// ---------------------------------------------------------------------------
// Actions (outputs). Every action carries a human-readable reason.

type Act<T extends string, X = object> = { type: T; reason: string } & X;

export type CoreAction =
  | Act<'AssignClusterIp'>
  | Act<'ReleaseClusterIp'>
  /** `kind`: 'restarted' = this node ran the panel before, 'moved' = the master moved here. */
  | Act<'StartPanel', { kind: 'restarted' | 'moved' }>
  | Act<'StopPanel'>
  /** `term`: the master's term; the epoch the promotion writes is at least this (db-role.ts nextEpoch). */
  | Act<'PromoteDatabase', { term: number }>
  /**
   * Make the local database read-only at once (the node is not, or no longer, the master: step
   * down for any reason, and at startup). Emitted before the IP/panel release of the same step.
   */
  | Act<'DemoteDatabase'>
  | Act<'FollowDatabase', { master: NodeId }>
  /**
   * `epoch` is a fencing token: the driver may refuse if metadata holds a newer epoch.
   * `opId` identifies the operation; echo the action back in `action-result` (only the result
   * of the latest operation on a VM changes what the core believes).
   */
  | Act<'StartVm', { vm: VmId; epoch: number; opId: number }>
  | Act<'StopVm', { vm: VmId; force?: boolean; opId: number }>
  /** Reset this node now (the watchdog would do it anyway). */
  | Act<'Fence'>
  | Act<'DistributeConfig', { version: number; nodes: NodeConfig[] }>
  /** Write VM ownership to shared metadata (compare-and-set: only if epoch is newer). */
  | Act<'SetOwnership', { vm: VmId; node: NodeId | null; epoch: number }>
  | Act<'SendCpg', { msg: CpgMessage }>
  | Act<'SetNodeStatus', { nodeid: NodeId; status: NodeStatus }>
  /** Write our heartbeat file; answer with a `storage-write` event. */
  | Act<'WriteHeartbeat', { heartbeat: Heartbeat }>
  /** Read every heartbeat file; answer with a `storage-read` event. */
  | Act<'ReadHeartbeats'>
  /** Probe the cluster-wide test IP; answer with a `test-ip` event. */
  | Act<'ProbeTestIp'>;

export type CoreActionType = CoreAction['type'];

// ---------------------------------------------------------------------------
// Decisions and results

export type DecisionKind =
  | 'startup'
  | 'quorum'
  | 'membership'
  | 'election'
  | 'lease'
  | 'status'
  | 'storage'
  | 'vm'
  | 'recovery'
  | 'placement'
  | 'config'
  | 'fence'
  | 'ignored'
  | 'action';

export interface Decision {
  at: number;
  kind: DecisionKind;
  reason: string;
}

export interface StepResult {
  actions: CoreAction[];
  decisions: Decision[];
  /**
   * Monotonic time by which the node must be reset if step() is not called again.
   * The daemon pets its hardware watchdog with (watchdogDeadline - now) after every step;
   * if the deadline is already past it must reset at once.
   */
  watchdogDeadline: number;
}

export interface NodeViewEntry {
  nodeid: NodeId;
  addr: string | undefined;
  prio: number;
  status: NodeStatus;
  isMaster: boolean;
  reason: string;
  /** Placement inputs (for the admission check): RAM offered to VMs (absent = unknown), reserve, maintenance. */
  ramMb?: number;
  reserve?: boolean;
  maintenance?: boolean;
  /** May this node's database make it master (absent = not judged, e.g. no database section)? */
  dbEligible?: boolean;
  /** Why not, for people, e.g. "database diverged: being re-cloned from n2" or "database unreachable". */
  dbReason?: string;
  /** Holds a copy of the database (replication on; unset in the config counts as on, like the DB peers). The panel counts these for its majority barrier. */
  replication?: boolean;
}

/** What `corolistener -l` prints. */
export interface NodeView {
  localNodeId: NodeId;
  now: number;
  selfStatus: SelfStatus;
  quorum: { quorate: boolean | null; have: number; need: number; members: NodeId[] };
  cpg: { members: NodeId[]; synced: boolean; term: number; majority: boolean };
  master: NodeId | null;
  isMaster: boolean;
  holdsClusterIp: boolean;
  panelRunning: boolean;
  lease: { fresh: boolean; ageMs: number | null; ipSafeInMs: number };
  nodes: NodeViewEntry[];
  vms: Array<{ vm: VmId; owner: NodeId | null; epoch: number; local: string | null; note: string }>;
  reasons: string[];
}

/** Cheap state summary for the simulator and tests (no allocation-heavy view building). */
export interface CoreRole {
  master: NodeId | null;
  synced: boolean;
  term: number;
  selfStatus: SelfStatus;
  quorate: boolean | null;
  fencedSince: number | null;
  wantsClusterIp: boolean;
  wantsPanel: boolean;
}

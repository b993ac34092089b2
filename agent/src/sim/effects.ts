// The simulated effect layer: executes the core's actions with latency, one after another per
// resource (as the real effect layer must), changes the physical state (cluster IP, panel, VMs,
// shared storage) and answers with result events. Also checks the physical invariants:
// one IP holder, one reachable panel (on the IP), a VM active on one node only, no start with a
// stale epoch. The database actions go to database.ts.

import type { CoreAction, CoreEvent, NodeConfig, NodeId, VmId } from '../core/types.ts';
import type { Queue, SimNode } from './model.ts';
import type { World } from './world.ts';

export class Effects {
  /** Per VM: which nodes have it active (starting, running or stopping). */
  private readonly active = new Map<VmId, Set<NodeId>>();
  vmStartFailChance: number;
  slowWriteChance: number;

  constructor(private readonly w: World) {
    this.vmStartFailChance = w.t.vmStartFailChance;
    this.slowWriteChance = w.t.slowWriteChance;
  }

  execute(n: SimNode, a: CoreAction): void {
    const { w } = this;
    switch (a.type) {
      case 'SendCpg':
        return w.corosync.send(n, a.msg);
      case 'Fence':
        return w.reset(n, `fence: ${a.reason}`, true);
      case 'SetNodeStatus':
        return;
      case 'DistributeConfig':
        w.schedule(w.now + w.rand(w.t.configMs), { kind: 'config-lands', version: a.version, nodes: a.nodes.map((x) => ({ ...x })) });
        return;
      case 'AssignClusterIp':
        n.wantIp = true;
        return this.enqueue(n, 'ip', a);
      case 'ReleaseClusterIp':
        n.wantIp = false;
        return this.enqueue(n, 'ip', a);
      case 'StartPanel':
        n.wantPanel = true;
        return this.enqueue(n, 'panel', a);
      case 'StopPanel':
        n.wantPanel = false;
        return this.enqueue(n, 'panel', a);
      // The database model runs its own queue (first attempt answered, failures retried).
      case 'PromoteDatabase':
        n.wantDb = true;
        return w.db.execute(n, a);
      case 'DemoteDatabase':
        n.wantDb = false;
        return w.db.execute(n, a);
      case 'FollowDatabase':
        return w.db.execute(n, a);
      case 'StartVm':
      case 'StopVm':
        return this.enqueue(n, `vm:${a.vm}`, a);
      case 'WriteHeartbeat':
        return this.enqueue(n, 'hbw', a);
      case 'ReadHeartbeats':
        return this.enqueue(n, 'hbr', a);
      case 'ProbeTestIp':
        return this.enqueue(n, 'probe', a);
      case 'SetOwnership':
        return this.enqueue(n, 'meta', a);
    }
  }

  /** Actions on one resource run one after another. */
  private enqueue(n: SimNode, key: string, a: CoreAction): void {
    let q = n.queues.get(key);
    if (q === undefined) n.queues.set(key, (q = { busy: false, items: [], current: null }));
    if (q.busy) q.items.push(a);
    else this.begin(n, key, q, a);
  }

  private begin(n: SimNode, key: string, q: Queue, a: CoreAction): void {
    const { w } = this;
    const t = w.t;
    q.busy = true;
    let lat = 1;
    let ok = true;
    switch (a.type) {
      case 'AssignClusterIp':
      case 'ReleaseClusterIp':
        lat = a.type === 'ReleaseClusterIp' && !n.phys.ip ? w.rng.int(1, 5) : w.rand(t.ipMs);
        break;
      case 'StartPanel':
      case 'StopPanel':
        lat = a.type === 'StopPanel' && !n.phys.panel ? w.rng.int(1, 5) : w.rand(t.panelMs);
        break;
      case 'StartVm': {
        // Invariants 3/4: nobody else may have this VM active when a start begins.
        for (const other of this.active.get(a.vm) ?? []) {
          if (other !== n.id) {
            w.violate('vm-exclusive', `n${n.id} starts ${a.vm} (epoch ${a.epoch}) while n${other} still has it ${w.node(other).phys.vms.get(a.vm)}`);
            return;
          }
        }
        const meta = w.metadata.get(a.vm);
        if (meta && meta.epoch > a.epoch) {
          w.violate('vm-epoch', `n${n.id} starts ${a.vm} with epoch ${a.epoch} but metadata already has epoch ${meta.epoch} (n${meta.node})`);
          return;
        }
        if (!n.phys.vms.has(a.vm)) this.setVm(n, a.vm, 'starting');
        lat = w.rand(t.vmStartMs);
        ok = !w.rng.chance(this.vmStartFailChance);
        break;
      }
      case 'StopVm':
        if (n.phys.vms.has(a.vm)) this.setVm(n, a.vm, 'stopping');
        lat = n.stopHang ? t.hangMs : w.rand(t.vmStopMs);
        n.stopHang = false;
        break;
      case 'WriteHeartbeat':
        if (!n.storageUp) {
          lat = w.rand(t.storageErrorMs);
          ok = false;
        } else lat = w.rng.chance(this.slowWriteChance) ? w.s.storageWriteMaxMs + w.rng.int(1, 2000) : w.rand(t.hbWriteMs);
        break;
      case 'ReadHeartbeats':
        lat = n.storageUp ? w.rand(t.hbReadMs) : w.rand(t.storageErrorMs);
        break;
      case 'ProbeTestIp':
        lat = w.rand(t.probeMs);
        break;
      case 'SetOwnership':
        lat = w.rand(t.metaMs);
        break;
      default:
        break;
    }
    q.current = { action: a, ok, startedAt: w.now };
    w.schedule(w.now + lat, { kind: 'done', node: n.id, gen: n.gen, agentGen: n.agentGen, key, action: a, ok, startedAt: w.now });
  }

  private setVm(n: SimNode, vm: VmId, state: 'starting' | 'running' | 'stopping' | null): void {
    if (state === null) {
      n.phys.vms.delete(vm);
      this.active.get(vm)?.delete(n.id);
      return;
    }
    n.phys.vms.set(vm, state);
    let s = this.active.get(vm);
    if (s === undefined) this.active.set(vm, (s = new Set()));
    s.add(n.id);
  }

  onDone(id: NodeId, gen: number, agentGen: number, key: string, a: CoreAction, ok: boolean, startedAt: number): void {
    const { w } = this;
    const n = w.node(id);
    // Reset node or dead agent: the outcome was already settled (see settleInFlight).
    if (n.gen !== gen || !n.up || !n.agentUp || n.agentGen !== agentGen) return;
    const result = this.apply(n, a, ok, startedAt);
    if (w.stopped) return;
    w.arrive(n, result ?? { type: 'action-result', now: 0, action: a, ok }, -1, 0, false);
    const q = n.queues.get(key);
    if (q === undefined) return;
    q.busy = false;
    q.current = null;
    const next = q.items.shift();
    if (next !== undefined) this.begin(n, key, q, next);
  }

  /** The agent dies: what it was doing either finished just before, or never happened. */
  settleInFlight(n: SimNode): void {
    for (const q of n.queues.values()) {
      if (q.current === null) continue;
      const a = q.current.action;
      if (this.w.rng.chance(0.5)) this.apply(n, a, q.current.ok, q.current.startedAt);
      else if (a.type === 'StartVm' && n.phys.vms.get(a.vm) === 'starting') this.setVm(n, a.vm, null);
      else if (a.type === 'StopVm' && n.phys.vms.get(a.vm) === 'stopping') this.setVm(n, a.vm, 'running');
      if (this.w.stopped) return;
    }
  }

  /** Power loss: everything physical on the node is gone. */
  powerOff(n: SimNode): void {
    for (const vm of n.phys.vms.keys()) this.active.get(vm)?.delete(n.id);
    n.phys = { ip: false, panel: false, vms: new Map() };
    this.w.db.powerOff(n);
  }

  /** The physical outcome of a completed action; returns the event the agent gets, if special. */
  private apply(n: SimNode, a: CoreAction, okIn: boolean, startedAt: number): CoreEvent | null {
    const { w } = this;
    let ok = okIn;
    switch (a.type) {
      case 'AssignClusterIp': {
        const other = w.nodes.find((m) => m !== n && m.phys.ip);
        if (other) {
          w.violate('one-ip', `n${n.id} got the cluster IP while n${other.id} still holds it`);
          return null;
        }
        n.phys.ip = true;
        return null;
      }
      case 'ReleaseClusterIp':
        n.phys.ip = false;
        return null;
      case 'StartPanel': {
        // The panel listens on the cluster IP only: an old one still exiting without the IP is
        // unreachable (the watchdog does not wait for it); one still on the IP is a split brain.
        const other = w.nodes.find((m) => m !== n && m.phys.panel);
        if (other?.phys.ip) {
          w.violate('one-panel', `n${n.id} started the panel while n${other.id} still runs it on the cluster IP`);
          return null;
        }
        if (other) w.count('panel still exiting elsewhere (without the IP)');
        n.phys.panel = true;
        return null;
      }
      case 'StopPanel':
        n.phys.panel = false;
        w.db.panelStopped(n);
        return null;
      case 'StartVm':
        this.setVm(n, a.vm, ok ? 'running' : null);
        return null;
      case 'StopVm':
        this.setVm(n, a.vm, null);
        return null;
      case 'WriteHeartbeat':
        ok = ok && n.storageUp;
        if (ok) w.files.set(n.id, a.heartbeat);
        return { type: 'storage-write', now: 0, ok, seq: a.heartbeat.seq, startedAt, ...(ok ? {} : { error: 'storage unreachable' }) };
      case 'ReadHeartbeats':
        ok = n.storageUp;
        // The effect layer also re-reads the VM metadata now and then (a file watch in production).
        if (ok && w.now - n.lastInventoryAt >= 2000) {
          n.lastInventoryAt = w.now;
          w.arrive(n, w.inventoryEvent(), -1, 0, false);
        }
        return { type: 'storage-read', now: 0, ok, startedAt, heartbeats: ok ? [...w.files.values()] : [], ...(ok ? {} : { error: 'storage unreachable' }) };
      case 'ProbeTestIp':
        return { type: 'test-ip', now: 0, reachable: n.pubUp };
      case 'SetOwnership': {
        // Compare-and-set on shared metadata: only a newer epoch is written.
        const cur = w.metadata.get(a.vm);
        if (cur === undefined || a.epoch > cur.epoch) w.metadata.set(a.vm, { node: a.node, epoch: a.epoch });
        return null;
      }
      default:
        return null;
    }
  }

  /** corosync.conf distribution reached every node. */
  onConfigLands(version: number, nodes: NodeConfig[]): void {
    const { w } = this;
    if (version <= w.clusterConfig.version) return;
    w.clusterConfig = { version, nodes };
    w.log(`config version ${version} lands: ${nodes.map((x) => `n${x.nodeid}:${x.prio}${x.maintenance ? 'M' : ''}`).join(' ')}`);
    for (const n of w.nodes) {
      if (n.agentUp) w.arrive(n, { type: 'config', now: 0, version, nodes: nodes.map((x) => ({ ...x })) }, -1, 0, false, w.rng.int(0, 50));
    }
  }
}

// What only the acting master does (in a quorate majority view, status 'member'):
// publish the VM table, distribute config, publish node statuses, keep shared metadata in line
// with the agreed owners, and restart VMs of failed nodes elsewhere once that is safe.
//
// The master never changes ownership directly: it multicasts `assign` and everyone (itself
// included) applies it on delivery if its preconditions still hold.

import type { CoreContext } from './context.ts';
import type { HeartbeatSeen } from './heartbeats.ts';
import { loadByNode, placeVms, type PlacementNode, type PlacementVm } from './placement.ts';
import type { Owner } from './replicated.ts';
import { recoverySafety } from './status.ts';
import type { DecisionKind, NodeConfig, NodeId, NodeStatus, OwnerTriple, Ownership, VmId, VmSpec } from './types.ts';

/** What the master needs to know about the rest of the node. */
export interface MasterInputs {
  nodes: readonly NodeConfig[];
  configVersion: number;
  /** Below: stable functions/maps, set up once. */
  statusOf(id: NodeId): { status: NodeStatus; reason: string };
  seen: ReadonlyMap<NodeId, HeartbeatSeen>;
  /** When a node can no longer have started anything (see recoverySafety). */
  goneAt(id: NodeId): number;
}

export class MasterDuties {
  private inventory: { vms: VmSpec[]; owners: Ownership[] } | null = null;
  private inventoryDirty = false;
  private tableSentTerm = -1;
  private desiredNodes: NodeConfig[] | null = null;
  private distributedVersion = 0;
  /**
   * VM -> term and time of an assign we sent that is not applied yet. Our own messages come back
   * within milliseconds: one not applied after vmRetryMs was dropped on delivery (its
   * preconditions no longer held), so the VM is looked at again.
   */
  private readonly pendingAssign = new Map<VmId, { term: number; sentAt: number }>();
  /** The drain we multicast and that is not delivered yet (one at a time). */
  private pendingDrain: { vm: VmId; term: number; sentAt: number } | null = null;
  /** The last drained VM we moved: the next drain waits until it runs on its new node. */
  private drainMoved: { vm: VmId; to: NodeId; at: number } | null = null;
  /** Epochs we asked the effect layer to write to shared metadata. */
  private readonly metaWritten = new Map<VmId, number>();
  private metaDirty = true;
  private readonly shownStatus = new Map<NodeId, NodeStatus>();
  /** Latest recovery/placement note per VM (also shown by view()). */
  readonly vmNotes = new Map<VmId, string>();

  constructor(private readonly ctx: CoreContext) {}

  // ---- inputs

  onInventory(vms: VmSpec[], owners: Ownership[]): void {
    if (this.inventory !== null && sameInventory(this.inventory, vms, owners)) return;
    this.inventory = { vms: vms.map((v) => ({ ...v })), owners: owners.map((o) => ({ ...o })) };
    this.inventoryDirty = true;
    this.metaDirty = true;
  }

  onDesiredConfig(nodes: NodeConfig[]): void {
    this.desiredNodes = nodes.map((n) => ({ ...n }));
  }

  /** New round or new master: whatever we had in flight is void. */
  onNewTerm(): void {
    this.pendingAssign.clear();
    this.pendingDrain = null;
    this.tableSentTerm = -1;
    this.metaDirty = true;
  }

  onTable(): void {
    this.metaDirty = true;
  }

  onOwnerChanged(vm: VmId, to: NodeId, epoch: number, reason: string): void {
    this.pendingAssign.delete(vm);
    this.metaDirty = true;
    if (this.ctx.rep.master === this.ctx.id) {
      this.metaWritten.set(vm, epoch);
      this.ctx.out.act({ type: 'SetOwnership', vm, node: to, epoch, reason });
    }
  }

  /** Owners we know for our hello: agreed ones plus shared metadata (the newest epoch wins). */
  knownOwners(): OwnerTriple[] {
    const owners = new Map<VmId, Owner>(this.ctx.rep.owners);
    for (const o of this.inventory?.owners ?? []) {
      const cur = owners.get(o.vm);
      if (cur === undefined || o.epoch > cur.epoch) owners.set(o.vm, { node: o.node, epoch: o.epoch });
    }
    return [...owners].map(([vm, o]) => [vm, o.node, o.epoch] as OwnerTriple);
  }

  // ---- every step, on the acting master

  run(inputs: MasterInputs): void {
    this.sendVmTable();
    this.distributeConfig(inputs);
    this.publishStatuses(inputs);
    if (this.ctx.rep.tableKnown) {
      this.repairMetadata();
      this.recoverVms(inputs);
    }
  }

  private sendVmTable(): void {
    const { rep, out, id } = this.ctx;
    const needed = (!rep.tableKnown && this.tableSentTerm !== rep.term) || (rep.tableKnown && this.inventoryDirty);
    if (!needed) return;
    this.inventoryDirty = false;
    const specs = this.inventory?.vms ?? [...rep.specs.values()];
    const owners = new Map<VmId, Owner>();
    for (const spec of specs) owners.set(spec.id, rep.ownerOf(spec.id));
    // Shared metadata may know a newer epoch (e.g. after a full cluster restart).
    for (const o of this.inventory?.owners ?? []) {
      const cur = owners.get(o.vm);
      if (cur !== undefined && o.epoch > cur.epoch) owners.set(o.vm, { node: o.node, epoch: o.epoch });
    }
    const triples = [...owners].map(([vm, o]) => [vm, o.node, o.epoch] as OwnerTriple);
    if (rep.tableKnown && sameTable(specs, triples, rep.specs, rep.owners)) return;
    this.tableSentTerm = rep.term;
    out.send({ v: 1, kind: 'vm-table', term: rep.term, vms: specs, owners: triples }, `master n${id}: VM table (${specs.length} VMs)`);
  }

  private distributeConfig(inputs: MasterInputs): void {
    const desired = this.desiredNodes;
    if (desired === null || this.distributedVersion > inputs.configVersion) return;
    if (sameNodes(desired, inputs.nodes)) {
      this.desiredNodes = null;
      return;
    }
    const version = inputs.configVersion + 1;
    this.distributedVersion = version;
    this.ctx.out.act({ type: 'DistributeConfig', version, nodes: desired, reason: `desired node list/priorities differ from config version ${inputs.configVersion}` });
    this.ctx.out.decide('config', `distributing config version ${version}`);
  }

  private publishStatuses(inputs: MasterInputs): void {
    for (const n of inputs.nodes) {
      const st = inputs.statusOf(n.nodeid);
      if (this.shownStatus.get(n.nodeid) === st.status) continue;
      this.shownStatus.set(n.nodeid, st.status);
      this.ctx.out.act({ type: 'SetNodeStatus', nodeid: n.nodeid, status: st.status, reason: st.reason });
    }
  }

  /** A previous master may have died before its SetOwnership landed: write what we agreed on. */
  private repairMetadata(): void {
    if (this.inventory === null || !this.metaDirty) return;
    this.metaDirty = false;
    const onStorage = new Map(this.inventory.owners.map((o) => [o.vm, o]));
    for (const [vm, o] of this.ctx.rep.owners) {
      const stored = onStorage.get(vm);
      if ((stored !== undefined && stored.epoch >= o.epoch) || this.metaWritten.get(vm) === o.epoch) continue;
      this.metaWritten.set(vm, o.epoch);
      this.ctx.out.act({
        type: 'SetOwnership',
        vm,
        node: o.node,
        epoch: o.epoch,
        reason: `shared metadata has epoch ${stored?.epoch ?? 'none'} for ${vm}, the cluster agreed on n${o.node} epoch ${o.epoch}`,
      });
    }
  }

  private note(vm: VmId, text: string, kind: DecisionKind = 'recovery'): void {
    if (this.vmNotes.get(vm) === text) return;
    this.vmNotes.set(vm, text);
    if (text !== '') this.ctx.out.decide(kind, text);
  }

  /** Give VMs of failed nodes (and VMs without owner) to good nodes, once it is safe. */
  private recoverVms(inputs: MasterInputs): void {
    const { ctx } = this;
    const { rep } = ctx;
    const needs: PlacementVm[] = [];
    const why = new Map<VmId, { from: Owner; reason: string }>();
    const inMaintenance = new Set(inputs.nodes.filter((n) => n.maintenance === true).map((n) => n.nodeid));
    const drainCandidates: PlacementVm[] = [];
    for (const [vm, spec] of rep.specs) {
      const pending = this.pendingAssign.get(vm);
      if (spec.desired === 'stopped' || (pending?.term === rep.term && ctx.now - pending.sentAt <= ctx.s.vmRetryMs)) continue;
      const o = rep.ownerOf(vm);
      if (o.node !== null && rep.isGoodMember(o.node)) {
        const drain = rep.draining.get(vm);
        if (drain !== undefined && drain.node === o.node && drain.epoch === o.epoch) {
          if (!drain.stopped) {
            this.note(vm, `drain: waiting for n${o.node} to stop ${vm}`, 'placement');
            continue;
          }
          // Stopped on the drained node: place it like a recovered VM.
          needs.push({ id: vm, ramMb: spec.ramMb, restartPriority: spec.restartPriority });
          why.set(vm, { from: o, reason: `${vm} stopped on n${o.node} for its maintenance drain` });
          continue;
        }
        if (inMaintenance.has(o.node)) {
          if (spec.storage === 'local') this.note(vm, `${vm} stays on n${o.node} in maintenance: its disk is local (no drain)`, 'placement');
          else drainCandidates.push({ id: vm, ramMb: spec.ramMb, restartPriority: spec.restartPriority });
          continue;
        }
        this.note(vm, '');
        continue;
      }
      let reason = `${vm} has no owner`;
      if (o.node !== null) {
        // Local disk first: such a VM can never move, HA flag or not.
        if (spec.storage === 'local') {
          this.note(vm, `${vm} unrecoverable: its disk is local to failed n${o.node}`);
          continue;
        }
        if (!spec.ha) {
          this.note(vm, `${vm} stays down with n${o.node}: not HA-enabled`);
          continue;
        }
        const safety = recoverySafety({
          node: o.node,
          vm,
          inView: rep.isMember(o.node),
          reported: rep.reports.get(o.node),
          heartbeat: inputs.seen.get(o.node),
          goneAt: inputs.goneAt(o.node),
          settings: ctx.s,
        });
        if (!safety.safe && ctx.sabotage !== 'no-fence-wait') {
          this.note(vm, safety.reason);
          continue;
        }
        reason = safety.reason;
      }
      needs.push({ id: vm, ramMb: spec.ramMb, restartPriority: spec.restartPriority });
      why.set(vm, { from: o, reason });
    }
    if (needs.length === 0) {
      this.startNextDrain(inputs, drainCandidates);
      return;
    }

    const result = placeVms(this.placementNodes(inputs), needs);
    for (const p of result.placements) {
      const w = why.get(p.vm)!;
      if (rep.draining.get(p.vm)?.stopped === true) this.drainMoved = { vm: p.vm, to: p.node, at: ctx.now };
      this.pendingAssign.set(p.vm, { term: rep.term, sentAt: ctx.now });
      this.note(p.vm, '');
      ctx.out.send(
        { v: 1, kind: 'assign', term: rep.term, vm: p.vm, from: w.from.node, fromEpoch: w.from.epoch, to: p.node, epoch: w.from.epoch + 1, reason: `${w.reason}; ${p.reason}` },
        `recover ${p.vm}: ${w.reason}`,
      );
    }
    for (const u of result.unplaced) {
      const w = why.get(u.vm)!;
      const drain = rep.draining.get(u.vm);
      if (drain?.stopped === true && w.from.node === drain.node) {
        // Capacity went away while it stopped: give it back to its node rather than leave it down.
        this.pendingAssign.set(u.vm, { term: rep.term, sentAt: ctx.now });
        const reason = `drain of ${u.vm} undone: ${u.reason}; it restarts on n${drain.node}`;
        this.note(u.vm, reason, 'placement');
        ctx.out.send({ v: 1, kind: 'assign', term: rep.term, vm: u.vm, from: drain.node, fromEpoch: drain.epoch, to: drain.node, epoch: drain.epoch + 1, reason }, reason);
        continue;
      }
      this.note(u.vm, u.reason, 'placement');
    }
    // VMs that fit nowhere do not hold up a drain (it only moves VMs that have a place).
    if (result.placements.length === 0) this.startNextDrain(inputs, drainCandidates);
  }

  /**
   * Maintenance drain, one VM at a time and only in a step that placed nothing else: ask the
   * owner to stop the highest-priority VM that has a place elsewhere. Once its `drained` is
   * delivered, recoverVms() assigns it like a recovered VM (no live migration: it restarts).
   */
  private startNextDrain(inputs: MasterInputs, candidates: PlacementVm[]): void {
    const { rep, out, now, s } = this.ctx;
    const p = this.pendingDrain;
    // Delivered (it shows in rep.draining), or dropped on delivery because its preconditions no
    // longer held: either way it is not pending any more.
    if (p !== null && (p.term !== rep.term || rep.draining.has(p.vm) || now - p.sentAt > s.vmRetryMs)) this.pendingDrain = null;
    if (candidates.length === 0 || rep.draining.size > 0 || this.pendingDrain !== null) return;
    // One by one: the VM moved last must run on its new node first (unless that takes too long).
    const m = this.drainMoved;
    if (m !== null) {
      const r = rep.reports.get(m.to);
      const up = r !== undefined && r.running.includes(m.vm) && !r.starting.includes(m.vm);
      const stillStarting = rep.ownerOf(m.vm).node === m.to && rep.isGoodMember(m.to) && !up;
      if (stillStarting && now - m.at < 3 * s.vmRetryMs) return;
      this.drainMoved = null;
    }
    const nodes = this.placementNodes(inputs);
    const order = [...candidates].sort((a, b) => b.restartPriority - a.restartPriority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const vm of order) {
      const o = rep.ownerOf(vm.id);
      const target = placeVms(nodes, [vm]);
      if (target.placements.length === 0) {
        this.note(vm.id, `cannot drain ${vm.id} off n${o.node}: ${target.unplaced[0]!.reason}`, 'placement');
        continue;
      }
      this.pendingDrain = { vm: vm.id, term: rep.term, sentAt: now };
      const reason = `n${o.node} is in maintenance; ${target.placements[0]!.reason}`;
      this.note(vm.id, `draining ${vm.id}: ${reason}`, 'placement');
      out.send({ v: 1, kind: 'drain', term: rep.term, vm: vm.id, node: o.node!, epoch: o.epoch, reason }, `drain ${vm.id} off n${o.node}`);
      return;
    }
  }

  /** Good members with their load (VMs they own) for placeVms. */
  private placementNodes(inputs: MasterInputs): PlacementNode[] {
    const { rep, s } = this.ctx;
    const load = loadByNode(rep.owners, (vm) => rep.specs.get(vm));
    const reserve = new Set(s.reserveNodes);
    const config = new Map(inputs.nodes.map((n) => [n.nodeid, n]));
    return rep.members
      .filter((id) => rep.isGoodMember(id))
      .map((id) => {
        const cfg = config.get(id);
        const l = load.get(id) ?? { count: 0, ramMb: 0 };
        return { nodeid: id, ramMb: cfg?.ramMb, usedRamMb: l.ramMb, vmCount: l.count, reserve: cfg?.reserve === true || reserve.has(id), maintenance: cfg?.maintenance === true };
      });
  }
}

function sameInventory(cur: { vms: VmSpec[]; owners: Ownership[] }, vms: readonly VmSpec[], owners: readonly Ownership[]): boolean {
  if (cur.vms.length !== vms.length || cur.owners.length !== owners.length) return false;
  for (let i = 0; i < vms.length; i++) {
    const a = cur.vms[i]!;
    const b = vms[i]!;
    if (a.id !== b.id || a.ramMb !== b.ramMb || a.ha !== b.ha || a.storage !== b.storage || a.restartPriority !== b.restartPriority || a.desired !== b.desired) return false;
  }
  for (let i = 0; i < owners.length; i++) {
    const a = cur.owners[i]!;
    const b = owners[i]!;
    if (a.vm !== b.vm || a.node !== b.node || a.epoch !== b.epoch) return false;
  }
  return true;
}

function sameNodes(a: readonly NodeConfig[], b: readonly NodeConfig[]): boolean {
  const key = (l: readonly NodeConfig[]): string =>
    JSON.stringify([...l].sort((x, y) => x.nodeid - y.nodeid).map((n) => [n.nodeid, n.prio, n.addr ?? null, !!n.replication, !!n.maintenance, !!n.reserve, n.ramMb ?? null]));
  return key(a) === key(b);
}

function sameTable(specs: readonly VmSpec[], owners: readonly OwnerTriple[], curSpecs: ReadonlyMap<VmId, VmSpec>, curOwners: ReadonlyMap<VmId, Owner>): boolean {
  if (specs.length !== curSpecs.size || owners.length !== curOwners.size) return false;
  for (const s of specs) if (JSON.stringify(s) !== JSON.stringify(curSpecs.get(s.id))) return false;
  for (const [vm, node, epoch] of owners) {
    const c = curOwners.get(vm);
    if (c === undefined || c.node !== node || c.epoch !== epoch) return false;
  }
  return true;
}

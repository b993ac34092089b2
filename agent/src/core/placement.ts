// VM placement: pure and deterministic. Used by the master to restart VMs of failed nodes, and
// (requestedNodeVerdict) by the master's DB sync to check a node an admin requested for a new VM.

import type { NodeId, NodeStatus, VmId } from './types.ts';

export interface PlacementNode {
  nodeid: NodeId;
  /** RAM available for VMs; undefined = unlimited. */
  ramMb: number | undefined;
  /** RAM already used by VMs this node owns. */
  usedRamMb: number;
  /** Number of VMs this node owns. */
  vmCount: number;
  reserve: boolean;
  maintenance: boolean;
}

export interface PlacementVm {
  id: VmId;
  ramMb: number;
  restartPriority: number;
}

export interface PlacementResult {
  placements: Array<{ vm: VmId; node: NodeId; reason: string }>;
  unplaced: Array<{ vm: VmId; reason: string }>;
}

const freeOf = (n: Pick<PlacementNode, 'ramMb' | 'usedRamMb'>): number => (n.ramMb === undefined ? Infinity : n.ramMb - n.usedRamMb);

/**
 * Place VMs in restart-priority order (then id). Each goes to the regular node with the fewest
 * VMs that has enough free RAM (ties: lowest nodeid); reserve nodes are used only when no regular
 * node fits; maintenance nodes are never used. A VM that fits nowhere is returned in `unplaced`.
 * The inputs are not modified.
 */
export function placeVms(nodes: readonly PlacementNode[], vms: readonly PlacementVm[]): PlacementResult {
  const pool = nodes.filter((n) => !n.maintenance).map((n) => ({ ...n }));
  const regular = pool.filter((n) => !n.reserve);
  const reserve = pool.filter((n) => n.reserve);
  const order = [...vms].sort((a, b) => b.restartPriority - a.restartPriority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const result: PlacementResult = { placements: [], unplaced: [] };

  for (const vm of order) {
    const chosen = pick(regular, vm) ?? pick(reserve, vm);
    if (chosen === undefined) {
      result.unplaced.push({ vm: vm.id, reason: unplacedReason(vm, pool, nodes.length) });
      continue;
    }
    const kind = chosen.reserve ? 'reserve node' : 'node';
    result.placements.push({
      vm: vm.id,
      node: chosen.nodeid,
      reason: `${vm.id} -> n${chosen.nodeid}: ${kind} with fewest VMs (${chosen.vmCount}) and enough free RAM (${fmtMb(freeOf(chosen))} >= ${vm.ramMb} MB)`,
    });
    chosen.vmCount += 1;
    chosen.usedRamMb += vm.ramMb;
  }
  return result;
}

/** The node with the fewest VMs (ties: lowest nodeid) that has room for the VM; one pass, no sorting. */
function pick(candidates: PlacementNode[], vm: PlacementVm): PlacementNode | undefined {
  let best: PlacementNode | undefined;
  for (const n of candidates) {
    if (freeOf(n) < vm.ramMb) continue;
    if (best === undefined || n.vmCount < best.vmCount || (n.vmCount === best.vmCount && n.nodeid < best.nodeid)) best = n;
  }
  return best;
}

function unplacedReason(vm: PlacementVm, pool: PlacementNode[], total: number): string {
  if (pool.length === 0) {
    return total === 0 ? `${vm.id} stays down: no node available` : `${vm.id} stays down: every available node is in maintenance`;
  }
  const best = [...pool].sort((a, b) => freeOf(b) - freeOf(a))[0]!;
  return `${vm.id} stays down: needs ${vm.ramMb} MB, most free is ${fmtMb(freeOf(best))} on n${best.nodeid}; retried when capacity appears`;
}

const fmtMb = (mb: number): string => (mb === Infinity ? 'unlimited' : `${mb} MB`);

// ---------------------------------------------------------------------------
// A node requested for a new VM (the panel's "create on node N")

/** What the master's view says about a node (a subset of NodeViewEntry). */
export interface RequestedNodeFacts {
  nodeid: NodeId;
  status: NodeStatus;
  /** RAM offered to VMs; undefined = unlimited (as in placeVms). */
  ramMb?: number;
  reserve?: boolean;
  maintenance?: boolean;
}

export type RequestedNodeVerdict = { ok: true; reason: string } | { ok: false; why: string };

/**
 * Can `node` take a new VM right now? The same rules placeVms() applies, for one named node:
 * a good member of the master's view (status 'member' or 'leader'; 'network_unstable' is a good
 * member for placement but a new VM is not started on a flapping node), not in maintenance, and
 * with enough free RAM (`usedRamMb`: what the VMs it owns take, see ramOwnedByNode). A reserve
 * node is accepted: reserve only keeps automatic placement away, and the admin named it
 * explicitly (the admission check still warns if that spends the N+1 spare). `why` is the short
 * reason shown to the admin ("in maintenance").
 */
export function requestedNodeVerdict(
  vm: { id: VmId; ramMb: number },
  node: NodeId,
  nodes: readonly RequestedNodeFacts[],
  usedRamMb: ReadonlyMap<NodeId, number>,
): RequestedNodeVerdict {
  const n = nodes.find((x) => x.nodeid === node);
  if (n === undefined) return { ok: false, why: 'not a node of the cluster' };
  if (n.status !== 'member' && n.status !== 'leader') {
    return { ok: false, why: n.status === 'network_unstable' ? 'network_unstable: its link flapped repeatedly' : n.status };
  }
  if (n.maintenance === true) return { ok: false, why: 'in maintenance' };
  const free = freeOf({ ramMb: n.ramMb, usedRamMb: usedRamMb.get(node) ?? 0 });
  if (free < vm.ramMb) return { ok: false, why: `needs ${vm.ramMb} MB, ${fmtMb(free)} free` };
  return { ok: true, reason: `${vm.id} -> n${node}: requested, ${n.reserve === true ? 'reserve node (named explicitly), ' : ''}a good member with enough free RAM (${fmtMb(free)} >= ${vm.ramMb} MB)` };
}

/**
 * What each node's VMs take, as placement counts it: VMs with a spec, an owner, and not desired
 * stopped. The master's placement (master-duties.ts) and the check of a requested node share it.
 */
export function loadByNode(
  owners: Iterable<readonly [VmId, { node: NodeId | null }]>,
  specOf: (vm: VmId) => { ramMb: number; desired?: 'running' | 'stopped' } | undefined,
): Map<NodeId, { count: number; ramMb: number }> {
  const load = new Map<NodeId, { count: number; ramMb: number }>();
  for (const [vm, o] of owners) {
    const s = specOf(vm);
    if (o.node === null || s === undefined || s.desired === 'stopped') continue;
    const l = load.get(o.node) ?? { count: 0, ramMb: 0 };
    l.count += 1;
    l.ramMb += s.ramMb;
    load.set(o.node, l);
  }
  return load;
}

/**
 * RAM each node's VMs take (loadByNode). `specs` may be any list with id, ramMb and desired
 * (VmSpec, or the records the master read).
 */
export function ramOwnedByNode(
  owners: ReadonlyArray<{ vm: VmId; owner: NodeId | null }>,
  specs: ReadonlyArray<{ id: VmId; ramMb: number; desired?: 'running' | 'stopped' }>,
): Map<NodeId, number> {
  const byId = new Map(specs.map((s) => [s.id, s]));
  const load = loadByNode(owners.map((o) => [o.vm, { node: o.owner }] as const), (vm) => byId.get(vm));
  return new Map([...load].map(([node, l]) => [node, l.ramMb]));
}

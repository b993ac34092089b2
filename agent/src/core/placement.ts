// VM placement: pure and deterministic. Used by the master to restart VMs of failed nodes.

import type { NodeId, VmId } from './types.ts';

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

const freeOf = (n: PlacementNode): number => (n.ramMb === undefined ? Infinity : n.ramMb - n.usedRamMb);

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

// Admission check (pure): does the cluster survive the loss of any one node? For every node, as if
// it failed now, the HA VMs it owns are placed on the survivors with the same rules as a real
// recovery (placeVms: RAM, reserve nodes, maintenance). A VM that would fit nowhere makes the check
// fail; local-disk HA VMs are listed as unrecoverable (they never move, whatever the capacity).

import { placeVms, type PlacementNode } from './placement.ts';
import type { NodeId, VmId, VmSpec } from './types.ts';

export interface AdmissionNode {
  nodeid: NodeId;
  /** RAM available for VMs; undefined = unlimited (not published). */
  ramMb?: number;
  reserve: boolean;
  maintenance: boolean;
  /** Already down (not a good member): not a survivor, and its loss is not checked again. */
  down?: boolean;
}

export interface AdmissionVm extends VmSpec {
  owner: NodeId | null;
}

export interface NodeLoss {
  nodeid: NodeId;
  /** Every HA VM of the node has a place on the survivors. */
  ok: boolean;
  /** HA VMs on shared storage that would be restarted elsewhere, and where. */
  restarted: Array<{ vm: VmId; node: NodeId }>;
  /** HA VMs that would stay down, with the reason. */
  staysDown: Array<{ vm: VmId; reason: string }>;
  /** HA VMs on a local disk: never recovered. */
  unrecoverable: VmId[];
  /** Set when this loss was not checked (the node is already down). */
  skipped?: string;
}

export interface AdmissionReport {
  ok: boolean;
  summary: string;
  nodes: NodeLoss[];
}

const running = (v: AdmissionVm): boolean => v.desired !== 'stopped';

/** Check the loss of each node in turn (nodes in nodeid order). The inputs are not modified. */
export function checkAdmission(nodes: readonly AdmissionNode[], vms: readonly AdmissionVm[]): AdmissionReport {
  const sorted = [...nodes].sort((a, b) => a.nodeid - b.nodeid);
  // What every node carries now (VMs it owns that should run).
  const load = new Map<NodeId, { count: number; ram: number }>();
  for (const v of vms) {
    if (v.owner === null || !running(v)) continue;
    const l = load.get(v.owner) ?? { count: 0, ram: 0 };
    l.count += 1;
    l.ram += v.ramMb;
    load.set(v.owner, l);
  }
  const losses = sorted.map((lost): NodeLoss => {
    if (lost.down === true) return { nodeid: lost.nodeid, ok: true, restarted: [], staysDown: [], unrecoverable: [], skipped: `n${lost.nodeid} is already down` };
    const survivors: PlacementNode[] = sorted
      .filter((n) => n.nodeid !== lost.nodeid && n.down !== true)
      .map((n) => ({
        nodeid: n.nodeid,
        ramMb: n.ramMb,
        usedRamMb: load.get(n.nodeid)?.ram ?? 0,
        vmCount: load.get(n.nodeid)?.count ?? 0,
        reserve: n.reserve,
        maintenance: n.maintenance,
      }));
    const haHere = vms.filter((v) => v.owner === lost.nodeid && running(v) && v.ha);
    const movable = haHere.filter((v) => v.storage === 'shared');
    const result = placeVms(survivors, movable);
    return {
      nodeid: lost.nodeid,
      ok: result.unplaced.length === 0,
      restarted: result.placements.map((p) => ({ vm: p.vm, node: p.node })),
      staysDown: result.unplaced,
      unrecoverable: haHere.filter((v) => v.storage === 'local').map((v) => v.id).sort(),
    };
  });
  const failing = losses.filter((l) => !l.ok);
  const summary =
    failing.length === 0
      ? `the cluster survives the loss of any one node: every HA VM can be placed elsewhere`
      : failing.map((l) => `losing n${l.nodeid} leaves ${l.staysDown.length} HA VM(s) down (${l.staysDown.map((d) => d.vm).join(', ')})`).join('; ');
  return { ok: failing.length === 0, summary, nodes: losses };
}

// `corolistener admission`: the admission check (core/admission.ts) on what this node knows: the
// daemon's live view (nodes with status, RAM, reserve, maintenance; agreed VM owners) and the VM
// definitions in the cluster metadata on the shared storage.
import { checkAdmission, type AdmissionNode, type AdmissionReport, type AdmissionVm } from "../core/admission.ts";
import type { NodeView, VmSpec } from "../core/types.ts";
import type { AgentConfig } from "../config.ts";
import { readLiveStatus } from "../effects/status-file.ts";

/** Statuses of a node that would take VMs now; anything else counts as already down. */
const UP = new Set(["leader", "member", "network_unstable"]);

/** Pure: the check's inputs from the daemon's view and the VM definitions/owners on the storage. */
export function admissionInputs(view: NodeView, specs: VmSpec[], storedOwners: Array<{ vm: string; node: number | null }>): { nodes: AdmissionNode[]; vms: AdmissionVm[] } {
  const nodes = view.nodes.map((n) => ({
    nodeid: n.nodeid,
    ...(n.ramMb !== undefined && { ramMb: n.ramMb }),
    reserve: n.reserve === true,
    maintenance: n.maintenance === true,
    down: !UP.has(n.status),
  }));
  // The agreed owners in the view are newer than the metadata files; fall back to those.
  const owners = new Map(storedOwners.map((o) => [o.vm, o.node]));
  for (const v of view.vms) owners.set(v.vm, v.owner);
  const vms = specs.map((s) => ({ ...s, owner: owners.get(s.id) ?? null }));
  return { nodes, vms };
}

export async function readAdmission(config: AgentConfig): Promise<AdmissionReport> {
  const live = readLiveStatus(config.statusFile);
  if (!live) throw new Error("the corolistener daemon is not running on this node (no live status file): the admission check needs its view of the nodes");
  if (!config.storageDir) throw new Error("no storageDir in the agent config: VM definitions live on the shared storage");
  const { ClusterMetadata } = await import("../effects/cluster-metadata.ts");
  const inv = await new ClusterMetadata(config.storageDir).read();
  const { nodes, vms } = admissionInputs(live.view, inv.vms, inv.owners);
  return checkAdmission(nodes, vms);
}

/** Human-readable report (pure). */
export function renderAdmission(r: AdmissionReport): string {
  const lines = [`${r.ok ? "OK" : "WARNING"}: ${r.summary}`];
  for (const l of r.nodes) {
    if (l.skipped) {
      lines.push(`  lose n${l.nodeid}: not checked (${l.skipped})`);
      continue;
    }
    const parts = [`${l.restarted.length} HA VM(s) restart elsewhere`];
    if (l.staysDown.length) parts.push(`${l.staysDown.length} stay down`);
    if (l.unrecoverable.length) parts.push(`unrecoverable (local disk): ${l.unrecoverable.join(", ")}`);
    lines.push(`  lose n${l.nodeid}: ${l.ok ? "ok" : "FAILS"}: ${parts.join("; ")}`);
    for (const d of l.staysDown) lines.push(`    ${d.reason}`);
  }
  return lines.join("\n") + "\n";
}

// Adding and removing cluster nodes: the checks that decide whether a change is safe (pure).
// The same checks run three times: in the installer on the new node (before it changes anything), in
// the CLI on the member that forwards the request, and on the master, which alone changes corosync.conf.
import type { NodeConfig } from "./core/types.ts";

/** What the checks need to know about the cluster, as one member sees it. */
export type ClusterFacts = {
  /** corosync.conf's nodelist. */
  nodes: Array<{ nodeid: number; addr?: string; name?: string }>;
  quorate: boolean;
  /** Nodes in the current quorate membership. */
  members: number[];
  master: number | null;
  /** VM -> owning node, from the cluster metadata (null owner = not placed). */
  owners: Array<{ vm: string; node: number | null }>;
};

export type AddNodeRequest = { nodeid: number; addr: string; prio: number; name?: string };

/** Votes votequorum needs out of `configured` nodes (one vote each, no two_node/wait_for_all tricks). */
export const votesNeeded = (configured: number) => Math.floor(configured / 2) + 1;

/** Why adding this node must be refused, or null when it is safe. */
export function refuseAddNode(facts: ClusterFacts, req: AddNodeRequest): string | null {
  if (!facts.quorate) return "the cluster has no quorum here: a node can only be added to a quorate cluster (fix the cluster first)";
  if (!Number.isInteger(req.nodeid) || req.nodeid < 1 || req.nodeid > 0xffff) return `nodeid ${req.nodeid} must be an integer from 1 to 65535 (knet)`;
  const sameId = facts.nodes.find((n) => n.nodeid === req.nodeid);
  if (sameId) return `nodeid ${req.nodeid} is already used by ${describe(sameId)}: pick a free nodeid`;
  const sameAddr = facts.nodes.find((n) => n.addr === req.addr);
  if (sameAddr) return `address ${req.addr} is already used by ${describe(sameAddr)}: each node needs its own ring0 address`;
  if (req.name !== undefined) {
    const sameName = facts.nodes.find((n) => n.name === req.name);
    if (sameName) return `name ${req.name} is already used by ${describe(sameName)}`;
  }
  // Until the new node joins, its vote is missing: the current members must still be a majority.
  const need = votesNeeded(facts.nodes.length + 1);
  if (facts.members.length < need) {
    return `adding a node would lose quorum until it joins: ${facts.members.length} members online, ${need} needed out of ${facts.nodes.length + 1}; bring the missing nodes back first`;
  }
  return null;
}

/** Why removing this node must be refused, or null when it is safe. */
export function refuseRemoveNode(facts: ClusterFacts, nodeid: number): string | null {
  if (!facts.quorate) return "the cluster has no quorum here: nodes can only be removed from a quorate cluster";
  const node = facts.nodes.find((n) => n.nodeid === nodeid);
  if (!node) return `n${nodeid} is not in corosync.conf (nodes: ${facts.nodes.map((n) => n.nodeid).join(", ")})`;
  if (facts.nodes.length <= 2) return `the cluster would be left with ${facts.nodes.length - 1} node: at least two nodes are required`;
  if (facts.master === nodeid) return `n${nodeid} is the master: lower its prio (corolistener set-node ${nodeid} --prio 0) and run corolistener elect first`;
  const owned = facts.owners.filter((o) => o.node === nodeid).map((o) => o.vm).sort();
  if (owned.length) {
    return `n${nodeid} still owns VMs (${owned.join(", ")}): drain it first (corolistener maintenance ${nodeid} on) and wait until its VMs run elsewhere`;
  }
  // After the reload the node's vote is gone and expected_votes shrinks to the remaining nodes.
  const remaining = facts.members.filter((m) => m !== nodeid).length;
  const need = votesNeeded(facts.nodes.length - 1);
  if (remaining < need) {
    return `removing n${nodeid} would lose quorum: ${remaining} other members online, ${need} needed out of ${facts.nodes.length - 1}`;
  }
  return null;
}

/** The desired node list after adding (pure). */
export function nodesAfterAdd(current: NodeConfig[], req: AddNodeRequest): NodeConfig[] {
  return [...current, { nodeid: req.nodeid, addr: req.addr, prio: req.prio, replication: true }];
}

export function nodesAfterRemove(current: NodeConfig[], nodeid: number): NodeConfig[] {
  return current.filter((n) => n.nodeid !== nodeid);
}

function describe(n: { nodeid: number; addr?: string; name?: string }) {
  return `n${n.nodeid}${n.name ? ` (${n.name})` : ""}${n.addr ? ` at ${n.addr}` : ""}`;
}

/**
 * Clock offset of a remote machine from a few samples of (local send time, remote time, local
 * receive time), NTP style: the sample with the shortest round trip is the most precise (pure).
 */
export function estimateClockOffset(samples: Array<{ sentMs: number; remoteMs: number; receivedMs: number }>): { offsetMs: number; uncertaintyMs: number } {
  if (samples.length === 0) throw new Error("no clock samples");
  const best = [...samples].sort((a, b) => a.receivedMs - a.sentMs - (b.receivedMs - b.sentMs))[0]!;
  const midpoint = (best.sentMs + best.receivedMs) / 2;
  return { offsetMs: best.remoteMs - midpoint, uncertaintyMs: (best.receivedMs - best.sentMs) / 2 };
}

/** Corosync and the fencing deadlines assume clocks within a second of each other. */
export const MAX_CLOCK_OFFSET_MS = 1000;

export function refuseClockOffset(offsetMs: number, memberName: string): string | null {
  if (Math.abs(offsetMs) <= MAX_CLOCK_OFFSET_MS) return null;
  const dir = offsetMs > 0 ? "behind" : "ahead of";
  return `this node's clock is ${Math.round(Math.abs(offsetMs))} ms ${dir} ${memberName} (at most ${MAX_CLOCK_OFFSET_MS} ms allowed): start time sync (chrony) and try again`;
}

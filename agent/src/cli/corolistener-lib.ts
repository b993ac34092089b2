// Pure pieces of `corolistener -l`: rows from the daemon's view or from corosync alone.
import type { ClusterSnapshot } from "../corosync/index.ts";
import type { NodeView } from "../core/types.ts";
import { electMaster } from "../core/election.ts";
import type { NodeListRow } from "./node-list.ts";
import type { DbHealthDoc } from "../effects/db/health.ts";

/**
 * The node list as the running daemon sees it: HA statuses, the elected master and, when the daemon
 * watches the databases, each node's DB state and whether that lets it be master (rows without a
 * reading or a verdict get none: JSON unchanged).
 */
export function nodeListFromView(v: NodeView, db?: DbHealthDoc): NodeListRow[] {
  const dbOf = new Map((db?.nodes ?? []).map((h) => [h.nodeid, h]));
  return v.nodes.map((n) => {
    const h = dbOf.get(n.nodeid);
    return {
      id: n.nodeid,
      ip: n.addr ?? "",
      status: n.status.replace(/_/g, " "),
      master: n.isMaster,
      prio: n.prio,
      ...(h ? { db: h } : {}),
      ...(typeof n.dbEligible === "boolean" ? { dbEligible: n.dbEligible } : {}),
      ...(n.dbReason ? { dbReason: n.dbReason } : {}),
    };
  });
}

/** The node list as corosync alone sees it: joined/left, and the master by prio among quorate members. */
export function nodeListFromCorosync(s: ClusterSnapshot): NodeListRow[] {
  const members = new Set(s.members);
  // Without the daemon there is no election history, so this is the fresh-election answer.
  const master = s.quorate ? electMaster(s.members, s.nodes, null, { failback: false }).master : null;
  return s.nodes
    .map((n) => ({
      id: n.nodeid,
      ip: n.ring0Addr ?? "",
      status: members.has(n.nodeid) ? "joined" : "left",
      master: n.nodeid === master,
      prio: n.prio,
    }))
    .sort((a, b) => a.id - b.id);
}


// /api/admission: does the cluster survive the loss of any one node (every HA VM still placeable)?
// The check itself is the agent's (agent/src/core/admission.ts); its inputs come from the same
// places as the other routes: nodes and VMs from the DB, live status, RAM and owners from the
// agent's status file.
import { Router } from "express";
import { nodes, vms } from "@ha/db";
import { checkAdmission, type AdmissionNode, type AdmissionVm } from "@ha/agent/core";
import type { Ctx } from "../context.ts";

/** Statuses of a node that would take VMs now; anything else counts as already down. */
const UP = new Set(["leader", "member", "network_unstable"]);

export function admissionRouter(ctx: Ctx): Router {
  const r = Router();
  r.get("/", async (_req, res) => {
    const view = ctx.status.status.view;
    const [nodeRows, vmRows] = await Promise.all([ctx.db.select().from(nodes), ctx.db.select().from(vms)]);
    const live = new Map((view?.nodes ?? []).map((n) => [n.nodeid, n as typeof n & { ramMb?: number; reserve?: boolean; maintenance?: boolean }]));
    const ids = [...new Set([...nodeRows.map((n) => n.nodeid), ...live.keys()])];
    const byId = new Map(nodeRows.map((n) => [n.nodeid, n]));
    const checkNodes: AdmissionNode[] = ids.map((nodeid) => {
      const d = byId.get(nodeid);
      const l = live.get(nodeid);
      return {
        nodeid,
        ...(typeof l?.ramMb === "number" && { ramMb: l.ramMb }),
        reserve: d?.reserve === true || l?.reserve === true,
        maintenance: d?.maintenance === true || l?.maintenance === true,
        down: view !== null && !UP.has(l?.status ?? "offline"),
      };
    });
    const owners = new Map((view?.vms ?? []).map((v) => [v.vm, v.owner]));
    const checkVms: AdmissionVm[] = vmRows.map((v) => ({
      id: v.name,
      ramMb: v.ramMb,
      ha: v.ha,
      storage: v.storage === "network" ? "shared" : "local",
      restartPriority: v.restartPriority,
      owner: owners.has(v.name) ? owners.get(v.name)! : v.nodeid,
    }));
    const report = checkAdmission(checkNodes, checkVms);
    res.json({ ...report, live: view !== null, ramKnown: checkNodes.every((n) => n.ramMb !== undefined) });
  });
  return r;
}

// /api/election: who is master and why, quorum, and the agent's latest reasons.
import { Router } from "express";
import type { Ctx } from "../context.ts";
import { refuseChangesBecause, type LiveStatus } from "../status.ts";

export function electionState(s: LiveStatus) {
  const v = s.view;
  const master = v?.nodes.find((n) => n.isMaster) ?? null;
  return {
    state: s.state,
    problem: s.problem,
    writtenAt: s.writtenAt,
    localNodeId: v?.localNodeId ?? null,
    master: v?.master ?? null,
    isMaster: v?.isMaster ?? false,
    why: master?.reason ?? (v ? "no master: " + (v.reasons.at(-1) ?? "none elected") : null),
    quorum: v ? { quorate: v.quorum.quorate, have: v.quorum.have, need: v.quorum.need, members: v.quorum.members } : null,
    term: v?.cpg?.term ?? null,
    synced: v?.cpg?.synced ?? null,
    changesRefused: refuseChangesBecause(s),
    nodes: v?.nodes.map((n) => ({ nodeid: n.nodeid, prio: n.prio, status: n.status, isMaster: n.isMaster, reason: n.reason })) ?? [],
    reasons: v?.reasons.slice(-20) ?? [],
  };
}

export function electionRouter(ctx: Ctx): Router {
  const r = Router();
  r.get("/", (_req, res) => void res.json(electionState(ctx.status.status)));
  return r;
}

// /api/nodes: the configured nodes (DB) merged with what the agent sees live (status file).
import { Router } from "express";
import { desc, eq } from "drizzle-orm";
import { z } from "zod";
import { incidents, nodes, vms, type Node } from "@ha/db";
import type { Ctx } from "../context.ts";
import { audit, actorOf } from "../audit.ts";
import { HttpError, parse } from "../errors.ts";
import { sessionOf } from "../auth/middleware.ts";
import type { DbHealth, NodeView } from "../status.ts";

const NodeId = z.coerce.number().int().min(1).max(0xffffffff);
const NodePatch = z
  .strictObject({
    prio: z.number().int().min(0).max(1_000_000),
    replication: z.boolean(),
    maintenance: z.boolean(),
    reserve: z.boolean(),
  })
  .partial()
  .refine((p) => Object.keys(p).length > 0, "give at least one of prio, replication, maintenance, reserve");

export type NodeRow = ReturnType<typeof merge>[number];

function merge(rows: Node[], view: NodeView | null, db?: DbHealth) {
  const live = new Map((view?.nodes ?? []).map((n) => [n.nodeid, n]));
  const members = new Set(view?.quorum.members ?? []);
  const ids = [...new Set([...rows.map((r) => r.nodeid), ...live.keys()])].sort((a, b) => a - b);
  const byId = new Map(rows.map((r) => [r.nodeid, r]));
  const health = new Map((db?.nodes ?? []).map((h) => [h.nodeid, h]));
  // A replica's source is an address: name the node behind it when it is one of ours.
  const nameAt = new Map<string, string>();
  for (const l of live.values()) if (l.addr) nameAt.set(l.addr, byId.get(l.nodeid)?.name ?? `n${l.nodeid}`);
  for (const r of rows) if (r.address) nameAt.set(r.address, r.name);
  const checkedAt = db ? new Date(db.checkedAt).toISOString() : null;
  return ids.map((nodeid) => {
    const d = byId.get(nodeid);
    const l = live.get(nodeid);
    const h = health.get(nodeid);
    return {
      nodeid,
      name: d?.name ?? `n${nodeid}`,
      address: d?.address ?? l?.addr ?? null,
      configured: d !== undefined,
      /** Desired (DB) settings; the agent applies them. */
      prio: d?.prio ?? l?.prio ?? 0,
      replication: d?.replication ?? null,
      maintenance: d?.maintenance ?? false,
      reserve: d?.reserve ?? false,
      /** What the cluster runs with now. */
      livePrio: l?.prio ?? null,
      status: l?.status ?? (view ? "offline" : "unknown"),
      isMaster: l?.isMaster ?? false,
      inQuorum: members.has(nodeid),
      reason: l?.reason ?? (view ? "not in the agent's view" : "cluster state unknown"),
      /** The database as the master's agent last read it (null: no reading of this node). */
      db: h ? { ...h, sourceName: h.source ? (nameAt.get(h.source) ?? null) : null, checkedAt } : null,
      /** May its database make it master (null: not judged); why not. */
      dbEligible: l?.dbEligible ?? null,
      dbReason: l?.dbReason ?? null,
      lastSeen: d?.lastSeen ?? null,
      updatedAt: d?.updatedAt ?? null,
    };
  });
}

export function nodesRouter(ctx: Ctx): Router {
  const r = Router();

  r.get("/", async (_req, res) => {
    const rows = await ctx.db.select().from(nodes);
    res.json({ nodes: merge(rows, ctx.status.status.view, ctx.status.status.db) });
  });

  r.get("/:id", async (req, res) => {
    const id = parse(NodeId, req.params.id);
    const rows = await ctx.db.select().from(nodes).where(eq(nodes.nodeid, id));
    const [node] = merge(rows, ctx.status.status.view, ctx.status.status.db).filter((n) => n.nodeid === id);
    if (!node) throw new HttpError(404, `no node ${id}`);
    const nodeVms = await ctx.db.select().from(vms).where(eq(vms.nodeid, id)).orderBy(vms.name);
    const history = await ctx.db.select().from(incidents).where(eq(incidents.nodeid, id)).orderBy(desc(incidents.at), desc(incidents.id)).limit(50);
    res.json({ node, vms: nodeVms, history });
  });

  r.patch("/:id", async (req, res) => {
    const id = parse(NodeId, req.params.id);
    const patch = parse(NodePatch, req.body);
    const [before] = await ctx.db.select().from(nodes).where(eq(nodes.nodeid, id));
    if (!before) throw new HttpError(404, `no node ${id} in the database (nodes are added by the agent)`);
    await ctx.db.update(nodes).set({ ...patch, updatedAt: new Date() }).where(eq(nodes.nodeid, id));
    const changes = (Object.keys(patch) as Array<keyof typeof patch>).filter((k) => patch[k] !== before[k]).map((k) => `${k} ${fmt(before[k])} -> ${fmt(patch[k])}`);
    const user = sessionOf(req).username;
    await audit(
      ctx,
      { actor: actorOf(user), kind: "node-change", nodeid: id, summary: `${before.name}: ${changes.join(", ") || "no change"}`, reason: `set by ${user} in the panel; the agent on the master applies it` },
      "nodes",
    );
    const [after] = await ctx.db.select().from(nodes).where(eq(nodes.nodeid, id));
    res.json({ node: merge(after ? [after] : [], ctx.status.status.view, ctx.status.status.db).find((n) => n.nodeid === id) });
  });

  return r;
}

const fmt = (v: unknown) => (typeof v === "boolean" ? (v ? "on" : "off") : String(v));

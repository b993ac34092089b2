// /api/vms: the VM table with live owners from the agent's view; HA flag and restart priority.
import { Router } from "express";
import { and, eq, like, type SQL } from "drizzle-orm";
import { z } from "zod";
import { vms } from "@ha/db";
import type { Ctx } from "../context.ts";
import { audit, actorOf } from "../audit.ts";
import { HttpError, parse } from "../errors.ts";
import { sessionOf } from "../auth/middleware.ts";
import { SingleFlight } from "../single-flight.ts";

const VmName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "a VM name is 1-64 letters, digits, '.', '_' or '-'");
const ListQuery = z.looseObject({
  q: z.string().max(64).optional(),
  node: z.coerce.number().int().min(1).optional(),
  ha: z.enum(["true", "false"]).optional(),
});
const VmPatch = z
  .strictObject({ ha: z.boolean(), restartPriority: z.number().int().min(-1000).max(1000) })
  .partial()
  .refine((p) => Object.keys(p).length > 0, "give ha or restartPriority");

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export function vmsRouter(ctx: Ctx): Router {
  const r = Router();
  const reads = new SingleFlight();

  r.get("/", async (req, res) => {
    const q = parse(ListQuery, req.query);
    const body = await reads.json(JSON.stringify([q.q, q.node, q.ha]), () => listVms(q));
    res.type("application/json").send(body);
  });

  async function listVms(q: z.output<typeof ListQuery>) {
    const where: SQL[] = [];
    if (q.q) where.push(like(vms.name, `%${escapeLike(q.q)}%`));
    if (q.node !== undefined) where.push(eq(vms.nodeid, q.node));
    if (q.ha !== undefined) where.push(eq(vms.ha, q.ha === "true"));
    const rows = await ctx.db.select().from(vms).where(and(...where)).orderBy(vms.name);
    const live = new Map((ctx.status.status.view?.vms ?? []).map((v) => [v.vm, v]));
    return { vms: rows.map((v) => ({ ...v, liveOwner: live.get(v.name)?.owner ?? null, note: live.get(v.name)?.note ?? null })) };
  }

  r.patch("/:name", async (req, res) => {
    const name = parse(VmName, req.params.name);
    const patch = parse(VmPatch, req.body);
    const [before] = await ctx.db.select().from(vms).where(eq(vms.name, name));
    if (!before) throw new HttpError(404, `no VM ${name}`);
    if (patch.ha === true && before.storage === "local") throw new HttpError(400, `${name} has a local disk: it cannot be restarted on another node, so it cannot be HA`, "ha");
    await ctx.db.update(vms).set({ ...patch, updatedAt: new Date() }).where(eq(vms.name, name));
    reads.invalidate();
    const changes = (Object.keys(patch) as Array<keyof typeof patch>).filter((k) => patch[k] !== before[k]).map((k) => `${k === "ha" ? "HA" : "restart priority"} ${fmt(before[k])} -> ${fmt(patch[k])}`);
    const user = sessionOf(req).username;
    await audit(ctx, { actor: actorOf(user), kind: "vm-change", vm: name, nodeid: before.nodeid, summary: `${name}: ${changes.join(", ") || "no change"}`, reason: `set by ${user} in the panel` }, "vms");
    const [after] = await ctx.db.select().from(vms).where(eq(vms.name, name));
    res.json({ vm: after });
  });

  return r;
}

const fmt = (v: unknown) => (typeof v === "boolean" ? (v ? "on" : "off") : String(v));

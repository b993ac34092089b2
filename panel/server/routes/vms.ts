// /api/vms: the VM table with live owners from the agent's view; HA flag and restart priority;
// creating a VM (a 'pending' row: the master's agent writes its record on the shared storage, see
// agent/src/effects/db/vm-sync.ts, and starts it on the requested node if that node can take it,
// otherwise places it like a CLI-defined one and notes why in `definitionError`).
import { Router } from "express";
import { and, eq, like, type SQL } from "drizzle-orm";
import { z } from "zod";
import { VmDefinitionSchema } from "@ha/agent/vm-definition";
import { nodes, vms } from "@ha/db";
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

/**
 * A new VM, as `corolistener vm define` takes it. The name and limits are the agent's own record
 * schema, so the panel never accepts a VM the master would then refuse to define.
 */
const def = VmDefinitionSchema.shape;
const VmCreate = z.strictObject({
  name: def.name,
  ramMb: def.ramMb,
  vcpus: def.vcpus,
  disk: z.strictObject({
    kind: def.disk.shape.kind,
    // The DB column holds 1024 characters; control characters would end up in command lines.
    path: z.string().trim().min(1, "give the disk's path").max(1024).regex(/^[^\x00-\x1f\x7f]+$/, "no control characters"),
  }),
  ip: z.ipv4("not an IPv4 address").optional(),
  ha: z.boolean().default(false),
  restartPriority: z.number().int().min(-1000).max(1000).default(0),
  /**
   * The node to start on. Any existing node is accepted: whether it can take the VM (a good member,
   * not in maintenance, enough free RAM) is decided by the master when it defines the VM, from the
   * cluster's live view (the DB's maintenance flag may be about to change); if it cannot, placement
   * chooses and the row's `definitionError` says why, as a note on a defined VM.
   */
  node: z.number().int().min(1).max(0xffffffff).optional(),
});

/** MariaDB's duplicate-key error, as mysql2 reports it (drizzle wraps it in `cause`). */
const isDuplicate = (err: unknown) => {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code === "ER_DUP_ENTRY" || e?.cause?.code === "ER_DUP_ENTRY";
};

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

  r.post("/", async (req, res) => {
    const body = parse(VmCreate, req.body);
    if (body.ha && body.disk.kind === "local") throw new HttpError(400, "a local-disk VM cannot be restarted on another node, so it cannot be HA", "ha");
    if (body.node !== undefined) {
      const [n] = await ctx.db.select({ nodeid: nodes.nodeid }).from(nodes).where(eq(nodes.nodeid, body.node));
      if (!n) throw new HttpError(400, `node: no node ${body.node} in the cluster`, "node");
    }
    const [taken] = await ctx.db.select({ name: vms.name }).from(vms).where(eq(vms.name, body.name));
    if (taken) throw new HttpError(409, `a VM named ${body.name} already exists`, "name");
    if (body.ip) {
      const [sameIp] = await ctx.db.select({ name: vms.name }).from(vms).where(eq(vms.ip, body.ip));
      if (sameIp) throw new HttpError(409, `ip: ${body.ip} is already the address of ${sameIp.name}`, "ip");
    }
    try {
      await ctx.db.insert(vms).values({
        name: body.name,
        ramMb: body.ramMb,
        vcpus: body.vcpus,
        diskLocation: body.disk.path,
        storage: body.disk.kind,
        ip: body.ip ?? null,
        ha: body.ha,
        restartPriority: body.restartPriority,
        requestedNodeid: body.node ?? null,
        definitionState: "pending",
        state: "stopped",
      });
    } catch (err) {
      if (isDuplicate(err)) throw new HttpError(409, `a VM named ${body.name} already exists`, "name"); // created concurrently
      throw err;
    }
    reads.invalidate();
    const user = sessionOf(req).username;
    const what = `${body.ramMb} MB, ${body.vcpus} vCPU, ${body.disk.kind}:${body.disk.path}${body.ip ? `, ${body.ip}` : ""}, HA ${body.ha ? "on" : "off"}, restart priority ${body.restartPriority}${body.node ? `, n${body.node} requested` : ""}`;
    await audit(
      ctx,
      { actor: actorOf(user), kind: "vm-create", vm: body.name, nodeid: body.node ?? null, summary: `${body.name} created (${what})`, reason: `created by ${user} in the panel; the master defines it on the shared storage and ${body.node ? `starts it on n${body.node} if that node can take it, else places it` : "places it"}` },
      "vms",
    );
    const [created] = await ctx.db.select().from(vms).where(eq(vms.name, body.name));
    res.status(201).json({ vm: created });
  });

  // Only a definition that failed can be removed here: a defined VM runs somewhere and removing it
  // from the cluster (stop, undefine, drop the record) is not something the agent does yet.
  r.delete("/:name", async (req, res) => {
    const name = parse(VmName, req.params.name);
    const [before] = await ctx.db.select().from(vms).where(eq(vms.name, name));
    if (!before) throw new HttpError(404, `no VM ${name}`);
    if (before.definitionState !== "failed") throw new HttpError(409, `${name} is ${before.definitionState}: only a VM whose definition failed can be removed in the panel`);
    await ctx.db.delete(vms).where(and(eq(vms.name, name), eq(vms.definitionState, "failed")));
    reads.invalidate();
    const user = sessionOf(req).username;
    await audit(ctx, { actor: actorOf(user), kind: "vm-remove", vm: name, summary: `${name}: failed definition removed`, reason: `removed by ${user} in the panel (${before.definitionError ?? "no reason recorded"})` }, "vms");
    res.json({ removed: name });
  });

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

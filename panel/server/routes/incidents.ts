// /api/incidents: incidents and audit events, newest first, paged by id.
import { Router } from "express";
import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import { z } from "zod";
import { incidents } from "@ha/db";
import type { Ctx } from "../context.ts";
import { parse } from "../errors.ts";

const Query = z.looseObject({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  before: z.coerce.number().int().min(1).optional(),
  kind: z.string().regex(/^[a-z0-9-]{1,64}$/, "a kind is lower-case letters, digits and '-'").optional(),
  node: z.coerce.number().int().min(1).optional(),
});

export function incidentsRouter(ctx: Ctx): Router {
  const r = Router();
  r.get("/", async (req, res) => {
    const q = parse(Query, req.query);
    const where: SQL[] = [];
    if (q.before !== undefined) where.push(lt(incidents.id, q.before));
    if (q.kind) where.push(eq(incidents.kind, q.kind));
    if (q.node !== undefined) where.push(eq(incidents.nodeid, q.node));
    const rows = await ctx.db.select().from(incidents).where(and(...where)).orderBy(desc(incidents.id)).limit(q.limit);
    res.json({ incidents: rows });
  });
  return r;
}

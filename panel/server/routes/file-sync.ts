// /api/file-sync: the master's last copy of each file set to each node (`nodereplication`, README
// "File replication"), so a failing copy shows in the panel. Read-only: every signed-in role may see it.
import { Router } from "express";
import { asc } from "drizzle-orm";
import { fileSync } from "@ha/db";
import type { Ctx } from "../context.ts";

export function fileSyncRouter(ctx: Ctx): Router {
  const r = Router();
  r.get("/", async (_req, res) => {
    const rows = await ctx.db.select().from(fileSync).orderBy(asc(fileSync.nodeid));
    res.json({ nodes: rows });
  });
  return r;
}

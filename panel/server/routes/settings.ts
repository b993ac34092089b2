// /api/settings: the cluster-wide settings row (id 1).
import { Router } from "express";
import { isIP } from "node:net";
import { eq } from "drizzle-orm";
import { z } from "zod";
import { clusterSettings } from "@ha/db";
import type { Ctx } from "../context.ts";
import { audit, actorOf } from "../audit.ts";
import { parse } from "../errors.ts";
import { sessionOf } from "../auth/middleware.ts";

const Ip = z.string().refine((s) => isIP(s) !== 0, "not an IPv4 or IPv6 address");
const Settings = z
  .strictObject({
    clusterIp: Ip,
    clusterIpPrefix: z.number().int().min(1).max(128),
    clusterIpDevice: z.string().regex(/^[A-Za-z0-9_.:-]{1,15}$/, "an interface name: 1-15 letters, digits, '.', '_', ':' or '-'"),
    testIp: Ip.nullable(),
    panelPort: z.number().int().min(1).max(65535),
    fenceTimeoutMs: z.number().int().min(500).max(600_000),
    storageTimeoutMs: z.number().int().min(500).max(600_000),
    reserveNodes: z.array(z.number().int().min(1)).max(64),
    failback: z.boolean(),
  })
  .refine((s) => s.clusterIpPrefix <= (isIP(s.clusterIp) === 4 ? 32 : 128), { message: "an IPv4 prefix is 1-32", path: ["clusterIpPrefix"] });
const SettingsPatch = z.looseObject({}).refine((p) => Object.keys(p).length > 0, "give at least one setting");

export function settingsRouter(ctx: Ctx): Router {
  const r = Router();

  r.get("/", async (_req, res) => {
    const [row] = await ctx.db.select().from(clusterSettings).where(eq(clusterSettings.id, 1));
    res.json({ settings: row ?? null });
  });

  r.patch("/", async (req, res) => {
    const patch = parse(SettingsPatch, req.body);
    const [before] = await ctx.db.select().from(clusterSettings).where(eq(clusterSettings.id, 1));
    const { id: _id, updatedAt: _u, ...current } = before ?? {};
    // The merged result must be a complete, valid settings row; unknown keys are refused.
    const next = parse(Settings, { ...current, ...patch });
    if (before) await ctx.db.update(clusterSettings).set({ ...next, updatedAt: new Date() }).where(eq(clusterSettings.id, 1));
    else await ctx.db.insert(clusterSettings).values({ id: 1, ...next });
    const changed = (Object.keys(next) as Array<keyof typeof next>).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(before?.[k]));
    const user = sessionOf(req).username;
    await audit(
      ctx,
      { actor: actorOf(user), kind: "settings-change", summary: `cluster settings: ${changed.map((k) => `${k} ${JSON.stringify(before?.[k] ?? null)} -> ${JSON.stringify(next[k])}`).join(", ") || "no change"}`, reason: `set by ${user} in the panel` },
      "settings",
    );
    const [after] = await ctx.db.select().from(clusterSettings).where(eq(clusterSettings.id, 1));
    res.json({ settings: after });
  });

  return r;
}

// Every change made through the panel leaves an incident row (who, what, why) and tells browsers.
import { incidents, type NewIncident } from "@ha/db";
import type { Ctx } from "./context.ts";

export type AuditEntry = Pick<NewIncident, "kind" | "summary" | "reason" | "nodeid" | "vm" | "severity" | "phases"> & { actor: string };

export async function audit(ctx: Ctx, e: AuditEntry, resource?: string) {
  const row: NewIncident = { ...e, summary: e.summary.slice(0, 512), reason: e.reason.slice(0, 2048) };
  const [res] = await ctx.db.insert(incidents).values(row).$returningId();
  ctx.hub.broadcast("incident", { id: res?.id, at: new Date().toISOString(), ...row });
  if (resource) ctx.hub.broadcast("change", { resource });
}

export const actorOf = (username: string) => `user:${username}`;

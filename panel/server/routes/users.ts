// /api/users (admins only): list, create, change role, disable, reset password.
import { Router } from "express";
import { eq } from "drizzle-orm";
import { z } from "zod";
import { USER_ROLES, users } from "@ha/db";
import type { Ctx } from "../context.ts";
import { audit, actorOf } from "../audit.ts";
import { HttpError, parse } from "../errors.ts";
import { requireAdmin, sessionOf } from "../auth/middleware.ts";
import { hashPassword, Password, Username } from "../auth/passwords.ts";

const NewUser = z.strictObject({ username: Username, password: Password, role: z.enum(USER_ROLES) });
const UserPatch = z
  .strictObject({ role: z.enum(USER_ROLES), disabled: z.boolean(), password: Password })
  .partial()
  .refine((p) => Object.keys(p).length > 0, "give role, disabled or password");
const UserId = z.coerce.number().int().min(1);
const pub = { id: users.id, username: users.username, role: users.role, disabled: users.disabled, createdAt: users.createdAt, lastLogin: users.lastLogin };

export function usersRouter(ctx: Ctx): Router {
  const r = Router();
  r.use(requireAdmin());

  r.get("/", async (_req, res) => void res.json({ users: await ctx.db.select(pub).from(users).orderBy(users.username) }));

  r.post("/", async (req, res) => {
    const body = parse(NewUser, req.body);
    const [exists] = await ctx.db.select({ id: users.id }).from(users).where(eq(users.username, body.username));
    if (exists) throw new HttpError(409, `user ${body.username} exists`, "username");
    const [ins] = await ctx.db.insert(users).values({ username: body.username, role: body.role, passwordHash: await hashPassword(body.password) }).$returningId();
    const by = sessionOf(req).username;
    await audit(ctx, { actor: actorOf(by), kind: "user-created", summary: `user ${body.username} (${body.role}) created`, reason: `by ${by}` }, "users");
    res.status(201).json({ user: { id: ins!.id, username: body.username, role: body.role, disabled: false } });
  });

  r.patch("/:id", async (req, res) => {
    const id = parse(UserId, req.params.id);
    const patch = parse(UserPatch, req.body);
    const me = sessionOf(req);
    if (id === me.userId && (patch.role === "viewer" || patch.disabled === true)) throw new HttpError(400, "you cannot demote or disable yourself", patch.role ? "role" : "disabled");
    const [before] = await ctx.db.select(pub).from(users).where(eq(users.id, id));
    if (!before) throw new HttpError(404, `no user ${id}`);
    const { password, ...rest } = patch;
    await ctx.db.update(users).set({ ...rest, ...(password ? { passwordHash: await hashPassword(password) } : {}) }).where(eq(users.id, id));
    // Role, state or password changed: that user's sessions end (they log in again).
    for (const sid of await ctx.sessions.destroyUser(id)) ctx.hub.close(sid);
    const what = [rest.role && `role ${before.role} -> ${rest.role}`, rest.disabled !== undefined && (rest.disabled ? "disabled" : "enabled"), password && "password reset"].filter(Boolean).join(", ");
    await audit(ctx, { actor: actorOf(me.username), kind: "user-change", summary: `user ${before.username}: ${what}`, reason: `by ${me.username}` }, "users");
    const [after] = await ctx.db.select(pub).from(users).where(eq(users.id, id));
    res.json({ user: after });
  });

  return r;
}

// /api/login, /api/logout, /api/me, /api/setup.
import { Router, type Request } from "express";
import { eq, sql } from "drizzle-orm";
import { z } from "zod";
import { users } from "@ha/db";
import type { Ctx } from "../context.ts";
import { audit, actorOf } from "../audit.ts";
import { dbUnavailable, HttpError, parse } from "../errors.ts";
import { hashPassword, Password, Username, verifyPassword } from "./passwords.ts";
import { clearSessionCookies, readCookie, setSessionCookies, SID_COOKIE, type Session } from "./sessions.ts";
import { requireAuth, requireCsrf, sessionFromCookie, sessionOf } from "./middleware.ts";

const Login = z.strictObject({ username: z.string().min(1).max(64), password: z.string().min(1).max(256) });
const Setup = z.strictObject({ token: z.string().min(1).max(128), username: Username, password: Password });

const me = (s: Session) => ({ user: { id: s.userId, username: s.username, role: s.role }, csrf: s.csrf });

export function authRouter(ctx: Ctx): Router {
  const r = Router();

  r.post("/login", async (req, res) => {
    const body = parse(Login, req.body);
    const ip = clientIp(req);
    const verdict = ctx.limiter.check(ip, body.username);
    if (!verdict.ok) {
      throw new HttpError(429, `too many failed logins; try again in ${verdict.retryAfterS} s`, undefined, { "Retry-After": String(verdict.retryAfterS) });
    }
    const [u] = await ctx.db.select().from(users).where(eq(users.username, body.username)).limit(1);
    const good = await verifyPassword(u && !u.disabled ? u.passwordHash : null, body.password);
    if (!u || !good || u.disabled) {
      ctx.limiter.fail(ip, body.username);
      if (!ctx.limiter.check(ip, body.username).ok) {
        await audit(ctx, { actor: `ip:${ip}`, kind: "login-locked", severity: "warning", summary: `logins for "${body.username}" from ${ip} locked`, reason: "too many failed logins" }).catch(() => undefined);
      }
      throw new HttpError(401, "wrong username or password");
    }
    ctx.limiter.succeed(ip, body.username);
    // A new session id on every login: whatever id the browser had before is destroyed.
    await ctx.sessions.destroy(readCookie(req, SID_COOKIE));
    const s = await ctx.sessions.create({ id: u.id, username: u.username, role: u.role });
    setSessionCookies(res, s, ctx.secure);
    await ctx.db.update(users).set({ lastLogin: new Date() }).where(eq(users.id, u.id));
    await audit(ctx, { actor: actorOf(u.username), kind: "user-login", summary: `${u.username} logged in`, reason: `from ${ip}` });
    res.json(me(s));
  });

  r.post("/logout", requireAuth(ctx), requireCsrf(), async (req, res) => {
    const s = sessionOf(req);
    await ctx.sessions.destroy(s.id);
    ctx.hub.close(s.id);
    clearSessionCookies(res, ctx.secure);
    res.status(204).end();
  });

  r.get("/me", requireAuth(ctx), (req, res) => void res.json(me(sessionOf(req))));
  /** Like /me, but 200 with { user: null } when logged out (the UI's first request). */
  r.get("/session", async (req, res) => {
    const s = await sessionFromCookie(ctx, req);
    res.json(s ? me(s) : { user: null });
  });

  r.get("/setup", async (_req, res) => {
    if (ctx.setup.needed === null) await ctx.setup.init();
    if (ctx.setup.needed === null) throw dbUnavailable("the users table cannot be read");
    res.json({ needed: ctx.setup.needed });
  });

  r.post("/setup", async (req, res) => {
    const body = parse(Setup, req.body);
    const ip = clientIp(req);
    const verdict = ctx.limiter.check(ip, "(setup)");
    if (!verdict.ok) throw new HttpError(429, `too many failed attempts; try again in ${verdict.retryAfterS} s`, undefined, { "Retry-After": String(verdict.retryAfterS) });
    if (ctx.setup.needed === false) throw new HttpError(409, "setup is done: log in instead");
    if (!ctx.setup.take(body.token)) {
      ctx.limiter.fail(ip, "(setup)");
      throw new HttpError(403, "wrong or used setup token (it is printed in the panel's log on the master)", "token");
    }
    let id: number;
    try {
      const [n] = await ctx.db.select({ n: sql<number>`count(*)` }).from(users);
      if (Number(n?.n ?? 0) > 0) {
        ctx.setup.done();
        throw new HttpError(409, "setup is done: log in instead");
      }
      const [ins] = await ctx.db.insert(users).values({ username: body.username, passwordHash: await hashPassword(body.password), role: "admin" }).$returningId();
      id = ins!.id;
    } catch (err) {
      if (!(err instanceof HttpError)) ctx.setup.restore(body.token);
      throw err;
    }
    ctx.setup.done();
    const s = await ctx.sessions.create({ id, username: body.username, role: "admin" });
    setSessionCookies(res, s, ctx.secure);
    await audit(ctx, { actor: actorOf(body.username), kind: "user-created", summary: `admin ${body.username} created with the setup token`, reason: "first start" });
    res.status(201).json(me(s));
  });

  return r;
}

export const clientIp = (req: Request) => req.ip ?? req.socket.remoteAddress ?? "unknown";

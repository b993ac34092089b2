// Who is asking (session cookie), may they write (CSRF header, role), may anyone write (quorum).
import type { Request, RequestHandler } from "express";
import type { Ctx } from "../context.ts";
import { dbUnavailable, dbUnavailableReason, HttpError } from "../errors.ts";
import { refuseChangesBecause } from "../status.ts";
import { CSRF_COOKIE, CSRF_HEADER, readCookie, sameToken, SID_COOKIE, type Session } from "./sessions.ts";

const sessions = new WeakMap<Request, Session>();

/** The request's session; only after requireAuth. */
export function sessionOf(req: Request): Session {
  const s = sessions.get(req);
  if (!s) throw new HttpError(401, "log in first");
  return s;
}

export const isWrite = (method: string) => !["GET", "HEAD", "OPTIONS"].includes(method);

export function requireAuth(ctx: Ctx): RequestHandler {
  return async (req, _res, next) => {
    const s = await sessionFromCookie(ctx, req);
    if (!s) return next(new HttpError(401, "log in first"));
    sessions.set(req, s);
    next();
  };
}

/** The cookie's session (sessions live in the DB: an unreachable DB is a 503, not a logout). */
export async function sessionFromCookie(ctx: Ctx, req: Request): Promise<Session | undefined> {
  try {
    return await ctx.sessions.get(readCookie(req, SID_COOKIE));
  } catch (err) {
    const down = dbUnavailableReason(err);
    if (!down) throw err; // a bug: the error handler logs it, 500
    ctx.log.warn({ reason: down, err: (err as { cause?: Error }).cause?.message ?? (err as Error).message }, "cannot check a session: database unavailable");
    throw dbUnavailable(down);
  }
}

/** Writes must carry the session's CSRF token in a header and in the cookie (double submit). */
export function requireCsrf(): RequestHandler {
  return (req, _res, next) => {
    if (!isWrite(req.method)) return next();
    const s = sessionOf(req);
    const header = req.get(CSRF_HEADER);
    if (!sameToken(header, s.csrf) || !sameToken(readCookie(req, CSRF_COOKIE), s.csrf)) {
      return next(new HttpError(403, "missing or wrong CSRF token (send the ha_csrf cookie's value in the X-CSRF-Token header)"));
    }
    next();
  };
}

/** Viewers may read everything and change nothing. */
export function requireAdminForWrites(): RequestHandler {
  return (req, _res, next) => {
    if (isWrite(req.method) && sessionOf(req).role !== "admin") return next(new HttpError(403, "viewers cannot change anything; ask an admin"));
    next();
  };
}

export function requireAdmin(): RequestHandler {
  return (req, _res, next) => next(sessionOf(req).role === "admin" ? undefined : new HttpError(403, "admins only"));
}

/** Cluster changes need a quorate cluster: the agent could not apply them safely otherwise. */
export function requireQuorumForWrites(ctx: Ctx): RequestHandler {
  return (req, _res, next) => {
    if (!isWrite(req.method)) return next();
    const why = refuseChangesBecause(ctx.status.status);
    next(why ? new HttpError(409, why) : undefined);
  };
}

/** Writes must be JSON: an HTML form from another site cannot send that without a preflight. */
export function requireJson(): RequestHandler {
  return (req, _res, next) => {
    if (isWrite(req.method) && req.headers["content-length"] !== "0" && (req.headers["content-length"] || req.headers["transfer-encoding"]) && !req.is("application/json")) {
      return next(new HttpError(415, "send JSON (Content-Type: application/json)"));
    }
    next();
  };
}

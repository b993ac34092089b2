// Sessions live in the panel's memory: a failover moves the panel, and people log in again.
// Ids are 256 random bits made here only; a cookie with an id we did not issue is ignored, and
// logging in always issues a new id (the old one is destroyed), so fixation is impossible.
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Request, Response } from "express";
import type { UserRole } from "./roles.ts";

export type Session = {
  id: string;
  userId: number;
  username: string;
  role: UserRole;
  csrf: string;
  createdAt: number;
  lastSeen: number;
};

export const SID_COOKIE = "ha_sid";
export const CSRF_COOKIE = "ha_csrf";
export const CSRF_HEADER = "x-csrf-token";

const token = () => randomBytes(32).toString("base64url");

export class SessionStore {
  private readonly byId = new Map<string, Session>();
  constructor(
    readonly idleMs = 2 * 3600_000,
    readonly maxAgeMs = 12 * 3600_000,
    private readonly now: () => number = Date.now,
  ) {}

  create(user: { id: number; username: string; role: UserRole }): Session {
    const t = this.now();
    const s: Session = { id: token(), userId: user.id, username: user.username, role: user.role, csrf: token(), createdAt: t, lastSeen: t };
    this.byId.set(s.id, s);
    return s;
  }

  /** The live session for an id, touched; undefined for unknown or expired ids. */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.byId.get(id);
    if (!s) return undefined;
    const t = this.now();
    if (t - s.lastSeen > this.idleMs || t - s.createdAt > this.maxAgeMs) {
      this.byId.delete(id);
      return undefined;
    }
    s.lastSeen = t;
    return s;
  }

  /** Like get, without counting as activity. */
  valid(id: string): boolean {
    const s = this.byId.get(id);
    const t = this.now();
    return s !== undefined && t - s.lastSeen <= this.idleMs && t - s.createdAt <= this.maxAgeMs;
  }

  destroy(id: string | undefined) {
    if (id) this.byId.delete(id);
  }

  /** Ends every session of a user (disabled, role or password changed). */
  destroyUser(userId: number): string[] {
    const ids: string[] = [];
    for (const [id, s] of this.byId) if (s.userId === userId) (this.byId.delete(id), ids.push(id));
    return ids;
  }

  get size() {
    return this.byId.size;
  }
}

export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export function setSessionCookies(res: Response, s: Session, secure: boolean) {
  const base = { sameSite: "strict" as const, secure, path: "/" };
  res.cookie(SID_COOKIE, s.id, { ...base, httpOnly: true });
  // Readable by the page: it sends it back in the X-CSRF-Token header (double submit).
  res.cookie(CSRF_COOKIE, s.csrf, { ...base, httpOnly: false });
}

export function clearSessionCookies(res: Response, secure: boolean) {
  const base = { sameSite: "strict" as const, secure, path: "/" };
  res.clearCookie(SID_COOKIE, { ...base, httpOnly: true });
  res.clearCookie(CSRF_COOKIE, base);
}

export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

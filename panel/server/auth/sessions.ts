// Login sessions, kept in the replicated DB (table `sessions`) so a failover, which moves the panel
// to another node, does not log everybody out.
//  - Ids are 256 random bits made here only; the DB keeps only their SHA-256 (`id_hash`), so a DB
//    dump or a replica does not hand out live cookies. A cookie with an id we did not issue is
//    ignored, and logging in always issues a new id (the old one is destroyed): no fixation.
//  - Idle and absolute limits are checked on every request. To avoid a DB write per request, a
//    session is re-read and its `last_seen` written at most every `touchMs` (30 s); in between the
//    panel trusts its in-memory copy. After a failover the idle clock restarts from the DB's
//    `last_seen`, which lags by at most `touchMs`: a session may idle out up to 30 s early, never late.
//  - Re-reading joins `users`, so a disabled user, or a changed role, is seen at the next re-read
//    even if the change came from elsewhere; changes made in this panel end the sessions at once.
//  - Expired rows are deleted every few minutes (`startPurging`).
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Request, Response } from "express";
import { eq, lt, or } from "drizzle-orm";
import { sessions, users, type Db } from "@ha/db";
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
/** What our ids look like (43 base64url characters): anything else is not worth a DB lookup. */
const ID_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** The DB key of a session: only the hash of the cookie's value is ever stored. */
export const hashSessionId = (id: string) => createHash("sha256").update(id).digest("hex");

export type SessionTiming = {
  /** Logged out after this long without a request. */
  idleMs: number;
  /** Logged out this long after login, active or not. */
  maxAgeMs: number;
  /** Re-read the row and write `last_seen` at most this often per session. */
  touchMs: number;
};
export const DEFAULT_TIMING: SessionTiming = { idleMs: 2 * 3600_000, maxAgeMs: 12 * 3600_000, touchMs: 30_000 };

/** Pure: has a session outlived its idle or absolute limit at `now`? */
export function isExpired(s: { createdAt: number; lastSeen: number }, now: number, t: Pick<SessionTiming, "idleMs" | "maxAgeMs">): boolean {
  return now - s.lastSeen > t.idleMs || now - s.createdAt > t.maxAgeMs;
}

/** Pure: is the in-memory copy recent enough to answer without the DB? */
export const needsDbCheck = (checkedAt: number, now: number, touchMs: number) => now - checkedAt >= touchMs;

type Cached = { session: Session; checkedAt: number };

export class SessionStore {
  /** By raw id. Only sessions used through this process; the DB is the truth. */
  private readonly cache = new Map<string, Cached>();
  private purgeTimer: NodeJS.Timeout | null = null;
  readonly timing: SessionTiming;

  constructor(
    private readonly db: Db,
    timing: Partial<SessionTiming> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.timing = { ...DEFAULT_TIMING, ...timing };
  }

  async create(user: { id: number; username: string; role: UserRole }): Promise<Session> {
    const t = this.now();
    const s: Session = { id: token(), userId: user.id, username: user.username, role: user.role, csrf: token(), createdAt: t, lastSeen: t };
    await this.db.insert(sessions).values({ idHash: hashSessionId(s.id), userId: s.userId, csrf: s.csrf, createdAt: new Date(t), lastSeen: new Date(t) });
    this.cache.set(s.id, { session: s, checkedAt: t });
    return s;
  }

  /**
   * The live session for a cookie's id, counted as activity; undefined for unknown, expired or
   * disabled-user ids. Throws only when the DB is needed and unreachable.
   */
  async get(id: string | undefined): Promise<Session | undefined> {
    if (!id || !ID_SHAPE.test(id)) return undefined;
    const t = this.now();
    const cached = this.cache.get(id);
    if (cached && !needsDbCheck(cached.checkedAt, t, this.timing.touchMs)) {
      if (isExpired(cached.session, t, this.timing)) return this.expire(id);
      cached.session.lastSeen = t;
      return cached.session;
    }
    let row;
    try {
      [row] = await this.db
        .select({ userId: sessions.userId, csrf: sessions.csrf, createdAt: sessions.createdAt, lastSeen: sessions.lastSeen, username: users.username, role: users.role, disabled: users.disabled })
        .from(sessions)
        .innerJoin(users, eq(users.id, sessions.userId))
        .where(eq(sessions.idHash, hashSessionId(id)))
        .limit(1);
    } catch (err) {
      // DB briefly away (e.g. during a promotion): a session this process knows stays usable.
      if (cached && !isExpired(cached.session, t, this.timing)) return ((cached.session.lastSeen = t), cached.session);
      throw err;
    }
    if (!row || row.disabled) {
      this.cache.delete(id);
      return undefined;
    }
    const s: Session = {
      id,
      userId: row.userId,
      username: row.username,
      role: row.role,
      csrf: row.csrf,
      createdAt: row.createdAt.getTime(),
      lastSeen: Math.max(row.lastSeen.getTime(), cached?.session.lastSeen ?? 0),
    };
    if (isExpired(s, t, this.timing)) return this.expire(id);
    s.lastSeen = t;
    // Best effort: right after a failover the local DB may still be read-only (being promoted); the
    // session was read fine, so it is valid, and last_seen is written at the next re-check.
    await this.db
      .update(sessions)
      .set({ lastSeen: new Date(t) })
      .where(eq(sessions.idHash, hashSessionId(id)))
      .catch(() => undefined);
    this.cache.set(id, { session: s, checkedAt: t });
    return s;
  }

  /** An expired session: forgotten at once; its row goes now or at the next purge. */
  private async expire(id: string): Promise<undefined> {
    this.cache.delete(id);
    await this.db.delete(sessions).where(eq(sessions.idHash, hashSessionId(id))).catch(() => undefined);
    return undefined;
  }

  /** Like get, without counting as activity or touching the DB (SSE checks its streams with it). */
  valid(id: string): boolean {
    const c = this.cache.get(id);
    return c !== undefined && !isExpired(c.session, this.now(), this.timing);
  }

  async destroy(id: string | undefined): Promise<void> {
    if (!id) return;
    this.cache.delete(id);
    if (ID_SHAPE.test(id)) await this.db.delete(sessions).where(eq(sessions.idHash, hashSessionId(id)));
  }

  /** Ends every session of a user (disabled, role or password changed). Returns the ids known here (for SSE). */
  async destroyUser(userId: number): Promise<string[]> {
    const ids: string[] = [];
    for (const [id, c] of this.cache) if (c.session.userId === userId) (this.cache.delete(id), ids.push(id));
    await this.db.delete(sessions).where(eq(sessions.userId, userId));
    return ids;
  }

  /** Deletes expired rows (and forgets expired cached sessions). Returns how many rows went. */
  async purgeExpired(): Promise<number> {
    const t = this.now();
    for (const [id, c] of this.cache) if (isExpired(c.session, t, this.timing)) this.cache.delete(id);
    // last_seen lags by up to touchMs; a row is only purged once even the lagging value is too old.
    const idleBefore = new Date(t - this.timing.idleMs - this.timing.touchMs);
    const createdBefore = new Date(t - this.timing.maxAgeMs);
    const [r] = await this.db.delete(sessions).where(or(lt(sessions.lastSeen, idleBefore), lt(sessions.createdAt, createdBefore)));
    return Number((r as { affectedRows?: number }).affectedRows ?? 0);
  }

  /** Purges now and then every `everyMs`; errors (DB away) are passed to `onError` and retried next time. */
  startPurging(everyMs: number, onError: (err: Error) => void) {
    const run = () => void this.purgeExpired().catch(onError);
    run();
    this.purgeTimer = setInterval(run, everyMs);
    this.purgeTimer.unref();
  }

  stop() {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.purgeTimer = null;
  }

  /** Sessions known to this process (not the DB's count). */
  get size() {
    return this.cache.size;
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

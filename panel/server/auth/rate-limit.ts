// Failed logins per (IP, user) and per IP, in a fixed window. A locked key refuses even the right
// password until the window ends, so guessing cannot continue by trying the right one "just once".
export type LimitVerdict = { ok: true } | { ok: false; retryAfterS: number };

type Entry = { failures: number; windowStart: number };

export class LoginLimiter {
  private readonly entries = new Map<string, Entry>();
  constructor(
    readonly perUser = 5,
    readonly perIp = 30,
    readonly windowMs = 15 * 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 50_000,
  ) {}

  check(ip: string, username: string): LimitVerdict {
    const t = this.now();
    for (const [key, max] of [[userKey(ip, username), this.perUser], [`ip|${ip}`, this.perIp]] as const) {
      const e = this.live(key, t);
      if (e && e.failures >= max) return { ok: false, retryAfterS: Math.max(1, Math.ceil((e.windowStart + this.windowMs - t) / 1000)) };
    }
    return { ok: true };
  }

  fail(ip: string, username: string) {
    const t = this.now();
    for (const key of [userKey(ip, username), `ip|${ip}`]) {
      const e = this.live(key, t);
      if (e) e.failures++;
      else {
        if (this.entries.size >= this.maxEntries) this.prune(t);
        this.entries.set(key, { failures: 1, windowStart: t });
      }
    }
  }

  succeed(ip: string, username: string) {
    this.entries.delete(userKey(ip, username));
  }

  private live(key: string, t: number): Entry | undefined {
    const e = this.entries.get(key);
    if (e && t - e.windowStart >= this.windowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private prune(t: number) {
    for (const [k, e] of this.entries) if (t - e.windowStart >= this.windowMs) this.entries.delete(k);
    // Still full (an attack from many addresses): forget the oldest half rather than grow.
    if (this.entries.size >= this.maxEntries) [...this.entries.keys()].slice(0, this.maxEntries / 2).forEach((k) => this.entries.delete(k));
  }
}

const userKey = (ip: string, username: string) => `u|${ip}|${username.toLowerCase()}`;

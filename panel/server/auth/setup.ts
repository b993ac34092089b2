// First start: no users yet, so a one-time setup token is printed in the log; whoever has it (the
// operator reading the master's journal) creates the first admin. There is no default password.
import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import { users, type Db } from "@ha/db";
import { sameToken } from "./sessions.ts";

export class SetupToken {
  private token: string | null = null;
  private usersExist: boolean | null = null;
  private retry: NodeJS.Timeout | null = null;
  private warned = false;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {}

  /** True while no user exists (setup is possible); null when the DB has not answered yet. */
  get needed(): boolean | null {
    return this.usersExist === null ? null : !this.usersExist;
  }

  /** Checks the users table; while it is empty, makes a token and logs it. Retries while the DB is down. */
  async init(): Promise<string | null> {
    try {
      const [row] = await this.db.select({ n: sql<number>`count(*)` }).from(users);
      this.usersExist = Number(row?.n ?? 0) > 0;
    } catch (err) {
      const cause = (err as { cause?: Error }).cause?.message ?? (err as Error).message;
      if (!this.warned) this.log.warn({ err: cause }, "cannot read the users table yet; retrying every 5 s");
      this.warned = true;
      this.retry ??= setTimeout(() => ((this.retry = null), void this.init()), 5000);
      this.retry.unref();
      return null;
    }
    if (this.usersExist) return null;
    this.token ??= randomBytes(24).toString("base64url");
    this.log.warn({ setupToken: this.token }, `no panel users yet: open the panel and create the admin with this one-time setup token: ${this.token}`);
    return this.token;
  }

  /** Takes the token if it matches (once); put it back with `restore` if creating the admin failed. */
  take(candidate: string): boolean {
    if (this.token === null || !sameToken(candidate, this.token)) return false;
    this.token = null;
    return true;
  }

  restore(token: string) {
    this.token = token;
  }

  done() {
    this.usersExist = true;
    this.token = null;
  }

  stop() {
    if (this.retry) clearTimeout(this.retry);
  }
}

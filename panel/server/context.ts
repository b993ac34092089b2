// What every route needs, made once by createApp.
import type { Logger } from "pino";
import type { Db } from "@ha/db";
import type { StatusSource } from "./status.ts";
import type { SseHub } from "./sse.ts";
import type { SessionStore } from "./auth/sessions.ts";
import type { LoginLimiter } from "./auth/rate-limit.ts";
import type { SetupToken } from "./auth/setup.ts";

export type Ctx = {
  db: Db;
  status: StatusSource;
  hub: SseHub;
  sessions: SessionStore;
  limiter: LoginLimiter;
  setup: SetupToken;
  log: Logger;
  /** Cookies get Secure (the panel serves HTTPS). */
  secure: boolean;
  node: string;
};

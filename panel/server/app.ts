// The Express app: health (public), auth, the API behind a session, SSE, and the built UI.
import express, { Router, type RequestHandler } from "express";
import { existsSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import type { Db } from "@ha/db";
import type { Ctx } from "./context.ts";
import { errorHandler, HttpError } from "./errors.ts";
import { SseHub } from "./sse.ts";
import { StatusSource } from "./status.ts";
import { SessionStore, type SessionTiming } from "./auth/sessions.ts";
import { LoginLimiter } from "./auth/rate-limit.ts";
import { SetupToken } from "./auth/setup.ts";
import { authRouter } from "./auth/routes.ts";
import { requireAdminForWrites, requireAuth, requireCsrf, requireJson, requireQuorumForWrites, sessionOf } from "./auth/middleware.ts";
import { nodesRouter } from "./routes/nodes.ts";
import { vmsRouter } from "./routes/vms.ts";
import { settingsRouter } from "./routes/settings.ts";
import { incidentsRouter } from "./routes/incidents.ts";
import { fileSyncRouter } from "./routes/file-sync.ts";
import { electionRouter, electionState } from "./routes/election.ts";
import { usersRouter } from "./routes/users.ts";
import { admissionRouter } from "./routes/admission.ts";
import { MajorityBarrier, dbNodesOf, durableWrites, localState, type PeerConnector } from "./durability.ts";
import { ReadGate, readGate } from "./read-gate.ts";

export const DEFAULT_WEB_DIST = resolve(dirname(fileURLToPath(import.meta.url)), "../web/dist");
export const BODY_LIMIT = "16kb";

export type AppOptions = {
  db: Db;
  status: StatusSource;
  log: Logger;
  node: string;
  /** Health's `start`: did the panel move here (failover) or restart in place. */
  start: "moved" | "restarted";
  secure: boolean;
  /** Send Strict-Transport-Security (default: when secure). */
  hsts?: boolean;
  webDist?: string;
  trustProxy?: boolean;
  limiter?: LoginLimiter;
  /** Session limits (tests shorten them); defaults in auth/sessions.ts. */
  sessionTiming?: Partial<SessionTiming>;
  /** How the majority barrier reaches the other database nodes (main.ts: TCP with the panel's account; absent: it cannot, so they never confirm). */
  peers?: PeerConnector;
  /** How long a change may wait for a majority of the database nodes (PANEL_DURABLE_TIMEOUT_MS). */
  durableTimeoutMs?: number;
};

const noPeers: PeerConnector = () => {
  throw new Error("no connection to the other database nodes configured");
};

/** Expired session rows are deleted this often. */
const SESSION_PURGE_MS = 5 * 60_000;

export function createApp(o: AppOptions) {
  const sessions = new SessionStore(o.db, o.sessionTiming);
  sessions.startPurging(SESSION_PURGE_MS, (err) => o.log.debug({ err: err.message }, "expired sessions not purged (database unavailable)"));
  const hub = new SseHub(15_000, (sid) => sessions.valid(sid));
  const ctx: Ctx = {
    db: o.db,
    status: o.status,
    hub,
    sessions,
    limiter: o.limiter ?? new LoginLimiter(),
    setup: new SetupToken(o.db, o.log),
    log: o.log,
    secure: o.secure,
    node: o.node,
  };
  const startedAt = new Date().toISOString();
  // A change is acknowledged only once a majority of the database nodes has it (durability.ts);
  // the API serves nothing before this node's database was seen writable (read-gate.ts).
  const local = localState(o.db.$client);
  const barrier = new MajorityBarrier({ node: o.node, local, nodes: () => dbNodesOf(o.status.status.view), connect: o.peers ?? noPeers, timeoutMs: o.durableTimeoutMs ?? 4000, log: o.log });
  const gate = new ReadGate(async () => (await local()).readOnly);
  const onStatus = () => {
    hub.broadcast("status", electionState(o.status.status));
    hub.broadcast("change", { resource: "nodes" });
  };
  o.status.on("change", onStatus);

  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", o.trustProxy ? "loopback" : false);
  app.use(securityHeaders(o.hsts ?? o.secure));

  // Probed by the HA tests: no login, no DB.
  app.get("/api/health", (_req, res) => void res.json({ ok: true, node: o.node, start: o.start, startedAt }));

  const api = Router();
  api.use((_req, res, next) => (res.setHeader("Cache-Control", "no-store"), next()));
  api.use(readGate(gate));
  // Before every route that writes (login, logout and setup write sessions and users too).
  api.use(durableWrites(barrier, o.log));
  api.use(requireJson());
  api.use(express.json({ limit: BODY_LIMIT, strict: true }));
  api.use(authRouter(ctx));

  const authed = Router();
  authed.use(requireAuth(ctx), requireCsrf(), requireAdminForWrites());
  authed.get("/events", (req, res) => hub.open(req, res, sessionOf(req).id, [["status", electionState(o.status.status)]]));
  authed.use("/election", electionRouter(ctx));
  authed.use("/incidents", incidentsRouter(ctx));
  authed.use("/file-sync", fileSyncRouter(ctx));
  authed.use("/users", usersRouter(ctx));
  authed.use("/admission", admissionRouter(ctx));
  authed.use("/nodes", requireQuorumForWrites(ctx), nodesRouter(ctx));
  authed.use("/vms", requireQuorumForWrites(ctx), vmsRouter(ctx));
  authed.use("/settings", requireQuorumForWrites(ctx), settingsRouter(ctx));
  api.use(authed);
  api.use((req, _res, next) => next(new HttpError(404, `no such endpoint: ${req.method} ${req.path}`)));
  app.use("/api", api);

  const dist = o.webDist ?? DEFAULT_WEB_DIST;
  if (existsSync(join(dist, "index.html"))) {
    app.use(express.static(dist, { index: false, maxAge: "1h", setHeaders: (res, path) => path.endsWith(".html") && res.setHeader("Cache-Control", "no-store") }));
    app.get(/^\/(?!api\/).*/, (_req, res) => res.setHeader("Cache-Control", "no-store").sendFile(join(dist, "index.html")));
  } else {
    app.get("/", (_req, res) => void res.type("text/plain").send(`The panel's UI is not built: run "pnpm --filter @ha/panel build" (looked in ${dist}).\n`));
  }
  app.use(errorHandler(o.log));

  return {
    app,
    ctx,
    /** Checks for users; while there are none, logs (and returns) the one-time setup token. */
    init: () => ctx.setup.init(),
    /** Stops timers and streams; the returned promise ends when the barrier's pools are closed. */
    close(): Promise<void> {
      o.status.off("change", onStatus);
      ctx.setup.stop();
      sessions.stop();
      hub.close();
      return barrier.close();
    },
  };
}

function securityHeaders(hsts: boolean): RequestHandler {
  const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
  return (_req, res, next) => {
    res.setHeader("Content-Security-Policy", csp);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    if (hsts) res.setHeader("Strict-Transport-Security", "max-age=31536000");
    next();
  };
}

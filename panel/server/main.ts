#!/usr/bin/env node
// The control panel's server. Started by corolistener on the master only, bound to the cluster IP.
// GET /api/health answers without login or database (the HA tests probe it); everything else is
// the API (see app.ts) and the built UI from panel/web/dist.
import { createServer as createHttp, type RequestListener, type Server } from "node:http";
import { createServer as createHttps } from "node:https";
import { pino } from "pino";
import { consumeRelocatedMarker } from "@ha/shared";
import { openDb, DbTarget } from "@ha/db";
import { parseEnv } from "./config.ts";
import { createApp } from "./app.ts";
import { StatusSource } from "./status.ts";
import { resolveTls, type TlsMaterial } from "./tls.ts";
import { masterFromStatusFile, panelUrlOf, refusalHandler, type RefusalInfo } from "./refusal.ts";
import { tcpPeers } from "./durability.ts";
import type { Logger } from "pino";

/**
 * Warm standby: the agent keeps a panel process loaded on every node (PANEL_STANDBY=1, with an IPC
 * channel) and activates it when this node becomes master, so failover does not wait for Node to
 * load and compile the panel (about a second on a busy node).
 */
function waitForActivation(): Promise<void> {
  if (process.env.PANEL_STANDBY !== "1" || !process.send) return Promise.resolve();
  return new Promise((resolve) => {
    process.on("message", (m: { type?: string }) => m?.type === "activate" && resolve());
    process.send!({ type: "standby" });
  });
}

async function main() {
  const env = parseEnv();
  // The panel (or its standby) must not outlive the agent that guards its lease on the cluster IP.
  process.on("disconnect", () => process.exit(0));
  const log = pino({ level: env.PANEL_LOG_LEVEL, base: { node: env.PANEL_NODE }});
  // Before waiting: making a certificate (once) must never delay a failover.
  const tls = await resolveTls(env, log);
  const secure = tls !== null;
  let active = false;
  const refusal = startRefusalServer(env.PANEL_NODE_ADDR, env.PANEL_HOST, env.PANEL_PORT, tls, log, () => ({
    node: env.PANEL_NODE,
    clusterIp: env.PANEL_HOST,
    panelUrl: panelUrlOf(env.PANEL_HOST, env.PANEL_PORT, secure),
    isMaster: active,
    master: active ? env.PANEL_NODE : masterFromStatusFile(env.PANEL_STATUS_FILE, env.PANEL_STATUS_MAX_AGE_MS),
  }));
  await waitForActivation();
  active = true;
  // "moved here" (failover) vs "restarted" (same node): the agent leaves a marker when it moved.
  const moved = await consumeRelocatedMarker({ relocatedMarkerFile: env.PANEL_RELOCATED_MARKER });
  if (moved) log.info("panel moved here: takeover");

  const target = DbTarget.parse({
    host: env.PANEL_DB_HOST,
    port: env.PANEL_DB_PORT,
    socketPath: env.PANEL_DB_HOST ? undefined : env.PANEL_DB_SOCKET,
    user: env.PANEL_DB_USER,
    password: env.PANEL_DB_PASSWORD,
    database: env.PANEL_DB_NAME,
  });
  const database = openDb(target, { connectionLimit: 10 });
  const status = new StatusSource(env.PANEL_STATUS_FILE, env.PANEL_STATUS_MAX_AGE_MS);
  await status.start();
  // HSTS only with the admin's own certificate: with a self-signed one it would stop browsers from
  // letting people accept the certificate at all (and browsers ignore HSTS for IP addresses anyway).
  // The other database nodes are reached over TCP with the panel's own account (it exists on every node).
  const peers = tcpPeers({ user: env.PANEL_DB_USER, password: env.PANEL_DB_PASSWORD }, { connectTimeoutMs: env.PANEL_DURABLE_TIMEOUT_MS });
  const panel = createApp({
    db: database.db, status, log, node: env.PANEL_NODE, start: moved ? "moved" : "restarted", secure, hsts: tls?.source === "provided", webDist: env.PANEL_WEB_DIST, trustProxy: env.PANEL_TRUST_PROXY,
    peers, durableTimeoutMs: env.PANEL_DURABLE_TIMEOUT_MS,
  });
  const server = serve(tls, panel.app);
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.on("error", (err) => {
    log.fatal(`panel: cannot listen on ${env.PANEL_HOST}:${env.PANEL_PORT}: ${err.message}`);
    process.exit(1);
  });
  server.listen(env.PANEL_PORT, env.PANEL_HOST, () => {
    log.info({ host: env.PANEL_HOST, port: env.PANEL_PORT, tls: tls?.source ?? false, db: `${target.user}@${target.socketPath ?? `${target.host}:${target.port}`}/${target.database}` }, "panel listening");
    // Not awaited: the panel serves health even while the database is not there yet.
    void panel.init();
  });
  const shutdown = () => {
    const closing = panel.close(); // ends the barrier's pools to the other nodes
    status.stop();
    refusal?.close();
    refusal?.closeAllConnections();
    server.close(() => void Promise.all([closing, database.close()]).finally(() => process.exit(0)));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, shutdown);
}

function serve(tls: TlsMaterial | null, handler: RequestListener): Server {
  return tls ? createHttps({ cert: tls.cert, key: tls.key }, handler) : createHttp(handler);
}

/**
 * On this node's own address: a refusal pointing to the cluster IP (refusal.ts), for the process's
 * whole life (standby and active). Best effort: a failure to listen there is logged, never fatal.
 */
function startRefusalServer(nodeAddr: string | undefined, host: string, port: number, tls: TlsMaterial | null, log: Logger, info: () => RefusalInfo): Server | null {
  if (!nodeAddr || nodeAddr === host || host === "0.0.0.0" || host === "::") return null;
  const server = serve(tls, refusalHandler(info));
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.on("error", (err) => log.warn(`panel: no refusal page on ${nodeAddr}:${port}: ${err.message}`));
  server.listen(port, nodeAddr, () => log.debug({ addr: nodeAddr, port }, "refusal page listening on this node's address"));
  return server;
}

main().catch((err: Error) => {
  console.error(`panel: ${err.message}`);
  process.exit(1);
});

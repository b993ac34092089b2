#!/usr/bin/env node
// The control panel's server. Started by corolistener on the master only, bound to the cluster IP.
// This first version serves the health endpoints the HA tests probe; the API and UI come next.
import express from "express";
import { z } from "zod";
import { consumeRelocatedMarker } from "@ha/shared";

const Env = z.object({
  PANEL_HOST: z.string().default("0.0.0.0"),
  PANEL_PORT: z.coerce.number().int().min(1).max(65535).default(1500),
  PANEL_NODE: z.string().default("unknown"),
  PANEL_RELOCATED_MARKER: z.string().default("/tmp/.lock.vmmgr.relocated"),
});

async function main() {
  const env = Env.parse(process.env);
  // "moved here" (failover) vs "restarted" (same node): the agent leaves a marker when it moved.
  const moved = await consumeRelocatedMarker({ relocatedMarkerFile: env.PANEL_RELOCATED_MARKER });
  if (moved) {
    // Takeover steps (DB promotion, VM recovery) are driven by the agent; the panel only records it.
    console.log(JSON.stringify({ msg: "panel moved here: takeover", node: env.PANEL_NODE }));
  }
  const startedAt = new Date().toISOString();
  const app = express();
  app.disable("x-powered-by");
  app.get(["/", "/api/health"], (_req, res) => {
    res.json({ ok: true, node: env.PANEL_NODE, start: moved ? "moved" : "restarted", startedAt });
  });
  const server = app.listen(env.PANEL_PORT, env.PANEL_HOST, () => {
    console.log(JSON.stringify({ msg: "panel listening", host: env.PANEL_HOST, port: env.PANEL_PORT, node: env.PANEL_NODE }));
  });
  server.on("error", (err) => {
    console.error(`panel: cannot listen on ${env.PANEL_HOST}:${env.PANEL_PORT}: ${err.message}`);
    process.exit(1);
  });
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => server.close(() => process.exit(0)));
}

main().catch((err: Error) => {
  console.error(`panel: ${err.message}`);
  process.exit(1);
});

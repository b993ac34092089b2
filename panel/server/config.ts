// The panel's settings, from the environment, validated once at start.
import { z } from "zod";

const bool = z.enum(["0", "1", "true", "false", "yes", "no"]).transform((v) => v === "1" || v === "true" || v === "yes");

export const Env = z.object({
  PANEL_HOST: z.string().min(1).default("0.0.0.0"),
  PANEL_PORT: z.coerce.number().int().min(1).max(65535).default(1500),
  PANEL_NODE: z.string().min(1).default("unknown"),
  PANEL_RELOCATED_MARKER: z.string().min(1).default("/tmp/.lock.vmmgr.relocated"),
  /** The agent's live view (agent/src/effects/status-file.ts). */
  PANEL_STATUS_FILE: z.string().min(1).default("/run/corolistener/status.json"),
  /** A status file older than this is "unknown" (the agent rewrites it at least every second). */
  PANEL_STATUS_MAX_AGE_MS: z.coerce.number().int().min(500).default(5000),
  /** Unix socket of the local MariaDB; PANEL_DB_HOST (with PANEL_DB_PORT) replaces it. */
  PANEL_DB_SOCKET: z.string().min(1).default("/run/mysqld/mysqld.sock"),
  PANEL_DB_HOST: z.string().min(1).optional(),
  PANEL_DB_PORT: z.coerce.number().int().min(1).max(65535).default(3306),
  PANEL_DB_USER: z.string().min(1).default("ha_panel"),
  PANEL_DB_PASSWORD: z.string().optional(),
  PANEL_DB_NAME: z.string().regex(/^[A-Za-z0-9_]{1,64}$/, "1-64 letters, digits or _").default("ha"),
  /** TLS: both set = HTTPS with Secure cookies. */
  PANEL_TLS_CERT: z.string().min(1).optional(),
  PANEL_TLS_KEY: z.string().min(1).optional(),
  /** Built UI (default panel/web/dist). */
  PANEL_WEB_DIST: z.string().min(1).optional(),
  /** Behind a TLS-terminating proxy on loopback: trust X-Forwarded-* (default off). */
  PANEL_TRUST_PROXY: bool.default(false),
  PANEL_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
}).refine((e) => (e.PANEL_TLS_CERT === undefined) === (e.PANEL_TLS_KEY === undefined), {
  message: "set both PANEL_TLS_CERT and PANEL_TLS_KEY, or neither",
  path: ["PANEL_TLS_CERT"],
});
export type Env = z.output<typeof Env>;

export function parseEnv(env: NodeJS.ProcessEnv = process.env): Env {
  const r = Env.safeParse(env);
  if (!r.success) throw new Error(`bad panel settings: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return r.data;
}

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
  /** How long a change waits for a majority of the database nodes before it is answered 503 (durability.ts). */
  PANEL_DURABLE_TIMEOUT_MS: z.coerce.number().int().min(100).max(20_000).default(4000),
  /** TLS: both set = HTTPS with Secure cookies and HSTS. */
  PANEL_TLS_CERT: z.string().min(1).optional(),
  PANEL_TLS_KEY: z.string().min(1).optional(),
  /** Without a cert/key: "auto" = HTTPS with a self-signed certificate made once (tls.ts); "off" = HTTP. */
  PANEL_TLS: z.enum(["off", "auto"]).default("off"),
  /** Where PANEL_TLS=auto keeps its certificate (replicate it so all nodes present the same one). */
  PANEL_TLS_DIR: z.string().min(1).default("/var/lib/corolistener/panel-tls"),
  /** Extra names/addresses for the self-signed certificate, comma-separated. */
  PANEL_TLS_SAN: z.string().default("").transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean)),
  /**
   * This node's own address. The panel is served only on the cluster IP (PANEL_HOST); on this
   * address every node answers with a refusal page pointing to the cluster IP (refusal.ts).
   */
  PANEL_NODE_ADDR: z.string().optional().transform((s) => s || undefined),
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

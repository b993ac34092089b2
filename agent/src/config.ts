// The agent's settings file, validated at the edge: a bad file stops start-up with a clear message.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { transitionLeaseMs } from "./core/lease.ts";
import { DEFAULT_SETTINGS, resolveSettings, settingsProblems, type Settings } from "./core/types.ts";
import { DatabaseConfigSchema } from "./effects/db/effects.ts";
import { FileSyncConfigSchema } from "./effects/file-sync/config.ts";

export const AgentConfigSchema = z.object({
  nodeName: z.string().optional(),
  clusterIp: z.ipv4().optional(),
  clusterIpPrefix: z.number().int().min(1).max(32).default(24),
  clusterIpDevice: z.string().min(1).default("vmbr0"), // CloudIpDev
  testIp: z.ipv4().optional(),
  storageDir: z.string().min(1).optional(),
  logFile: z.string().min(1).default("/usr/local/mgr5/var/corolistener.log"),
  statusFile: z.string().min(1).default("/run/corolistener/status.json"),
  serviceLockFile: z.string().min(1).default("/tmp/.lock.vmmgr.service"),
  relocatedMarkerFile: z.string().min(1).default("/tmp/.lock.vmmgr.relocated"),
  panelPort: z.number().int().min(1).max(65535).default(1500),
  cpgGroup: z.string().min(1).max(127).default("corolistener"),
  /** MariaDB replication managed by this agent; absent = this node runs no database. */
  database: DatabaseConfigSchema.optional(),
  /** The hypervisor driver; absent = this node runs no VMs. Options: agent/src/effects/vm/README.md. */
  vm: z
    .object({
      driver: z.enum(["libvirt", "process"]),
      stopTimeoutMs: z.number().int().positive().default(3000),
      /** At most this many VM starts at once on this node (vm/start-limit.ts). */
      maxParallelStarts: z.number().int().min(1).max(64).default(4),
      options: z.record(z.string(), z.unknown()).default({}),
    })
    .optional(),
  /** How the panel (started on the master) reaches the local database. */
  panelDb: z
    .object({
      socketPath: z.string().min(1).default("/run/mysqld/mysqld.sock"),
      user: z.string().min(1).default("ha_panel"),
      password: z.string().min(1),
      database: z.string().min(1).default("ha"),
    })
    .optional(),
  /** File replication (`nodereplication`, docs/operations.md "File replication"); absent = this node neither sends nor receives file sets. */
  fileSync: FileSyncConfigSchema.optional(),
  /**
   * HA timing and policy (see agent/src/core/README.md); unset values take the core's defaults,
   * except leaseMs, which follows corosync's timing unless set here (coreSettings()).
   */
  ha: z
    .object({
      /** Set = the fastest master failover, at the price of a master blip on every member failure. */
      leaseMs: z.number().int().positive(),
      leaseRenewMs: z.number().int().positive(),
      leaseMarginMs: z.number().int().nonnegative(),
      fenceTimeoutMs: z.number().int().positive(),
      storageTimeoutMs: z.number().int().positive(),
      failback: z.boolean(),
      reserveNodes: z.array(z.number().int().positive()),
    })
    .partial()
    .strict()
    .default({}),
});
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

/** corosync's effective timing, from cmap runtime.config.totem.* (absent until read). */
export interface TotemTiming {
  tokenMs?: number;
  consensusMs?: number;
}

/**
 * The core's settings: the agent config's `ha` section, with the lease from corosync's effective
 * timing unless `ha.leaseMs` is set: token + consensus + leaseRenewMs + slack, so the master
 * holds through a membership transition (core/lease.ts transitionLeaseMs). Pure; the daemon
 * calls it at start and again whenever corosync's timing changes (reload).
 */
export function coreSettings(ha: AgentConfig["ha"], timing: TotemTiming): { settings: Partial<Settings>; lease: string } {
  const settings: Partial<Settings> = { ...ha };
  if (ha.leaseMs !== undefined) {
    // An explicit lease also sizes the VM start window, as it did before the two were separate:
    // a cluster upgraded from such a config keeps one start window across old and new agents.
    settings.startWindowMs = ha.leaseMs;
    return { settings, lease: `leaseMs ${ha.leaseMs} (set in the agent config)` };
  }
  if (timing.tokenMs === undefined) {
    return { settings, lease: `leaseMs ${DEFAULT_SETTINGS.leaseMs} (default: corosync's timing not read yet)` };
  }
  // corosync always publishes consensus at runtime; 1.2 x token is its own default otherwise.
  const consensusMs = timing.consensusMs ?? Math.round(1.2 * timing.tokenMs);
  const renew = ha.leaseRenewMs ?? DEFAULT_SETTINGS.leaseRenewMs;
  settings.leaseMs = transitionLeaseMs({ tokenMs: timing.tokenMs, consensusMs }, renew);
  return { settings, lease: `leaseMs ${settings.leaseMs} = corosync token ${timing.tokenMs} + consensus ${consensusMs} + renewal ${renew} + slack: the master holds through a membership transition` };
}

/**
 * What settingsProblems() finds in the ha section before corosync's timing is known. Without an
 * explicit leaseMs the lease is derived from that timing at run time, so the daemon checks the
 * lease once it has read corosync's timing.
 */
export function haSettingsProblems(ha: AgentConfig["ha"]): string[] {
  const { settings } = coreSettings(ha, {});
  return settingsProblems(resolveSettings(ha.leaseMs === undefined ? { ...settings, leaseMs: Number.MAX_SAFE_INTEGER } : settings));
}

export function parseAgentConfig(text: string, source = "config"): AgentConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: not valid JSON: ${(err as Error).message}`);
  }
  const r = AgentConfigSchema.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new Error(`${source}: ${issues}`);
  }
  const problems = haSettingsProblems(r.data.ha);
  if (problems.length) throw new Error(`${source}: ha settings do not hold together: ${problems.join("; ")}`);
  return r.data;
}

export function loadAgentConfig(path: string | undefined): AgentConfig {
  if (!path) return AgentConfigSchema.parse({});
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read config ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseAgentConfig(text, path);
}

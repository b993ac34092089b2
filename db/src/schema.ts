// The control panel's data model (MariaDB/MySQL). drizzle-kit turns this file into the SQL
// migrations in db/migrations; never edit an applied migration, change this file and generate.
import { sql } from "drizzle-orm";
import { bigint, boolean, check, datetime, index, int, json, mysqlEnum, mysqlTable, smallint, tinyint, uniqueIndex, varchar } from "drizzle-orm/mysql-core";

/** What the cluster shows for a node (mirrors the agent core's NodeStatus). */
export const NODE_STATUSES = [
  "leader",
  "member",
  "network_isolation",
  "storage_isolation",
  "full_failure",
  "excluded",
  "network_unstable",
  "unknown",
  "offline",
] as const;

export const VM_STORAGE_KINDS = ["network", "local"] as const;
export const VM_STATES = ["stopped", "starting", "running", "stopping", "failed", "unknown"] as const;
/**
 * Where a VM's definition is: 'defined' = its record is on the shared storage (what the agents run);
 * 'pending' = created in the panel, the master's agent has not written the record yet;
 * 'failed' = the master could not write it (`definition_error` says why); the row stays until removed.
 */
export const VM_DEFINITION_STATES = ["pending", "defined", "failed"] as const;
export const USER_ROLES = ["admin", "viewer"] as const;
export const INCIDENT_SEVERITIES = ["info", "warning", "error"] as const;

// Millisecond precision: failover timelines are read at that scale.
const ms = (name: string) => datetime(name, { mode: "date", fsp: 3 });
const nowMs = sql`CURRENT_TIMESTAMP(3)`;

/** Cluster nodes: desired settings (prio, replication, maintenance) plus last observed status. */
export const nodes = mysqlTable(
  "nodes",
  {
    nodeid: int("nodeid", { unsigned: true }).primaryKey(),
    name: varchar("name", { length: 64 }).notNull(),
    address: varchar("address", { length: 45 }).notNull(), // IPv4 or IPv6 text form
    prio: int("prio").notNull().default(0),
    replication: boolean("replication").notNull().default(true),
    maintenance: boolean("maintenance").notNull().default(false),
    reserve: boolean("reserve").notNull().default(false),
    status: mysqlEnum("status", NODE_STATUSES).notNull().default("unknown"),
    lastSeen: ms("last_seen"),
    updatedAt: ms("updated_at").notNull().default(nowMs),
  },
  (t) => [uniqueIndex("nodes_name_uq").on(t.name), uniqueIndex("nodes_address_uq").on(t.address), check("nodes_nodeid_positive", sql`${t.nodeid} > 0`)],
);

/** Cluster-wide settings: exactly one row, id = 1. */
export const clusterSettings = mysqlTable(
  "cluster_settings",
  {
    id: tinyint("id", { unsigned: true }).primaryKey().default(1),
    clusterIp: varchar("cluster_ip", { length: 45 }).notNull(),
    clusterIpPrefix: tinyint("cluster_ip_prefix", { unsigned: true }).notNull(), // the mask as a prefix length
    clusterIpDevice: varchar("cluster_ip_device", { length: 15 }).notNull(), // Linux IFNAMSIZ - 1
    testIp: varchar("test_ip", { length: 45 }),
    panelPort: smallint("panel_port", { unsigned: true }).notNull().default(8080),
    fenceTimeoutMs: int("fence_timeout_ms", { unsigned: true }).notNull().default(5000),
    storageTimeoutMs: int("storage_timeout_ms", { unsigned: true }).notNull().default(5000),
    /** Node ids of N+1 reserve nodes, as a JSON array. */
    reserveNodes: json("reserve_nodes").$type<number[]>().notNull(),
    failback: boolean("failback").notNull().default(false),
    updatedAt: ms("updated_at").notNull().default(nowMs),
  },
  (t) => [
    check("cluster_settings_singleton", sql`${t.id} = 1`),
    check("cluster_settings_prefix", sql`${t.clusterIpPrefix} between 1 and 128`),
    check("cluster_settings_panel_port", sql`${t.panelPort} > 0`),
  ],
);

/** Virtual machines and where they run. */
export const vms = mysqlTable(
  "vms",
  {
    name: varchar("name", { length: 64 }).primaryKey(),
    /** Current owner; null = not placed. */
    nodeid: int("nodeid", { unsigned: true }).references(() => nodes.nodeid, { onDelete: "set null" }),
    ramMb: int("ram_mb", { unsigned: true }).notNull(),
    vcpus: smallint("vcpus", { unsigned: true }).notNull(),
    /** Disk location: an RBD image, an iSCSI LUN, an NFS path or a local path. */
    diskLocation: varchar("disk_location", { length: 1024 }).notNull(),
    storage: mysqlEnum("storage", VM_STORAGE_KINDS).notNull(),
    ha: boolean("ha").notNull().default(true),
    restartPriority: int("restart_priority").notNull().default(0),
    state: mysqlEnum("state", VM_STATES).notNull().default("stopped"),
    /** The VM's own address (the process driver puts it on the node's bridge); null = none. */
    ip: varchar("ip", { length: 45 }),
    definitionState: mysqlEnum("definition_state", VM_DEFINITION_STATES).notNull().default("defined"),
    /**
     * Why the definition failed (or why its write is being retried); on a defined VM, the master's
     * note when the requested node could not take it ("n3 could not take it (in maintenance):
     * placed by the cluster"); null when fine.
     */
    definitionError: varchar("definition_error", { length: 1024 }),
    /**
     * The node asked for in the panel: the master starts the VM there (its first owner) if that node
     * can take it when the VM is defined; otherwise placement chooses (see definition_error).
     */
    requestedNodeid: int("requested_nodeid", { unsigned: true }).references(() => nodes.nodeid, { onDelete: "set null" }),
    updatedAt: ms("updated_at").notNull().default(nowMs),
  },
  (t) => [
    index("vms_nodeid_idx").on(t.nodeid),
    check("vms_ram_positive", sql`${t.ramMb} > 0`),
    check("vms_vcpus_positive", sql`${t.vcpus} > 0`),
    // A local-disk VM cannot be restarted elsewhere, so it cannot be HA.
    check("vms_local_not_ha", sql`${t.storage} = 'network' or ${t.ha} = 0`),
  ],
);

/** Panel users. Only argon2id hashes in PHC string form are accepted. */
export const users = mysqlTable(
  "users",
  {
    id: int("id", { unsigned: true }).autoincrement().primaryKey(),
    username: varchar("username", { length: 64 }).notNull(),
    passwordHash: varchar("password_hash", { length: 255 }).notNull(),
    role: mysqlEnum("role", USER_ROLES).notNull().default("viewer"),
    disabled: boolean("disabled").notNull().default(false),
    createdAt: ms("created_at").notNull().default(nowMs),
    lastLogin: ms("last_login"),
  },
  (t) => [uniqueIndex("users_username_uq").on(t.username), check("users_argon2id", sql`${t.passwordHash} like '$argon2id$%'`)],
);

/** Incidents and events: who did what, when and why; multi-step ones (failovers) list their phases. */
export const incidents = mysqlTable(
  "incidents",
  {
    id: bigint("id", { mode: "number", unsigned: true }).autoincrement().primaryKey(),
    at: ms("at").notNull().default(nowMs),
    /** "n2" for an agent, "user:alice" for a panel user, "system". */
    actor: varchar("actor", { length: 128 }).notNull(),
    /** A short machine-readable kind, e.g. "failover", "db-promotion", "user-login". */
    kind: varchar("kind", { length: 64 }).notNull(),
    severity: mysqlEnum("severity", INCIDENT_SEVERITIES).notNull().default("info"),
    nodeid: int("nodeid", { unsigned: true }),
    vm: varchar("vm", { length: 64 }),
    /** What happened, for people. */
    summary: varchar("summary", { length: 512 }).notNull(),
    /** Why: the decision's reason. */
    reason: varchar("reason", { length: 2048 }).notNull(),
    /** [{ name, at, ms?, ok, detail? }] for multi-step incidents. */
    phases: json("phases").$type<IncidentPhase[]>(),
  },
  (t) => [index("incidents_at_idx").on(t.at), index("incidents_kind_idx").on(t.kind, t.at)],
);

/**
 * Panel login sessions, kept in the replicated DB so a failover (the panel moves to the new master)
 * does not log everybody out. Only a SHA-256 of the session id is stored: a DB dump or a replica
 * does not hand out live cookies.
 */
export const sessions = mysqlTable(
  "sessions",
  {
    idHash: varchar("id_hash", { length: 64 }).primaryKey(),
    userId: int("user_id", { unsigned: true })
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    csrf: varchar("csrf", { length: 64 }).notNull(),
    createdAt: ms("created_at").notNull().default(nowMs),
    lastSeen: ms("last_seen").notNull().default(nowMs),
  },
  (t) => [index("sessions_user_idx").on(t.userId), index("sessions_last_seen_idx").on(t.lastSeen)],
);

/**
 * File replication (`nodereplication -c mgrfiles`): the outcome of the master's last copy of the
 * panel's file set to each node, so a failing copy shows in the panel instead of going unnoticed.
 */
export const fileSync = mysqlTable("file_sync", {
  nodeid: int("nodeid", { unsigned: true }).primaryKey(),
  /** The file set's name, e.g. "mgrfiles". */
  fileSet: varchar("file_set", { length: 64 }).notNull().default("mgrfiles"),
  lastRunAt: ms("last_run_at").notNull(),
  lastOkAt: ms("last_ok_at"),
  ok: boolean("ok").notNull(),
  /** rsync's exit status and message when the copy failed; null when it succeeded. */
  error: varchar("error", { length: 2048 }),
  filesChanged: int("files_changed", { unsigned: true }).notNull().default(0),
  durationMs: int("duration_ms", { unsigned: true }).notNull().default(0),
});

export type IncidentPhase = { name: string; at: string; ms?: number; ok: boolean; detail?: string };

export type Node = typeof nodes.$inferSelect;
export type NewNode = typeof nodes.$inferInsert;
export type ClusterSettings = typeof clusterSettings.$inferSelect;
export type Vm = typeof vms.$inferSelect;
export type NewVm = typeof vms.$inferInsert;
export type User = typeof users.$inferSelect;
export type NewUser = typeof users.$inferInsert;
export type SessionRow = typeof sessions.$inferSelect;
export type FileSyncRow = typeof fileSync.$inferSelect;
export type Incident = typeof incidents.$inferSelect;
export type NewIncident = typeof incidents.$inferInsert;

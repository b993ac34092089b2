// Pure parts of `corolistener install`: options, the checks on what a member reported, the files to
// write, and the systemd unit. The I/O is in installer.ts.
import { join } from "node:path";
import { z } from "zod";
import { parseCorosyncConf, readClusterConfig, mariadbNodeCnf, mariadbAccountsSql, type DbAccounts } from "@ha/shared";
import { refuseAddNode, refuseClockOffset, type ClusterFacts } from "../node-admin.ts";
import { parseAgentConfig, type AgentConfig } from "../config.ts";

export const InstallOptionsSchema = z
  .object({
    nodeid: z.coerce.number().int().min(1).max(0xffff),
    addr: z.ipv4({ message: "must be this node's IPv4 ring0 address" }),
    prio: z.coerce.number().int().min(0).max(1_000_000).default(0),
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,63}$/, "letters, digits, _ . - (at most 63)"),
    /** ssh destination of a cluster member, e.g. root@10.0.0.11 */
    member: z.string().regex(/^[A-Za-z0-9_.@:-]+$/, "must be an ssh destination like root@10.0.0.11").optional(),
    /** Instead of ssh: a command prefix that runs a command on the member (tests use nsenter). */
    memberExec: z.string().min(1).optional(),
    memberCli: z.string().min(1).default("corolistener"),
    /** The member's agent settings: the new node's template (the cluster's DB credentials and file-sync secret). */
    memberConfig: z.string().min(1).default("/etc/corolistener/config.json"),
    /** Prefix for files outside /etc/corosync: the agent, its unit, its config (tests point it into a temp dir). */
    root: z.string().min(1).default("/"),
    agentConfig: z.string().min(1).default("/etc/corolistener/config.json"),
    agentSource: z.string().min(1),
    packages: z.enum(["auto", "skip"]).default("auto"),
    start: z.boolean().default(true),
  })
  .refine((o) => !!o.member !== !!o.memberExec, { message: "give exactly one of --member <ssh destination> and --member-exec <command prefix>" })
  // systemctl would start the system's units, not the ones written under another root.
  .refine((o) => o.root === "/" || !o.start, { message: "--root other than / stages files only: add --no-start" });
export type InstallOptions = z.infer<typeof InstallOptionsSchema>;

/** What `corolistener node join-info` prints on the member, checked before anything is trusted. */
export const JoinInfoSchema = z.object({
  memberNodeId: z.number().int().positive(),
  clusterName: z.string().min(1),
  configVersion: z.string().regex(/^\d+$/),
  corosyncConf: z.string().min(1),
  authkey: z.string().base64().nullable(),
  agentConfig: z.record(z.string(), z.unknown()),
  facts: z.object({
    nodes: z.array(z.object({ nodeid: z.number().int().positive(), addr: z.string().optional(), name: z.string().optional() })),
    quorate: z.boolean(),
    members: z.array(z.number().int().positive()),
    master: z.number().int().positive().nullable(),
    owners: z.array(z.object({ vm: z.string(), node: z.number().int().positive().nullable() })),
  }),
});

export function parseJoinInfo(stdout: string): z.infer<typeof JoinInfoSchema> {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new Error(`the member's join-info is not JSON: ${stdout.slice(0, 200)}`);
  }
  const r = JoinInfoSchema.safeParse(json);
  if (!r.success) throw new Error(`the member's join-info is malformed: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return r.data;
}

export type Distro = "debian" | "alma";

/** Where things go; everything but /etc/corosync is under --root. */
export function installPaths(o: Pick<InstallOptions, "root" | "agentConfig">, distro: Distro = "debian") {
  return {
    corosyncConf: "/etc/corosync/corosync.conf",
    authkey: "/etc/corosync/authkey",
    agentDir: join(o.root, "opt/corolistener"),
    cliLink: join(o.root, "usr/local/sbin/corolistener"),
    unit: join(o.root, "etc/systemd/system/corolistener.service"),
    fileSyncUnit: join(o.root, "etc/systemd/system/nodereplication.service"),
    fileSyncLink: join(o.root, "usr/local/sbin/nodereplication"),
    agentConfig: o.agentConfig.startsWith("/etc/corosync/") ? o.agentConfig : join(o.root, o.agentConfig),
    /** A drop-in read after the distribution's own MariaDB config, so its settings win. */
    mariadbCnf: join(o.root, distro === "debian" ? "etc/mysql/mariadb.conf.d/60-corolistener.cnf" : "etc/my.cnf.d/60-corolistener.cnf"),
    /** The accounts' SQL, mode 0600 like the agent settings that hold the same passwords. */
    mariadbAccountsSql: join(o.root, "etc/corolistener/mariadb-accounts.sql"),
  };
}

/** The argv that runs `argv` on the member (ssh, or the given prefix). */
export function memberArgv(o: Pick<InstallOptions, "member" | "memberExec">, argv: string[]): string[] {
  for (const a of argv) if (!/^[A-Za-z0-9_./:=@%+-]+$/.test(a)) throw new Error(`refusing to pass "${a}" to the member's shell`);
  const prefix = o.memberExec ? o.memberExec.split(/\s+/).filter(Boolean) : ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", o.member!];
  return [...prefix, ...argv];
}

/** The member's corolistener command line (its path, subcommand and config file). */
export function memberCliArgv(o: Pick<InstallOptions, "memberCli" | "memberConfig">, sub: string[]): string[] {
  return [...o.memberCli.split(/\s+/).filter(Boolean), ...sub, ...(o.memberConfig ? ["--config", o.memberConfig] : [])];
}

/** Packages a node needs, by the binary that shows each is installed. */
export const REQUIRED_PACKAGES = [
  { binary: "corosync", debian: ["corosync", "libquorum5", "libvotequorum8", "libcpg4", "libcmap4"], alma: ["corosync", "corosynclib"], why: "cluster membership" },
  { binary: "mariadbd", debian: ["mariadb-server"], alma: ["mariadb-server"], why: "the panel's database" },
  { binary: "rsync", debian: ["rsync"], alma: ["rsync"], why: "file replication" },
  { binary: "chronyd", debian: ["chrony"], alma: ["chrony"], why: "time sync, required: clocks within 1 s" },
  { binary: "ping", debian: ["iputils-ping"], alma: ["iputils"], why: "the test IP probe" },
  { binary: "setpriv", debian: ["util-linux"], alma: ["util-linux"], why: "ends the test IP probe with the agent" },
] as const;

/** The install command for the missing packages on this distribution (pure). */
export function packageCommand(distro: "debian" | "alma", missing: ReadonlyArray<(typeof REQUIRED_PACKAGES)[number]>): string[] | null {
  if (missing.length === 0) return null;
  const names = missing.flatMap((p) => p[distro]);
  return distro === "debian" ? ["apt-get", "install", "-y", "--no-install-recommends", ...names] : ["dnf", "install", "-y", ...names];
}

/**
 * Everything that must hold before the installer changes anything, from what the member reported.
 * Returns every reason to refuse (empty = go ahead).
 */
export function preflightRefusals(input: {
  options: Pick<InstallOptions, "nodeid" | "addr" | "prio" | "name">;
  facts: ClusterFacts;
  corosyncConf: string;
  authkey: string | null;
  clockOffsetMs: number;
  memberName: string;
}): string[] {
  const out: string[] = [];
  const clock = refuseClockOffset(input.clockOffsetMs, input.memberName);
  if (clock) out.push(clock);
  const { nodeid, addr, prio, name } = input.options;
  const add = refuseAddNode(input.facts, { nodeid, addr, prio, name });
  if (add) out.push(add);
  try {
    const conf = readClusterConfig(parseCorosyncConf(input.corosyncConf));
    if (conf.transport !== "knet" || conf.crypto.cipher === "none") {
      out.push(`the cluster's corosync.conf has no knet crypto (transport ${conf.transport}, crypto_cipher ${conf.crypto.cipher}): turn crypto on before adding nodes`);
    }
    if (conf.nodes[0] && conf.nodes[0].ringAddrs.length > 1) out.push("the cluster uses several knet links; this installer only sets ring0_addr");
  } catch (err) {
    out.push(`the member's corosync.conf is not valid: ${(err as Error).message}`);
  }
  if (!input.authkey) out.push(`${input.memberName} has no /etc/corosync/authkey to share`);
  return out;
}

/**
 * The new node's agent settings: the member's (so the cluster's DB credentials and file replication
 * secret), with this node's name, and its control address as the file replication listen address.
 * Validated like the agent validates it at start, so a bad template fails here, before any write.
 */
export function agentConfigFor(memberConfig: Record<string, unknown>, name: string, addr: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...memberConfig, nodeName: name };
  const fileSync = memberConfig.fileSync;
  if (fileSync && typeof fileSync === "object") out.fileSync = { ...fileSync, listenAddress: addr };
  parseAgentConfig(JSON.stringify(out), "the member's agent settings");
  return out;
}

/** The MariaDB accounts of a node, from its agent settings; null when the agent manages no database. */
export function dbAccountsFrom(config: AgentConfig): DbAccounts | null {
  if (!config.database) return null;
  const { adminUser, adminPassword, replUser, replPassword } = config.database;
  return {
    agent: { user: adminUser, password: adminPassword },
    repl: { user: replUser, password: replPassword },
    ...(config.panelDb ? { panel: { user: config.panelDb.user, password: config.panelDb.password } } : {}),
  };
}

/** The MariaDB files of the new node (pure); null when the cluster's agents manage no database. */
export function mariadbFilesFor(agentConfig: Record<string, unknown>, o: Pick<InstallOptions, "nodeid" | "addr">): { cnf: string; accountsSql: string } | null {
  const config = parseAgentConfig(JSON.stringify(agentConfig), "the new node's agent settings");
  const accounts = dbAccountsFrom(config);
  if (!accounts) return null;
  return {
    // The control address: the agent reaches peers' databases there, replicas the primary.
    cnf: mariadbNodeCnf({ nodeid: o.nodeid, bindAddress: o.addr }),
    accountsSql: mariadbAccountsSql(accounts, config.panelDb?.database ?? config.database!.database, { resetPasswords: true }),
  };
}

/** The units the installer enables and (re)starts, in order; file replication's receiver only where configured. */
export function unitsToStart(agentConfig: Record<string, unknown>, distro: Distro): string[] {
  return [
    distro === "debian" ? "chrony" : "chronyd",
    ...("database" in agentConfig ? ["mariadb"] : []),
    "corosync",
    ...("fileSync" in agentConfig ? ["nodereplication"] : []),
    "corolistener",
  ];
}

/** What the operator still has to do after `install --no-start` (pure; names files, never secrets). */
export function remainingSteps(units: string[], accountsSqlFile: string | null): string[] {
  const others = units.filter((u) => u !== "mariadb");
  return [
    "systemctl daemon-reload",
    // MariaDB first: the accounts must exist before the agent starts managing replication.
    ...(accountsSqlFile ? ["systemctl enable mariadb && systemctl restart mariadb", `mariadb --protocol=socket -u root < ${accountsSqlFile}`] : []),
    `systemctl enable ${others.join(" ")} && systemctl restart ${others.join(" ")}`,
  ];
}

/** The systemd unit (the default rendering is deploy/systemd/corolistener.service). */
export function renderAgentUnit(o: { agentDir?: string; agentConfig?: string } = {}): string {
  const dir = o.agentDir ?? "/opt/corolistener";
  const config = o.agentConfig ?? "/etc/corolistener/config.json";
  return `# corolistener, the HA agent of a cluster node. Installed by \`corolistener install\`
# (agent/src/install/plan.ts renders the same text; agent/test/unit/install/node-admin.test.ts keeps them equal).
[Unit]
Description=corolistener HA agent (corosync/KVM cluster node)
Documentation=file://${dir}/README.md
# No agent without corosync: it decides from corosync's membership and quorum.
Requires=corosync.service
After=corosync.service network-online.target time-sync.target mariadb.service
Wants=network-online.target time-sync.target
# A crash loop stops after 5 tries in a minute instead of flapping the cluster IP.
StartLimitIntervalSec=60
StartLimitBurst=5

[Service]
Type=simple
ExecStart=${dir}/corolistener daemon --config ${config}
Restart=always
RestartSec=2
# SIGTERM to the agent only: it releases the cluster IP and stops the panel in order;
# whatever is left (panel, watchdog supervisor) is killed when the stop timeout ends.
KillMode=mixed
TimeoutStopSec=30
# No WatchdogSec: the agent does not speak sd_notify. It arms /dev/watchdog itself and stops petting
# it when its HA core misses a deadline, so a hung agent resets the node (fencing) rather than
# being restarted by systemd. Turn off systemd's own use of /dev/watchdog (RuntimeWatchdogSec=off).
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}

/**
 * The file replication receiver (`nodereplication serve`, an rsync daemon every node runs when the
 * agent settings have a `fileSync` section); the default rendering is deploy/systemd/nodereplication.service.
 */
export function renderFileSyncUnit(o: { agentDir?: string; agentConfig?: string } = {}): string {
  const dir = o.agentDir ?? "/opt/corolistener";
  const config = o.agentConfig ?? "/etc/corolistener/config.json";
  return `# The receiving side of file replication (README "File replication"): an rsync daemon on this node.
# Installed by \`corolistener install\` and enabled when the agent settings have a "fileSync" section
# (agent/src/install/plan.ts renders the same text; agent/test/unit/install/node-admin.test.ts keeps them equal).
[Unit]
Description=corolistener file replication receiver (rsync daemon)
Documentation=file://${dir}/README.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${dir}/nodereplication serve --config ${config}
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`;
}

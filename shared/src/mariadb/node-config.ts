// What every node's MariaDB needs for the agent's replication (GTID binlog, semi-sync, read-only
// start) and the accounts the agent, the replicas and the panel log in with. Pure renderers, shared by
// the lab (lab/src/mariadb.ts) and `corolistener install` (agent/src/install), so both set up a node
// the same way.

/** One login; the password is secret: it goes into files (0600) and stdin, never argv or logs. */
export type DbAccount = { user: string; password: string };

/**
 * `agent` manages replication on every node (local socket, peers over TCP), `repl` is what replicas
 * log in to the primary with, `panel` is the application: it has no READ ONLY ADMIN, so read_only=ON
 * really stops it; its SLAVE MONITOR (SHOW SLAVE STATUS) lets its majority barrier check that a node
 * replicates from its primary. A cluster without a panel has no panel account.
 */
export type DbAccounts = { agent: DbAccount; repl: DbAccount; panel?: DbAccount };

export type MariadbReplicationOptions = {
  nodeid: number;
  /** Only this address (the node's control address) accepts TCP; local clients use the socket. */
  bindAddress: string;
  /** Semi-sync ack timeout: after it the primary goes on asynchronously (ms, default 2000). */
  semiSyncTimeoutMs?: number;
  /** fsync binlog and redo log at every commit (production); the lab may trade it for speed. */
  durable?: boolean;
};

/** The replication settings of one node, as lines of a `[mariadbd]` section (pure). */
export function mariadbReplicationSettings(o: MariadbReplicationOptions): string {
  const durable = o.durable ?? true;
  return `bind-address = ${o.bindAddress}
skip-name-resolve

# Identity and binlog: GTIDs, strict ordering, row events, every node logs what it applies
# (so any replica can feed the others after a promotion).
server-id = ${o.nodeid}
gtid-domain-id = 0
log-bin = mariadb-bin
log-bin-index = mariadb-bin.index
relay-log = relay-bin
relay-log-index = relay-bin.index
log-slave-updates = ON
binlog-format = ROW
gtid-strict-mode = ON
sync-binlog = ${durable ? 1 : 0}
innodb-flush-log-at-trx-commit = ${durable ? 1 : 2}

# Safety: every start is read-only and does not replicate until the agent says so; only a
# promotion turns read_only off. So a returning old primary can never take a write first.
read-only = ON
skip-slave-start = ON
# Acknowledgement is not semi-sync's job: the panel answers a change only once a majority of the
# database nodes has applied it (its majority barrier, panel/server/durability.ts); semi-sync waits
# for one replica and then goes on asynchronously. It stays for its crash recovery: started as a
# semi-sync replica, a node rolls back transactions that were in its binlog but never acknowledged
# (AFTER_SYNC), instead of committing them as errant GTIDs. The timeout only bounds how long a
# commit stalls when no replica answers (the barrier then refuses the change anyway).
init-rpl-role = SLAVE
rpl-semi-sync-slave-enabled = ON
rpl-semi-sync-master-enabled = ON
rpl-semi-sync-master-wait-point = AFTER_SYNC
rpl-semi-sync-master-timeout = ${o.semiSyncTimeoutMs ?? 2000}
# With no replica connected at all, do not stall every commit for the timeout. Harmless: such a
# commit is not acknowledged by the panel without a majority, whatever semi-sync does.
rpl-semi-sync-master-wait-no-slave = OFF
slave-net-timeout = 5
`;
}

/**
 * The drop-in config `corolistener install` writes on a production node
 * (/etc/mysql/mariadb.conf.d/60-corolistener.cnf on Debian, /etc/my.cnf.d/60-corolistener.cnf on
 * Alma): read after the distribution's files, so its settings win; datadir and socket stay theirs.
 */
export function mariadbNodeCnf(o: MariadbReplicationOptions): string {
  return `# Written by \`corolistener install\` for node ${o.nodeid}: replication settings the agent relies on
# (shared/src/mariadb/node-config.ts). Every node has the same file but for server-id and bind-address.
[mariadbd]
${mariadbReplicationSettings(o)}`;
}

/** A SQL string literal (MariaDB's default sql_mode treats backslash as an escape). */
const sqlString = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
const sqlIdent = (s: string) => `\`${s.replace(/`/g, "``")}\``;

/**
 * The accounts, idempotent (run at every lab start, and by the installer). sql_log_bin=0: they are
 * per-node settings, and writing them to the binlog would give every node GTIDs of its own (errant
 * on the others). `resetPasswords` (the installer) also sets the password of an account that already
 * exists, so a re-installed node takes the cluster's passwords; the lab's init-file leaves it out.
 */
export function mariadbAccountsSql(users: DbAccounts, database = "ha", opts: { resetPasswords?: boolean } = {}): string {
  const account = (x: DbAccount) => `${sqlString(x.user)}@'%'`;
  const create = (x: DbAccount) => [
    `CREATE USER IF NOT EXISTS ${account(x)} IDENTIFIED BY ${sqlString(x.password)};`,
    ...(opts.resetPasswords ? [`ALTER USER ${account(x)} IDENTIFIED BY ${sqlString(x.password)};`] : []),
  ];
  return [
    "SET SESSION sql_log_bin = 0;",
    ...create(users.agent),
    `GRANT ALL PRIVILEGES ON *.* TO ${account(users.agent)} WITH GRANT OPTION;`,
    ...create(users.repl),
    `GRANT REPLICATION SLAVE ON *.* TO ${account(users.repl)};`,
    ...(users.panel
      ? [...create(users.panel), `GRANT SELECT, INSERT, UPDATE, DELETE ON ${sqlIdent(database)}.* TO ${account(users.panel)};`, `GRANT SLAVE MONITOR ON *.* TO ${account(users.panel)};`]
      : []),
    "",
  ].join("\n");
}

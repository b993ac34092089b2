// `corolistener install` sets the new node up completely: MariaDB for the agent's replication (config
// drop-in and accounts, credentials from the cluster's settings) and file replication (same secret,
// own listen address). Pure renderers only; the lab test (lab/test/integration/install.test.ts)
// checks the files on a real node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mariadbNodeCnf, mariadbAccountsSql } from "@ha/shared";
import { agentConfigFor, mariadbFilesFor, installPaths, unitsToStart, remainingSteps, dbAccountsFrom, parseJoinInfo } from "../../../src/install/plan.ts";
import { parseAgentConfig } from "../../../src/config.ts";

/** A member's settings as `node join-info` sends them: the cluster's credentials and file-sync secret. */
const memberSettings = {
  nodeName: "n1",
  clusterIp: "10.0.0.100",
  database: { adminPassword: "agent-pw-1234", replPassword: "repl-pw-1234" },
  panelDb: { user: "ha_panel", password: "panel-pw-1234" },
  fileSync: { secret: "files-secret-1234", listenAddress: "10.0.0.11", hostsAllow: "10.0.0.0/24" },
};
const node4 = { nodeid: 4, addr: "10.0.0.14", name: "n4" };

/** `key = value` lines of a cnf section, as a map (comments and blank lines skipped). */
function cnfSettings(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([a-z0-9_-]+)(?:\s*=\s*(.*))?$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2] ?? "");
  }
  return out;
}

test("MariaDB config of a new node: server-id = nodeid, GTID binlog, semi-sync AFTER_SYNC, read-only start, bound to its control address", () => {
  const files = mariadbFilesFor(agentConfigFor(memberSettings, node4.name, node4.addr), node4)!;
  assert.match(files.cnf, /^\[mariadbd\]$/m);
  const s = cnfSettings(files.cnf);
  const expected: Record<string, string> = {
    "server-id": "4",
    "bind-address": "10.0.0.14",
    "log-bin": "mariadb-bin",
    "binlog-format": "ROW",
    "gtid-strict-mode": "ON",
    "log-slave-updates": "ON",
    "rpl-semi-sync-master-enabled": "ON",
    "rpl-semi-sync-slave-enabled": "ON",
    "rpl-semi-sync-master-wait-point": "AFTER_SYNC",
    "rpl-semi-sync-master-timeout": "2000", // bounds a stalled commit; the panel's majority barrier acknowledges
    "read-only": "ON",
    "skip-slave-start": "ON",
    "sync-binlog": "1", // production is durable
    "innodb-flush-log-at-trx-commit": "1",
  };
  for (const [k, v] of Object.entries(expected)) assert.equal(s.get(k), v, k);
  // The distribution keeps its datadir, socket and user: the drop-in only adds replication.
  for (const k of ["datadir", "socket", "user", "init-file"]) assert.equal(s.has(k), false, k);
  assert.equal(files.cnf, mariadbNodeCnf({ nodeid: 4, bindAddress: "10.0.0.14" }));
});

test("MariaDB accounts: the cluster's credentials, idempotent, kept out of the binlog, quotes escaped", () => {
  const files = mariadbFilesFor(memberSettings, node4)!;
  const sql = files.accountsSql;
  assert.match(sql, /^SET SESSION sql_log_bin = 0;/);
  assert.match(sql, /CREATE USER IF NOT EXISTS 'ha_agent'@'%' IDENTIFIED BY 'agent-pw-1234';/);
  assert.match(sql, /ALTER USER 'ha_agent'@'%' IDENTIFIED BY 'agent-pw-1234';/);
  assert.match(sql, /GRANT ALL PRIVILEGES ON \*\.\* TO 'ha_agent'@'%' WITH GRANT OPTION;/);
  assert.match(sql, /GRANT REPLICATION SLAVE ON \*\.\* TO 'ha_repl'@'%';/);
  assert.match(sql, /GRANT SELECT, INSERT, UPDATE, DELETE ON `ha`\.\* TO 'ha_panel'@'%';/);
  // The panel's majority barrier reads SHOW SLAVE STATUS on every node (MariaDB 10.5.9+: SLAVE MONITOR).
  assert.match(sql, /GRANT SLAVE MONITOR ON \*\.\* TO 'ha_panel'@'%';/);
  // A password with a quote cannot end the string literal.
  const tricky = mariadbAccountsSql({ agent: { user: "a", password: "x'; DROP USER root; --" }, repl: { user: "r", password: "back\\slash" } });
  assert.match(tricky, /IDENTIFIED BY 'x\\'; DROP USER root; --';/);
  assert.match(tricky, /IDENTIFIED BY 'back\\\\slash';/);
  assert.doesNotMatch(tricky, /ha_panel|ON `ha`|SLAVE MONITOR/); // no panel settings, no panel account
  // Accounts come from the validated settings, with the schema's default user names.
  assert.deepEqual(dbAccountsFrom(parseAgentConfig(JSON.stringify(memberSettings))), {
    agent: { user: "ha_agent", password: "agent-pw-1234" },
    repl: { user: "ha_repl", password: "repl-pw-1234" },
    panel: { user: "ha_panel", password: "panel-pw-1234" },
  });
});

test("no database section: no MariaDB files, and MariaDB is not among the units", () => {
  const { database: _db, panelDb: _p, ...noDb } = memberSettings;
  assert.equal(mariadbFilesFor(noDb, node4), null);
  assert.deepEqual(unitsToStart(noDb, "alma"), ["chronyd", "corosync", "nodereplication", "corolistener"]);
  assert.deepEqual(unitsToStart({}, "debian"), ["chrony", "corosync", "corolistener"]);
});

test("file replication: the member's secret and subnet, this node's control address as listen address", () => {
  const cfg = agentConfigFor(memberSettings, "n4", "10.0.0.14") as typeof memberSettings;
  assert.deepEqual(cfg.fileSync, { secret: "files-secret-1234", listenAddress: "10.0.0.14", hostsAllow: "10.0.0.0/24" });
  // Set even when the member's section leaves it to the default.
  const bare = agentConfigFor({ fileSync: { secret: "files-secret-1234" } }, "n4", "10.0.0.14") as typeof memberSettings;
  assert.equal(bare.fileSync.listenAddress, "10.0.0.14");
  assert.deepEqual(cfg.database, memberSettings.database);
});

test("a bad template from the member is refused with the field named, before anything is written", () => {
  assert.throws(() => agentConfigFor({ fileSync: { secret: "short" } }, "n4", "10.0.0.14"), /the member's agent settings: fileSync\.secret: at least 12 characters/);
  assert.throws(() => agentConfigFor({ database: { adminPassword: "x" } }, "n4", "10.0.0.14"), /database\.replPassword/);
});

test("paths: the MariaDB drop-in per distribution, under --root; the accounts' SQL next to the settings", () => {
  const o = { root: "/tmp/r", agentConfig: "/etc/corolistener/config.json" };
  assert.equal(installPaths(o, "debian").mariadbCnf, "/tmp/r/etc/mysql/mariadb.conf.d/60-corolistener.cnf");
  assert.equal(installPaths(o, "alma").mariadbCnf, "/tmp/r/etc/my.cnf.d/60-corolistener.cnf");
  assert.equal(installPaths(o).mariadbAccountsSql, "/tmp/r/etc/corolistener/mariadb-accounts.sql");
});

test("--no-start prints the remaining steps in order: MariaDB and its accounts before the agent; no secrets", () => {
  const units = unitsToStart(memberSettings, "debian");
  assert.deepEqual(units, ["chrony", "mariadb", "corosync", "nodereplication", "corolistener"]);
  const steps = remainingSteps(units, "/etc/corolistener/mariadb-accounts.sql");
  assert.deepEqual(steps, [
    "systemctl daemon-reload",
    "systemctl enable mariadb && systemctl restart mariadb",
    "mariadb --protocol=socket -u root < /etc/corolistener/mariadb-accounts.sql",
    "systemctl enable chrony corosync nodereplication corolistener && systemctl restart chrony corosync nodereplication corolistener",
  ]);
  assert.doesNotMatch(steps.join("\n"), /pw-1234|secret-1234/);
});

test("join-info carries the member's settings (credentials included) through the validated edge", () => {
  const info = parseJoinInfo(JSON.stringify({
    memberNodeId: 1, clusterName: "c", configVersion: "3", corosyncConf: "totem {}", authkey: "a2V5", agentConfig: memberSettings,
    facts: { nodes: [], quorate: true, members: [1], master: 1, owners: [] },
  }));
  assert.deepEqual(info.agentConfig.database, memberSettings.database);
});

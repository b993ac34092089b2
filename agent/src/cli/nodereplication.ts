#!/usr/bin/env node
// nodereplication: copies the master's file sets to every node (docs/operations.md "File replication").
//   nodereplication -c mgrfiles        one cycle now, from the master (the agent does this on its schedule)
//   nodereplication serve              the receiving rsync daemon of this node (every node runs it)
//   nodereplication status             this node's copies and, where the DB has them, every node's last run
import { Command } from "commander";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { parseCorosyncConf, readClusterConfig } from "@ha/shared";
import { loadAgentConfig, type AgentConfig } from "../config.ts";
import { readLiveStatus } from "../effects/status-file.ts";
import type { FileSyncConfig } from "../effects/file-sync/config.ts";
import { FileReplicator, type NodeSyncResult, type SyncPeer } from "../effects/file-sync/replicator.ts";
import { DbSyncRecorder } from "../effects/file-sync/db-recorder.ts";
import { rsyncdConf, rsyncdSecrets } from "../effects/file-sync/rsync.ts";

const DEFAULT_CONFIG = "/etc/corolistener/config.json";
const DEFAULT_COROSYNC_CONF = "/etc/corosync/corosync.conf";

function fail(msg: string): never {
  process.stderr.write(`nodereplication: ${msg}\n`);
  process.exit(2);
}

function loadConfig(path: string): { agent: AgentConfig; fileSync: FileSyncConfig } {
  const agent = loadAgentConfig(path);
  if (!agent.fileSync) fail(`${path} has no "fileSync" section: file replication is not configured on this node`);
  return { agent, fileSync: agent.fileSync };
}

/** The cluster's nodes and their control addresses, from corosync.conf (no corosync connection needed). */
function clusterNodes(corosyncConf: string): SyncPeer[] {
  const text = readFileSync(corosyncConf, "utf8");
  return readClusterConfig(parseCorosyncConf(text)).nodes.map((n) => ({ nodeid: n.nodeid, host: n.ring0Addr }));
}

/** This node's id: the daemon's view if it runs, else the node whose address is on a local interface. */
function localNodeId(peers: SyncPeer[], statusFile: string): number | null {
  const live = readLiveStatus(statusFile);
  if (live) return live.view.localNodeId;
  const local = new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address)));
  return peers.find((p) => local.has(p.host))?.nodeid ?? null;
}

function renderResults(set: string, results: NodeSyncResult[]): string {
  const rows = results.map((r) => `  n${r.nodeid}  ${r.host.padEnd(15)}  ${r.ok ? "ok    " : "FAILED"}  ${String(r.durationMs).padStart(6)} ms  ${String(r.filesChanged).padStart(6)} changed${r.error ? `  ${r.error}` : ""}`);
  return [`file set ${set}:`, ...(rows.length ? rows : ["  (no other nodes)"])].join("\n") + "\n";
}

const program = new Command("nodereplication")
  .description("copy the master's file sets to every cluster node over an authenticated rsync channel")
  .enablePositionalOptions()
  .option("-c, --copy <set>", "copy this file set (e.g. mgrfiles) to every other node now, then exit")
  .option("--config <file>", "agent settings (JSON) with a fileSync section", DEFAULT_CONFIG)
  .option("--corosync-conf <file>", "where the node list comes from", DEFAULT_COROSYNC_CONF)
  .option("--force", "copy even when this node's daemon does not say it is master")
  .option("--if-master", "on a node that is not master, do nothing and exit 0 (for a cron entry on every node)")
  .option("--no-record", "do not write the results into the database")
  .option("--json", "print the results as JSON")
  .action(async (o: { copy?: string; config: string; corosyncConf: string; force?: boolean; ifMaster?: boolean; record: boolean; json?: boolean }) => {
    if (!o.copy) return program.help();
    const { agent, fileSync } = loadConfig(o.config);
    if (!fileSync.sets[o.copy]) fail(`unknown file set "${o.copy}" (configured: ${Object.keys(fileSync.sets).join(", ") || "none"})`);
    const peers = clusterNodes(o.corosyncConf);
    const self = localNodeId(peers, agent.statusFile);
    if (self === null) fail(`this machine is none of the nodes in ${o.corosyncConf}`);
    // Only the master's set is the truth: a copy from anywhere else would overwrite newer files.
    const live = readLiveStatus(agent.statusFile);
    if (o.ifMaster && !live?.view.isMaster) return;
    if (!o.force && !live?.view.isMaster) {
      fail(live ? `n${self} is not the master: only the master copies its file sets (use --force to copy anyway)` : "the corolistener daemon is not running here, so it is unknown whether this node is master (use --force to copy anyway)");
    }
    const db = agent.database;
    const recorder =
      o.record && db
        ? new DbSyncRecorder(() => mysql.createConnection({ socketPath: db.socketPath, user: db.adminUser, password: db.adminPassword, connectTimeout: 2000 }), db.database)
        : null;
    const replicator = new FileReplicator({
      config: fileSync,
      self,
      peers: () => peers,
      recorder,
      log: (level, msg) => level !== "info" && !o.json && process.stderr.write(`${level}: ${msg}\n`),
    });
    const t0 = performance.now();
    const results = await replicator.run(o.copy);
    const cycleMs = Math.round(performance.now() - t0); // all nodes in parallel, DB recording included
    process.stdout.write(o.json ? JSON.stringify({ set: o.copy, self, cycleMs, results }, null, 2) + "\n" : renderResults(o.copy, results));
    process.exitCode = results.every((r) => r.ok) ? 0 : 1;
  });

program
  .command("serve")
  .description("run this node's receiving rsync daemon in the foreground (writes rsyncd.conf and the secrets file first)")
  .option("--config <file>", "agent settings (JSON) with a fileSync section", DEFAULT_CONFIG)
  .action((o: { config: string }) => {
    const { fileSync: c } = loadConfig(o.config);
    if (!c.listenAddress) fail("fileSync.listenAddress is not set: the daemon listens on the node's control address only");
    mkdirSync(c.runDir, { recursive: true, mode: 0o700 });
    for (const set of Object.values(c.sets)) mkdirSync(set.target, { recursive: true });
    const confPath = join(c.runDir, "rsyncd.conf");
    const secretsPath = join(c.runDir, "rsyncd.secrets");
    writeFileSync(secretsPath, rsyncdSecrets(c), { mode: 0o600 });
    chmodSync(secretsPath, 0o600); // an older file keeps its mode on write
    writeFileSync(confPath, rsyncdConf({ config: c }));
    const child = spawn("rsync", ["--daemon", "--no-detach", `--config=${confPath}`, `--address=${c.listenAddress}`, `--port=${c.port}`, "--log-file=/dev/stderr"], { stdio: "inherit" });
    for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => child.kill(sig));
    child.on("exit", (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
  });

/** What this node holds of a set: the version `current` points at, its age and file count. */
function localCopy(target: string) {
  const current = join(target, "current");
  if (!existsSync(current)) return { target, version: null, at: null, files: 0, staging: existsSync(join(target, "staging")) };
  const countFiles = (dir: string): number => readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? countFiles(join(dir, e.name)) : 1), 0);
  return { target, version: readlinkSync(current), at: statSync(current).mtime.toISOString(), files: countFiles(current), staging: existsSync(join(target, "staging")) };
}

program
  .command("status")
  .description("this node's copies, and every node's last replication run from the database (if reachable)")
  .option("--config <file>", "agent settings (JSON) with a fileSync section", DEFAULT_CONFIG)
  .option("--json", "print JSON")
  .action(async (o: { config: string; json?: boolean }) => {
    const { agent, fileSync } = loadConfig(o.config);
    const local = Object.fromEntries(Object.entries(fileSync.sets).map(([name, set]) => [name, localCopy(set.target)]));
    let nodes: unknown[] | string = "no database configured";
    const db = agent.database;
    if (db) {
      try {
        const conn = await mysql.createConnection({ socketPath: db.socketPath, user: db.adminUser, password: db.adminPassword, connectTimeout: 2000 });
        try {
          const [rows] = await conn.query(`SELECT * FROM \`${db.database}\`.file_sync ORDER BY nodeid`);
          nodes = rows as unknown[];
        } finally {
          await conn.end();
        }
      } catch (err) {
        nodes = `database not readable: ${(err as Error).message}`;
      }
    }
    if (o.json) return void process.stdout.write(JSON.stringify({ local, nodes }, null, 2) + "\n");
    for (const [name, c] of Object.entries(local)) {
      process.stdout.write(`${name}: ${c.version ? `${c.target}/current -> ${c.version} (${c.files} files, since ${c.at})` : `no complete copy in ${c.target}`}${c.staging ? ", an unfinished copy in staging" : ""}\n`);
    }
    if (typeof nodes === "string") process.stdout.write(`nodes: ${nodes}\n`);
    else for (const n of nodes as Array<Record<string, unknown>>) process.stdout.write(`  n${n.nodeid}  ${n.ok ? "ok    " : "FAILED"}  last run ${String(n.last_run_at)}  last ok ${String(n.last_ok_at)}${n.error ? `  ${String(n.error)}` : ""}\n`);
  });

program.parseAsync().catch((err: Error) => fail(err.message));

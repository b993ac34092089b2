// `corolistener install`: prepares this machine and adds it to a running cluster.
//
// 1. checks this node (corosync not already running);
// 2. asks a member, over ssh (or --member-exec), for the cluster facts: its clock, corosync.conf,
//    quorum and members; refuses with every reason at once and changes nothing when the clock is
//    off by more than 1 s, the nodeid or address is taken, or the cluster is not quorate; then
//    installs missing packages (or only warns with --packages skip);
// 3. runs `corolistener node add` on that member: the master checks again, bumps config_version,
//    distributes corosync.conf to every member and reloads corosync;
// 4. fetches the new corosync.conf and the authkey (over the same ssh channel), writes them with
//    the agent, its settings (the member's: the cluster's DB credentials and file replication
//    secret travel in them, over that channel too), its systemd units and, when the agents manage
//    MariaDB, its replication config and accounts' SQL; starts chrony, MariaDB (and creates the
//    accounts), corosync, the file replication receiver and the agent (--no-start: prints the steps).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync, rmSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { hostname } from "node:os";
import { run, mustRun, writeFileAtomic, sleep, parseCorosyncConf, readClusterConfig } from "@ha/shared";
import { estimateClockOffset } from "../node-admin.ts";
import type { JoinInfo } from "../cli/node-commands.ts";
import {
  InstallOptionsSchema,
  installPaths,
  memberArgv,
  memberCliArgv,
  packageCommand,
  preflightRefusals,
  agentConfigFor,
  mariadbFilesFor,
  unitsToStart,
  remainingSteps,
  renderAgentUnit,
  renderFileSyncUnit,
  parseJoinInfo,
  REQUIRED_PACKAGES,
  type InstallOptions,
  type Distro,
} from "./plan.ts";

/** Test hook: pretend this node's clock is off by this many ms (the real clock cannot be moved in tests). */
export const CLOCK_SKEW_ENV = "COROLISTENER_TEST_CLOCK_SKEW_MS";
const localNow = () => Date.now() + Number(process.env[CLOCK_SKEW_ENV] ?? 0);

type Say = (line: string) => void;

export function parseInstallOptions(raw: Record<string, unknown>): InstallOptions {
  const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  const r = InstallOptionsSchema.safeParse({ name: hostname(), ...given });
  if (!r.success) throw new Error(r.error.issues.map((i) => (i.path.length ? `--${String(i.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ` : "") + i.message).join("; "));
  return r.data;
}

async function onMember(o: InstallOptions, argv: string[], timeoutMs = 60_000): Promise<string> {
  const [cmd, ...args] = memberArgv(o, argv);
  const r = await run(cmd!, args, { timeoutMs });
  if (r.code !== 0) throw new Error(`on the member, ${argv.join(" ")} failed: ${(r.stderr || r.stdout).trim().replace(/^corolistener: /, "")}`);
  return r.stdout;
}

/** The member's clock against ours: 3 round trips of `date`, the quickest one counts. */
async function clockOffset(o: InstallOptions): Promise<number> {
  const samples = [];
  for (let i = 0; i < 3; i++) {
    const sentMs = localNow();
    const out = await onMember(o, ["date", "+%s%3N"], 10_000);
    samples.push({ sentMs, remoteMs: Number(out.trim()), receivedMs: localNow() });
  }
  return estimateClockOffset(samples).offsetMs;
}

async function fetchJoinInfo(o: InstallOptions): Promise<JoinInfo> {
  return parseJoinInfo(await onMember(o, memberCliArgv(o, ["node", "join-info"])));
}

function thisDistro(): Distro | null {
  return existsSync("/etc/debian_version") ? "debian" : existsSync("/etc/almalinux-release") || existsSync("/etc/redhat-release") ? "alma" : null;
}

async function ensurePackages(o: InstallOptions, say: Say) {
  const missing = REQUIRED_PACKAGES.filter((p) => spawnSync("sh", ["-c", `command -v ${p.binary} || test -x /usr/sbin/${p.binary}`]).status !== 0);
  if (missing.length === 0) return say("packages: corosync, mariadb, rsync and chrony are installed");
  if (o.packages === "skip") {
    for (const p of missing) say(`warning: ${p.binary} is missing (${p.why}); install it before production use`);
    return;
  }
  const distro = thisDistro();
  if (!distro) throw new Error(`missing ${missing.map((p) => p.binary).join(", ")} and this is neither Debian nor Alma: install them, or pass --packages skip`);
  const cmd = packageCommand(distro, missing)!;
  say(`installing: ${cmd.join(" ")}`);
  if (distro === "debian") await mustRun("apt-get", ["update"], { timeoutMs: 300_000 });
  await mustRun(cmd[0]!, cmd.slice(1), { timeoutMs: 900_000 });
}

/** Why this machine already belongs to a cluster, or null. Debian's one-node default config does not count. */
async function alreadyInCluster(): Promise<string | null> {
  if ((await run("corosync-cfgtool", ["-s"], { timeoutMs: 5000 })).code !== 0) return null;
  try {
    const conf = readClusterConfig(parseCorosyncConf(readFileSync("/etc/corosync/corosync.conf", "utf8")));
    if (conf.nodes.length < 2) return null;
    return `corosync already runs on this node in cluster ${conf.clusterName} (${conf.nodes.length} nodes): remove it there first`;
  } catch {
    return "corosync already runs on this node with a corosync.conf that cannot be read: stop it first";
  }
}

export async function install(o: InstallOptions, sayLine: Say): Promise<void> {
  // Each line says how long the install has been running, so slow steps are visible.
  const t0 = Date.now();
  const say: Say = (line) => sayLine(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${line}`);
  const distro = thisDistro() ?? "debian";
  const paths = installPaths(o, distro);
  const memberName = o.member ?? "the member";

  // ---- checks: nothing is changed before all of them passed
  const member = await alreadyInCluster();
  if (member) throw new Error(member);
  const offsetMs = await clockOffset(o);
  say(`clock: ${Math.round(offsetMs)} ms from ${memberName}`);
  const before = await fetchJoinInfo(o);
  const refusals = preflightRefusals({ options: o, facts: before.facts, corosyncConf: before.corosyncConf, authkey: before.authkey, clockOffsetMs: offsetMs, memberName });
  // The member's settings become this node's: a bad template must stop us before the cluster changes.
  try {
    mariadbFilesFor(agentConfigFor(before.agentConfig, o.name, o.addr), o);
  } catch (err) {
    refusals.push((err as Error).message);
  }
  if (refusals.length) throw new Error(`refusing to install n${o.nodeid}; nothing was changed:\n  - ${refusals.join("\n  - ")}`);
  say(`cluster ${before.clusterName}: config_version ${before.configVersion}, quorate with n${before.facts.members.join(", n")}`);
  // Packages only once the cluster said yes, and before the cluster changes.
  await ensurePackages(o, say);

  // ---- the cluster change (the master decides; the member's CLI waits until it is distributed)
  let info = before;
  say((await onMember(o, memberCliArgv(o, ["node", "add", "--id", String(o.nodeid), "--addr", o.addr, "--prio", String(o.prio), "--name", o.name]))).trim());
  try {
    const after = await fetchJoinInfo(o);
    if (!after.facts.nodes.some((n) => n.nodeid === o.nodeid)) throw new Error("the member's corosync.conf does not list this node yet");
    await writeNodeFiles(o, after, paths, say);
    info = after;
  } catch (err) {
    throw new Error(`${(err as Error).message}\nthe cluster already lists n${o.nodeid}: undo with \`corolistener node remove ${o.nodeid}\` on a member`);
  }

  const units = unitsToStart(info.agentConfig, distro);
  const manageDb = "database" in info.agentConfig;
  if (!o.start) {
    const steps = remainingSteps(units, manageDb ? paths.mariadbAccountsSql : null);
    return say(`not starting services (--no-start); still to do on this node:\n  ${steps.join("\n  ")}`);
  }
  await mustRun("systemctl", ["daemon-reload"]);
  await mustRun("systemctl", ["enable", ...units], { timeoutMs: 60_000 });
  // Debian starts corosync (and MariaDB) with its own defaults when the package is installed: restart, not just start.
  for (const unit of units) {
    await mustRun("systemctl", ["restart", unit], { timeoutMs: 120_000 });
    if (unit === "mariadb") await createDbAccounts(paths.mariadbAccountsSql, say);
  }
  await waitJoined(o.nodeid, say);
}

async function writeNodeFiles(o: InstallOptions, info: JoinInfo, paths: ReturnType<typeof installPaths>, say: Say) {
  mkdirSync(dirname(paths.authkey), { recursive: true });
  await writeFileAtomic(paths.authkey, Buffer.from(info.authkey!, "base64"), { mode: 0o400 });
  await writeFileAtomic(paths.corosyncConf, info.corosyncConf, { mode: 0o644 });
  say(`wrote ${paths.authkey} and ${paths.corosyncConf} (config_version ${info.configVersion})`);

  mkdirSync(dirname(paths.agentConfig), { recursive: true });
  const newConfig = agentConfigFor(info.agentConfig, o.name, o.addr);
  await writeFileAtomic(paths.agentConfig, JSON.stringify(newConfig, null, 2) + "\n", { mode: 0o600 });
  // The agent: this checkout (with its node_modules) copied to /opt/corolistener.
  mkdirSync(paths.agentDir, { recursive: true });
  await mustRun("rsync", ["-a", "--delete", "--exclude=.git", "--exclude=*.log", `${o.agentSource}/`, `${paths.agentDir}/`], { timeoutMs: 600_000 });
  mkdirSync(dirname(paths.cliLink), { recursive: true });
  rmSync(paths.cliLink, { force: true });
  symlinkSync("/opt/corolistener/corolistener", paths.cliLink);
  mkdirSync(dirname(paths.unit), { recursive: true });
  await writeFileAtomic(paths.unit, renderAgentUnit({ agentConfig: o.agentConfig }), { mode: 0o644 });
  await writeFileAtomic(paths.fileSyncUnit, renderFileSyncUnit({ agentConfig: o.agentConfig }), { mode: 0o644 });
  rmSync(paths.fileSyncLink, { force: true });
  symlinkSync("/opt/corolistener/nodereplication", paths.fileSyncLink);
  say(`installed the agent in ${paths.agentDir}, its settings in ${paths.agentConfig} and ${paths.unit}`);

  const db = mariadbFilesFor(newConfig, o);
  if (!db) return say("MariaDB: the cluster's agents manage no database (no \"database\" section): not configured");
  mkdirSync(dirname(paths.mariadbCnf), { recursive: true });
  await writeFileAtomic(paths.mariadbCnf, db.cnf, { mode: 0o644 });
  mkdirSync(dirname(paths.mariadbAccountsSql), { recursive: true });
  await writeFileAtomic(paths.mariadbAccountsSql, db.accountsSql, { mode: 0o600 });
  say(`MariaDB: wrote ${paths.mariadbCnf} (server-id ${o.nodeid}, bind-address ${o.addr}, read-only start) and the accounts' SQL ${paths.mariadbAccountsSql}`);
}

/** The agent, replication and panel accounts, over the local socket as root; passwords go through stdin only. */
async function createDbAccounts(sqlFile: string, say: Say) {
  const r = await run("mariadb", ["--protocol=socket", "-u", "root"], { input: readFileSync(sqlFile, "utf8"), timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`creating the MariaDB accounts failed (exit ${r.code}): ${r.stderr.trim()}; fix it, then run: mariadb --protocol=socket -u root < ${sqlFile}`);
  say("MariaDB: agent, replication and panel accounts created");
}

async function waitJoined(nodeid: number, say: Say) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const r = await run("corosync-quorumtool", ["-s", "-p"], { timeoutMs: 5000 });
    if (/Quorate:\s+Yes/.test(r.stdout)) return say(`n${nodeid} joined: ${r.stdout.split("\n").find((l) => l.includes("Total votes"))?.trim() ?? "quorate"}`);
    await sleep(500);
  }
  throw new Error("corosync started but this node did not join a quorate membership within 60 s (check the firewall: UDP 5405)");
}

/** Default --agent-source: the checkout this CLI runs from. */
export function thisCheckout(): string {
  const root = new URL("../../../", import.meta.url).pathname.replace(/\/$/, "");
  readFileSync(`${root}/pnpm-workspace.yaml`); // fails early when run from an unexpected layout
  return root;
}

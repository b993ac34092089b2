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
//    the agent, its settings and its systemd unit; starts chrony, corosync and the agent.
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
  renderAgentUnit,
  renderFileSyncUnit,
  parseJoinInfo,
  REQUIRED_PACKAGES,
  type InstallOptions,
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

async function ensurePackages(o: InstallOptions, say: Say) {
  const missing = REQUIRED_PACKAGES.filter((p) => spawnSync("sh", ["-c", `command -v ${p.binary} || test -x /usr/sbin/${p.binary}`]).status !== 0);
  if (missing.length === 0) return say("packages: corosync, mariadb, rsync and chrony are installed");
  if (o.packages === "skip") {
    for (const p of missing) say(`warning: ${p.binary} is missing (${p.why}); install it before production use`);
    return;
  }
  const distro = existsSync("/etc/debian_version") ? "debian" : existsSync("/etc/almalinux-release") || existsSync("/etc/redhat-release") ? "alma" : null;
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
  const paths = installPaths(o);
  const memberName = o.member ?? "the member";

  // ---- checks: nothing is changed before all of them passed
  const member = await alreadyInCluster();
  if (member) throw new Error(member);
  const offsetMs = await clockOffset(o);
  say(`clock: ${Math.round(offsetMs)} ms from ${memberName}`);
  const before = await fetchJoinInfo(o);
  const refusals = preflightRefusals({ options: o, facts: before.facts, corosyncConf: before.corosyncConf, authkey: before.authkey, clockOffsetMs: offsetMs, memberName });
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

  if ("database" in info.agentConfig) say("warning: the settings manage MariaDB: configure it on this node for replication (README \"Installing a node\")");
  if (!o.start) return say("not starting services (--no-start): start chrony, corosync and corolistener yourself");
  // Debian starts corosync with its own one-node config when the package is installed: restart, not just start.
  const chrony = existsSync("/etc/debian_version") ? "chrony" : "chronyd";
  await mustRun("systemctl", ["daemon-reload"]);
  // File replication's receiver only where the settings configure it.
  const units = [chrony, "corosync", ...("fileSync" in info.agentConfig ? ["nodereplication"] : []), "corolistener"];
  await mustRun("systemctl", ["enable", ...units], { timeoutMs: 60_000 });
  for (const unit of units) await mustRun("systemctl", ["restart", unit], { timeoutMs: 60_000 });
  await waitJoined(o.nodeid, say);
}

async function writeNodeFiles(o: InstallOptions, info: JoinInfo, paths: ReturnType<typeof installPaths>, say: Say) {
  mkdirSync(dirname(paths.authkey), { recursive: true });
  await writeFileAtomic(paths.authkey, Buffer.from(info.authkey!, "base64"), { mode: 0o400 });
  await writeFileAtomic(paths.corosyncConf, info.corosyncConf, { mode: 0o644 });
  say(`wrote ${paths.authkey} and ${paths.corosyncConf} (config_version ${info.configVersion})`);

  mkdirSync(dirname(paths.agentConfig), { recursive: true });
  await writeFileAtomic(paths.agentConfig, JSON.stringify(agentConfigFor(info.agentConfig, o.name, o.addr), null, 2) + "\n", { mode: 0o600 });
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

// A local multi-node corosync cluster: one network namespace per node plus a private mount
// namespace, joined by bridges that live in a switch namespace. Usable from the CLI and tests.
import { mkdirSync, readFileSync, writeFileSync, rmSync, existsSync, cpSync } from "node:fs";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { buildCorosyncConf, writeCorosyncConf } from "@ha/shared";
import { labTopology, findNode, partitionRuleset, type LabNode, type LabTopology } from "./topology.ts";
import { mustRun, run, runSyncQuiet, sleep, type RunResult } from "@ha/shared";
import { findProcesses, pidsInNetns, spawnDetached, terminate, isAlive, type ProcessKind } from "./processes.ts";
import { prepareMariadb, waitMariadb, LAB_DB_USERS } from "./mariadb.ts";
import { labFileSyncConfig, type LabFileSyncOptions } from "./file-sync.ts";
// The lab runs the agent from this checkout; it builds the lab VMs' program with the agent's own builder.
import { buildNativeVmProgram } from "../../agent/src/effects/vm/vm-program.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const LAB_ROOT = "/var/tmp/ha-lab";
/** Where the shared storage appears inside every node. */
export const NODE_STORAGE_DIR = "/run/ha-storage";
/** Where the agent's config is written inside every node (bind-mounted /etc/corosync). */
export const NODE_AGENT_CONFIG = "/etc/corosync/corolistener.json";
export const NODE_AGENT_LOG = "/var/log/corosync/corolistener.log";

export type LabOptions = {
  name?: string;
  nodes: number;
  agents?: boolean;
  tokenMs?: number;
  /** Run MariaDB on every node (replication on; the agents manage primary and replicas). */
  mariadb?: boolean;
  /** HA settings for every agent (see agent/src/core/types.ts Settings), e.g. shorter fence timeouts. */
  ha?: Record<string, number | boolean>;
  /** Tear the lab down when this process exits (tests); the CLI's `lab up` leaves it running. */
  teardownOnExit?: boolean;
  /** File replication: a `fileSync` section in agent configs and an rsync daemon (`rsyncd`) on every node. */
  fileSync?: LabFileSyncOptions;
  /** Nodes built (namespaces, links, mounts) but not in the cluster and running nothing: machines waiting for `corolistener install`. */
  standby?: number[];
  /** knet crypto (aes256/sha256) with one shared /etc/corosync/authkey, as in production; default off. */
  crypto?: boolean;
  /** The lab VMs' program (agent/src/effects/vm/vm-program.ts): "native" (default) or "node". */
  vmProgram?: "native" | "node";
};

type LabState = {
  name: string;
  count: number;
  anchors: Record<string, number>; // node id -> pid of the process that holds its mount namespace
  cut: number[];
  partition: number[][] | null;
  storageCut: number[];
  agents: boolean;
  mariadb: boolean;
  tokenMs: number;
  ha: Record<string, number | boolean>;
  forwarders?: number[]; // port forwarders in the root namespace (ended by down)
  fileSync?: LabFileSyncOptions;
  standby?: number[];
  crypto?: boolean;
  vmProgram?: "native" | "node";
};

const stateDir = (name: string) => join(LAB_ROOT, name);
const stateFile = (name: string) => join(stateDir(name), "state.json");

export class Lab {
  readonly topo: LabTopology;
  private state: LabState;

  private constructor(state: LabState) {
    this.state = state;
    this.topo = labTopology(state.name, state.count);
  }

  /** Opens a running lab by name (for CLI commands after `lab up`). */
  static open(name = "lab"): Lab {
    if (!existsSync(stateFile(name))) throw new Error(`no lab "${name}" is running (start one with: labctl up)`);
    return new Lab(JSON.parse(readFileSync(stateFile(name), "utf8")) as LabState);
  }

  /** Builds the namespaces, starts corosync (and agents) on every node and waits for a quorate ring. */
  static async up(opts: LabOptions): Promise<Lab> {
    const name = opts.name ?? "lab";
    const topo = labTopology(name, opts.nodes); // validates before touching anything
    for (const id of opts.standby ?? []) findNode(topo, id);
    if (new Set(opts.standby ?? []).size >= opts.nodes) throw new Error("standby: at least one node must start in the cluster");
    destroyLab(name); // a stale lab from a crashed run
    const lab = new Lab({
      name,
      count: opts.nodes,
      anchors: {},
      cut: [],
      partition: null,
      storageCut: [],
      agents: opts.agents ?? false,
      mariadb: opts.mariadb ?? false,
      ha: opts.ha ?? {},
      tokenMs: opts.tokenMs ?? 1000,
      fileSync: opts.fileSync,
      standby: opts.standby ?? [],
      crypto: opts.crypto ?? false,
      vmProgram: opts.vmProgram,
    });
    mkdirSync(join(stateDir(name), "storage"), { recursive: true });
    lab.save();
    if (opts.teardownOnExit ?? true) guardTeardownOnExit(name);
    try {
      await lab.buildSwitch();
      const authkey = lab.state.crypto ? randomBytes(256) : null;
      for (const node of topo.nodes) await lab.buildNode(node, authkey);
      lab.save();
      const members = lab.clusterNodes();
      await Promise.all(members.map((n) => lab.start(n.id, "corosync")));
      await lab.waitQuorate(members.map((n) => n.id), 30_000);
      if (lab.state.mariadb) {
        await Promise.all(members.map((n) => lab.start(n.id, "mariadb")));
        await Promise.all(members.map((n) => waitMariadb(lab, n.id, 60_000)));
      }
      if (lab.state.fileSync) await Promise.all(members.map((n) => lab.start(n.id, "rsyncd")));
      if (lab.state.agents) {
        // Built once here, not by four agents at once while they start (see vmProgramDir()).
        if (lab.state.vmProgram !== "node") await buildNativeVmProgram(lab.vmProgramDir());
        await Promise.all(members.map((n) => lab.start(n.id, "agent")));
      }
      return lab;
    } catch (err) {
      destroyLab(name);
      throw err;
    }
  }

  get name() {
    return this.state.name;
  }
  nodeDir(id: number) {
    return join(stateDir(this.name), `n${id}`);
  }
  storageDir() {
    return join(stateDir(this.name), "storage");
  }
  /** Where the lab VMs' native program is built, once per lab; every node sees it (/var/tmp is not private). */
  vmProgramDir() {
    return join(stateDir(this.name), "vm-program");
  }

  /** The nodes that form the cluster at `up` (all but the standby ones). */
  clusterNodes(): LabNode[] {
    return this.topo.nodes.filter((n) => !(this.state.standby ?? []).includes(n.id));
  }

  private save() {
    writeFileSync(stateFile(this.name), JSON.stringify(this.state, null, 2));
  }

  private async buildSwitch() {
    const { switchNs: sw, ctlBridge, dataBridge, testIp } = this.topo;
    await mustRun("ip", ["netns", "add", sw]);
    await mustRun("ip", ["-n", sw, "link", "set", "lo", "up"]);
    for (const br of [ctlBridge, dataBridge]) {
      await mustRun("ip", ["-n", sw, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0"]);
      await mustRun("ip", ["-n", sw, "link", "set", br, "up"]);
    }
    await mustRun("ip", ["-n", sw, "addr", "add", `${testIp}/24`, "dev", dataBridge]);
    await mustRun("ip", ["-n", sw, "addr", "add", `${this.topo.switchCtlAddr}/24`, "dev", ctlBridge]);
    await this.applyPartition();
  }

  private async buildNode(node: LabNode, authkey: Buffer | null) {
    const { switchNs: sw } = this.topo;
    await mustRun("ip", ["netns", "add", node.ns]);
    await mustRun("ip", ["-n", node.ns, "link", "set", "lo", "up"]);
    const links: Array<[string, string, string, string]> = [
      [node.ctlPort, "vmbr0", node.ctlAddr, this.topo.ctlBridge],
      [node.dataPort, "data0", node.dataAddr, this.topo.dataBridge],
    ];
    for (const [port, inner, addr, bridge] of links) {
      await mustRun("ip", ["-n", sw, "link", "add", port, "type", "veth", "peer", "name", inner, "netns", node.ns]);
      await mustRun("ip", ["-n", sw, "link", "set", port, "master", bridge, "up"]);
      await mustRun("ip", ["-n", node.ns, "addr", "add", `${addr}/24`, "dev", inner]);
      await mustRun("ip", ["-n", node.ns, "link", "set", inner, "up"]);
    }
    // Private directories that get bind-mounted over the node's view of the system paths.
    const dir = this.nodeDir(node.id);
    for (const sub of ["etc-corosync", "lib-corosync", "log", "lib-mysql"]) mkdirSync(join(dir, sub), { recursive: true });
    // A standby machine gets its cluster files from `corolistener install`.
    if (!(this.state.standby ?? []).includes(node.id)) {
      writeFileSync(join(dir, "etc-corosync", "corosync.conf"), this.corosyncConf());
      writeFileSync(join(dir, "etc-corosync", "corolistener.json"), JSON.stringify(this.agentConfig(node), null, 2));
      if (authkey) writeFileSync(join(dir, "etc-corosync", "authkey"), authkey, { mode: 0o400 });
    }
    this.state.anchors[node.id] = await startAnchor(node, dir, this.storageDir());
  }

  corosyncConf(): string {
    return writeCorosyncConf(
      buildCorosyncConf({
        clusterName: this.name,
        tokenMs: this.state.tokenMs,
        // Keep detection time flat whatever the lab size (corosync adds 650 ms per node beyond two).
        tokenCoefficientMs: 0,
        crypto: this.state.crypto ?? false,
        logFile: "/var/log/corosync/corosync.log",
        nodes: this.clusterNodes().map((n) => ({ nodeid: n.id, name: n.name, ring0Addr: n.ctlAddr, prio: n.prio, replication: true })),
      }),
    );
  }

  agentConfig(node: LabNode) {
    return {
      nodeName: node.name,
      clusterIp: this.topo.clusterIp,
      clusterIpPrefix: this.topo.ctlPrefix,
      clusterIpDevice: "vmbr0",
      testIp: this.topo.testIp,
      storageDir: NODE_STORAGE_DIR,
      logFile: NODE_AGENT_LOG,
      serviceLockFile: "/tmp/.lock.vmmgr.service",
      relocatedMarkerFile: "/tmp/.lock.vmmgr.relocated",
      // VMs are processes here, with a made-up capacity so placement has RAM limits to respect.
      ha: this.state.ha,
      vm: {
        driver: "process",
        stopTimeoutMs: 2000,
        options: { capacity: { ramMb: 4096, vcpus: 4 }, programDir: this.vmProgramDir(), ...(this.state.vmProgram ? { program: this.state.vmProgram } : {}) },
      },
      ...(this.state.mariadb ? {
            database: { adminPassword: LAB_DB_USERS.agent.password, replPassword: LAB_DB_USERS.repl.password },
            panelDb: { user: LAB_DB_USERS.panel.user, password: LAB_DB_USERS.panel.password },
          } : {}),
      ...(this.state.fileSync ? { fileSync: labFileSyncConfig(this.topo, node, this.state.fileSync) } : {}),
    };
  }

  /** The pid of the process that holds node `id`'s namespaces. */
  anchorPid(id: number): number {
    const anchor = this.state.anchors[id];
    if (!anchor || !isAlive(anchor)) throw new Error(`node n${id} of lab ${this.name} is not running (its namespace holder is gone)`);
    return anchor;
  }

  /** argv prefix that runs a command inside a node's network + mount + uts namespaces. */
  enterArgs(id: number, cwd = REPO_ROOT): string[] {
    const anchor = this.anchorPid(id);
    // Entering a mount namespace resets the working directory to "/", so set it explicitly.
    return ["nsenter", "-t", String(anchor), "-m", "-n", "-u", `--wd=${cwd}`, "--"];
  }

  /** Runs a command inside a node and returns its output (never throws on a non-zero exit). */
  exec(id: number, argv: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    const [cmd, ...args] = [...this.enterArgs(id), ...argv];
    return run(cmd!, args, { ...opts, cwd: REPO_ROOT });
  }

  /** Starts a child process inside a node that stays attached to us (for tests that stream output). */
  spawnIn(id: number, argv: string[]) {
    const [cmd, ...args] = [...this.enterArgs(id), ...argv];
    return spawn(cmd!, args, { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "pipe"] });
  }

  /** Starts one of the node's services, detached, logging into the node's log directory. */
  async start(id: number, kind: ProcessKind): Promise<number> {
    findNode(this.topo, id);
    if (findProcesses(this.topo.nodes[id - 1]!.ns, kind).length > 0) throw new Error(`${kind} is already running on n${id}`);
    const log = join(this.nodeDir(id), "log", `${kind}.out`);
    const tsx = ["node", "--import", `file://${REPO_ROOT}/node_modules/tsx/dist/loader.mjs`];
    const argv: Record<ProcessKind, string[] | null> = {
      corosync: ["corosync", "-f"],
      agent: [...tsx, join(REPO_ROOT, "agent/src/cli/corolistener.ts"), "daemon", "--config", NODE_AGENT_CONFIG],
      rsyncd: [...tsx, join(REPO_ROOT, "agent/src/cli/nodereplication.ts"), "serve", "--config", NODE_AGENT_CONFIG],
      mariadb: kind === "mariadb" ? prepareMariadb(this.nodeDir(id), findNode(this.topo, id)) : null,
      panel: null,
      vm: null,
    };
    const cmd = argv[kind];
    if (!cmd) throw new Error(`the lab cannot start ${kind} yet`);
    // As the ./corolistener wrapper (what systemd runs) sets it.
    const env = kind === "agent" ? { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? "16" } : process.env;
    return spawnDetached([...this.enterArgs(id), ...cmd], log, env, REPO_ROOT);
  }

  processes(id: number, kind: ProcessKind | "all") {
    return findProcesses(findNode(this.topo, id).ns, kind);
  }

  /** Kills a node's process(es) of a kind with SIGKILL; returns the pids killed. */
  kill(id: number, kind: ProcessKind | "all", signal: NodeJS.Signals = "SIGKILL"): number[] {
    const procs = this.processes(id, kind);
    if (procs.length === 0) throw new Error(`no ${kind} process runs on n${id}`);
    for (const p of procs) process.kill(p.pid, signal);
    return procs.map((p) => p.pid);
  }
  pause(id: number, kind: ProcessKind | "all") {
    return this.kill(id, kind, "SIGSTOP");
  }
  /** SIGCONT; nothing to resume is fine (a watchdog may have reset the node while it was paused). */
  resume(id: number, kind: ProcessKind | "all") {
    const procs = this.processes(id, kind);
    for (const p of procs) process.kill(p.pid, "SIGCONT");
    return procs.map((p) => p.pid);
  }

  /**
   * A node crash as the cluster sees it: every process of the node dies at once, its links go dark,
   * and runtime state such as the cluster IP is gone (as after a power cut). `boot` brings it back.
   */
  async crash(ref: string | number) {
    const node = findNode(this.topo, ref);
    const anchor = this.state.anchors[node.id];
    for (const pid of pidsInNetns(node.ns).filter((p) => p !== anchor)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    for (const port of [node.ctlPort, node.dataPort]) await mustRun("ip", ["-n", this.topo.switchNs, "link", "set", port, "down"]);
    // Addresses die with the machine: the cluster IP and any VM address it carried.
    const addrs = await run("ip", ["-n", node.ns, "-o", "-4", "addr", "show", "dev", "vmbr0"]);
    for (const m of addrs.stdout.matchAll(/inet (\S+)/g)) {
      if (m[1] !== `${node.ctlAddr}/${this.topo.ctlPrefix}`) await run("ip", ["-n", node.ns, "addr", "del", m[1]!, "dev", "vmbr0"]);
    }
  }

  /** Powers a crashed node back on: links up, corosync and (if the lab runs them) the agent started. */
  async boot(ref: string | number) {
    const node = findNode(this.topo, ref);
    for (const port of [node.ctlPort, node.dataPort]) await mustRun("ip", ["-n", this.topo.switchNs, "link", "set", port, "up"]);
    if (this.processes(node.id, "corosync").length === 0) await this.start(node.id, "corosync");
    if (this.state.mariadb && this.processes(node.id, "mariadb").length === 0) {
      await this.start(node.id, "mariadb");
      await waitMariadb(this, node.id, 60_000);
    }
    if (this.state.fileSync && this.processes(node.id, "rsyncd").length === 0) await this.start(node.id, "rsyncd");
    if (this.state.agents && this.processes(node.id, "agent").length === 0) await this.start(node.id, "agent");
  }

  /**
   * Makes the panel reachable from this machine: a socat on 127.0.0.1:<port> that opens each
   * connection from the switch namespace to the cluster IP (the root namespace has no route there).
   */
  forwardPanel(port: number, panelPort = 1500): number {
    const target = `${this.topo.clusterIp}:${panelPort}`;
    // socat splits the EXEC command at every ':', so the inner address's colons are escaped ("\:").
    const pid = spawnDetached(
      ["socat", `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `EXEC:ip netns exec ${this.topo.switchNs} socat STDIO TCP\\:${target.replace(/:/g, "\\:")}`],
      join(stateDir(this.name), "forward.log"),
    );
    this.state.forwarders = [...(this.state.forwarders ?? []), pid];
    this.save();
    return pid;
  }

  /** Cuts a node's control link at the switch (the data link, where the test IP answers, stays up unless `data`). */
  async cut(ref: string | number, opts: { data?: boolean; control?: boolean } = {}) {
    const node = findNode(this.topo, ref);
    if (opts.control ?? true) await mustRun("ip", ["-n", this.topo.switchNs, "link", "set", node.ctlPort, "down"]);
    if (opts.data) await mustRun("ip", ["-n", this.topo.switchNs, "link", "set", node.dataPort, "down"]);
    if (!this.state.cut.includes(node.id)) this.state.cut.push(node.id);
    this.save();
  }

  /** Heals one node (its links and its place in a partition) or, with no node, the whole network. */
  async heal(ref?: string | number) {
    const nodes = ref === undefined ? this.topo.nodes : [findNode(this.topo, ref)];
    for (const node of nodes) {
      for (const port of [node.ctlPort, node.dataPort]) await mustRun("ip", ["-n", this.topo.switchNs, "link", "set", port, "up"]);
      this.state.cut = this.state.cut.filter((id) => id !== node.id);
    }
    if (ref === undefined) this.state.partition = null;
    else if (this.state.partition) this.state.partition = this.state.partition.map((g) => g.filter((id) => id !== nodes[0]!.id));
    await this.applyPartition();
    this.save();
  }

  /** Splits the control network: nodes talk only inside their group; unlisted nodes talk to all. */
  async partition(groups: Array<Array<string | number>>) {
    const ids = groups.map((g) => g.map((r) => findNode(this.topo, r).id));
    const all = ids.flat();
    if (new Set(all).size !== all.length) throw new Error("a node may appear in only one group of a partition");
    this.state.partition = ids;
    await this.applyPartition();
    this.save();
  }

  private async applyPartition() {
    const ruleset = `table bridge lab\ndelete table bridge lab\n${partitionRuleset(this.topo, this.state.partition ?? [])}`;
    await mustRun("ip", ["netns", "exec", this.topo.switchNs, "nft", "-f", "-"], { input: ruleset });
  }

  /** Makes the shared storage unreachable inside one node: writes fail (EROFS), the files vanish. */
  async storageCut(ref: string | number) {
    const node = findNode(this.topo, ref);
    if (this.state.storageCut.includes(node.id)) return;
    await this.mustExec(node.id, ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "storage-cut", NODE_STORAGE_DIR]);
    this.state.storageCut.push(node.id);
    this.save();
  }
  async storageHeal(ref: string | number) {
    const node = findNode(this.topo, ref);
    if (!this.state.storageCut.includes(node.id)) return;
    await this.mustExec(node.id, ["umount", NODE_STORAGE_DIR]);
    this.state.storageCut = this.state.storageCut.filter((id) => id !== node.id);
    this.save();
  }

  private async mustExec(id: number, argv: string[]) {
    const r = await this.exec(id, argv);
    if (r.code !== 0) throw new Error(`n${id}: ${argv.join(" ")} failed: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** corosync's own view from inside a node (corosync-quorumtool), parsed. */
  async quorumView(id: number): Promise<{ quorate: boolean; members: number[]; error?: string }> {
    const r = await this.exec(id, ["corosync-quorumtool", "-s", "-p"], { timeoutMs: 5000 });
    if (!/Quorate:/.test(r.stdout)) return { quorate: false, members: [], error: (r.stderr || r.stdout).trim() };
    return parseQuorumtool(r.stdout);
  }

  /** Waits until each given node sees a quorate ring made of exactly those nodes. */
  async waitQuorate(ids: number[], timeoutMs: number) {
    const want = [...ids].sort((a, b) => a - b).join(",");
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      const views = await Promise.all(ids.map((id) => this.quorumView(id)));
      if (views.every((v) => v.quorate && v.members.join(",") === want)) return;
      last = views.map((v, i) => `n${ids[i]}: ${v.error ?? `quorate=${v.quorate} members=[${v.members}]`}`).join("; ");
      await sleep(200);
    }
    throw new Error(`nodes ${want} did not form a quorate ring within ${timeoutMs} ms (${last})`);
  }

  async status() {
    return Promise.all(
      this.topo.nodes.map(async (n) => ({
        node: n.name,
        ns: n.ns,
        addr: n.ctlAddr,
        link: this.state.cut.includes(n.id) ? "cut" : "up",
        storage: this.state.storageCut.includes(n.id) ? "cut" : "ok",
        processes: this.processes(n.id, "all").map((p) => `${p.kind}:${p.pid}`),
        quorum: await this.quorumView(n.id).catch((e: Error) => ({ quorate: false, members: [], error: e.message })),
      })),
    );
  }

  /** Tears the lab down; with LAB_KEEP_LOGS=DIR set, every node's logs are copied to DIR/<lab>/nK first. */
  async down() {
    const keep = process.env.LAB_KEEP_LOGS;
    if (keep) {
      for (const n of this.topo.nodes) {
        try {
          cpSync(join(this.nodeDir(n.id), "log"), join(keep, this.name, `n${n.id}`), { recursive: true });
        } catch {
          /* a node that never wrote logs */
        }
      }
    }
    destroyLab(this.name);
  }
}

/** Parses `corosync-quorumtool -s -p` output (pure). */
export function parseQuorumtool(out: string): { quorate: boolean; members: number[] } {
  const quorate = /Quorate:\s+Yes/.test(out);
  const members: number[] = [];
  const table = out.split(/Membership information\s*\n-+\s*\n/)[1] ?? "";
  for (const line of table.split("\n")) {
    const m = /^\s*(\d+)\s+\d+\s/.exec(line);
    if (m) members.push(Number(m[1]));
  }
  return { quorate, members: members.sort((a, b) => a - b) };
}

/** Starts the process that holds a node's private mount namespace for the lab's lifetime. */
async function startAnchor(node: LabNode, dir: string, storage: string): Promise<number> {
  const script = [
    "set -e",
    "mount -t tmpfs -o mode=755 lab-run /run",
    `mkdir -p /run/lock ${NODE_STORAGE_DIR}`,
    "mount -t tmpfs lab-shm /dev/shm",
    "mount -t tmpfs -o mode=1777 lab-tmp /tmp",
    `mount --bind ${dir}/etc-corosync /etc/corosync`,
    `mount --bind ${dir}/lib-corosync /var/lib/corosync`,
    `mount --bind ${dir}/log /var/log/corosync`,
    `mount --bind ${dir}/lib-mysql /var/lib/mysql`,
    `mount --bind ${storage} ${NODE_STORAGE_DIR}`,
    `hostname ${node.name}`,
    "echo ready",
    "exec sleep infinity",
  ].join("\n");
  const child = spawn("ip", ["netns", "exec", node.ns, "unshare", "-m", "-u", "--propagation", "private", "--", "sh", "-c", script], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let errText = "";
  child.stderr.on("data", (d) => (errText += d));
  await new Promise<void>((resolveReady, reject) => {
    child.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolveReady());
    child.on("exit", (code) => reject(new Error(`namespace holder for ${node.name} exited (${code}): ${errText.trim()}`)));
  });
  child.stdout.destroy();
  child.stderr.destroy();
  child.unref();
  return child.pid!;
}

/** Removes every namespace, process and file of a lab; safe to call on a half-built or absent lab. */
export function destroyLab(name: string): void {
  // Forwarders live in the root namespace; end exactly the ones this lab recorded.
  try {
    const state = JSON.parse(readFileSync(stateFile(name), "utf8")) as LabState;
    terminate((state.forwarders ?? []).filter((pid) => /socat/.test(runSyncQuiet("cat", [`/proc/${pid}/cmdline`]))));
  } catch {
    /* no state file */
  }
  const namespaces = runSyncQuiet("ip", ["netns", "list"])
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((ns) => ns.startsWith(`${name}-`) && /-(sw|n\d+)$/.test(ns));
  terminate(namespaces.flatMap(pidsInNetns));
  for (const ns of namespaces) runSyncQuiet("ip", ["netns", "del", ns]);
  rmSync(stateDir(name), { recursive: true, force: true });
}

const guarded = new Set<string>();
/** Tears a lab down when this process is interrupted or exits without calling down(). */
function guardTeardownOnExit(name: string) {
  if (guarded.has(name)) return;
  guarded.add(name);
  process.once("exit", () => existsSync(stateFile(name)) && destroyLab(name));
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      destroyLab(name);
      process.exit(130);
    });
  }
}

export const labStateExists = (name: string) => existsSync(stateFile(name));
export const allLabNames = () =>
  existsSync(LAB_ROOT) ? runSyncQuiet("ls", [LAB_ROOT]).split("\n").filter(Boolean) : [];

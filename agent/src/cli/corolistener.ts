#!/usr/bin/env node
// corolistener: the HA daemon of a cluster node (`corolistener daemon`) and its inspection CLI (`-l`).
import { Command } from "commander";
import { readClusterState } from "../corosync/index.ts";
import { renderNodeList } from "./node-list.ts";
import { nodeListFromCorosync, nodeListFromView } from "./corolistener-lib.ts";
import { loadAgentConfig } from "../config.ts";
import { readLiveStatus } from "../effects/status-file.ts";

const program = new Command("corolistener")
  .enablePositionalOptions()
  .description("HA manager node daemon for corosync/KVM clusters")
  .option("-l, --list", "print the cluster node list")
  .option("--json", "with -l: print JSON")
  .option("-c, --config <file>", "agent settings (JSON), to find the daemon's status file")
  .action(async (o: { list?: boolean; json?: boolean; config?: string }) => {
    if (!o.list) return program.help();
    // Prefer the daemon's live view (HA statuses); without a running daemon, ask corosync directly.
    const live = readLiveStatus(loadAgentConfig(o.config).statusFile);
    if (live) {
      const rows = nodeListFromView(live.view, live.db);
      if (o.json) {
        const v = live.view;
        const out = { source: "daemon", localNodeId: v.localNodeId, quorate: v.quorum.quorate === true, members: v.quorum.members, quorum: v.quorum, master: v.master, nodes: rows, reasons: v.reasons, ...(live.db ? { databaseCheckedAt: new Date(live.db.checkedAt).toISOString() } : {}) };
        process.stdout.write(JSON.stringify(out, null, 2) + "\n");
      } else {
        process.stdout.write(renderNodeList(rows));
      }
      return;
    }
    const snapshot = await readClusterState({ timeoutMs: 5000 });
    const rows = nodeListFromCorosync(snapshot);
    if (o.json) {
      const out = { source: "corosync", localNodeId: snapshot.localNodeId, quorate: snapshot.quorate, members: snapshot.members, configVersion: String(snapshot.configVersion ?? ""), nodes: rows };
      process.stdout.write(JSON.stringify(out, null, 2) + "\n");
    } else {
      process.stdout.write(renderNodeList(rows));
    }
  });

program
  .command("daemon")
  .description("run the node daemon")
  .option("-c, --config <file>", "agent settings (JSON)")
  .action(async (o: { config?: string }) => {
    const { runDaemon } = await import("../daemon.ts");
    await runDaemon(o.config);
  });

/** Hands a request to the local daemon, which must be running. */
async function askDaemon(configPath: string | undefined, request: import("../wire.ts").AdminRequest) {
  const config = loadAgentConfig(configPath);
  if (!readLiveStatus(config.statusFile)) throw new Error("the corolistener daemon is not running on this node");
  const { AdminInbox } = await import("../effects/admin-inbox.ts");
  await new AdminInbox(config.statusFile).put(request);
  process.stdout.write(`asked the daemon: ${JSON.stringify(request)}\n`);
}

program
  .command("set-node <nodeid>")
  .description("change a node's prio and/or replication role; the master distributes corosync.conf")
  .option("--prio <n>", "new priority", Number)
  .option("--replication <on|off>", "replication role")
  .option("-c, --config <file>", "agent settings (JSON)")
  .action(async (nodeid: string, o: { prio?: number; replication?: string; config?: string }) => {
    if (o.prio === undefined && o.replication === undefined) throw new Error("give --prio and/or --replication");
    if (o.replication !== undefined && !["on", "off"].includes(o.replication)) throw new Error("--replication takes on or off");
    await askDaemon(o.config, { kind: "set-node", nodeid: Number(nodeid), prio: o.prio, replication: o.replication === undefined ? undefined : o.replication === "on" });
  });

program
  .command("maintenance <nodeid> <onoff>")
  .description("maintenance mode on|off: the master drains the node (its VMs restart elsewhere, one by one) and places nothing there")
  .option("-c, --config <file>", "agent settings (JSON)")
  .action(async (nodeid: string, onoff: string, o: { config?: string }) => {
    if (!/^[1-9]\d*$/.test(nodeid)) throw new Error(`node id must be a positive integer, got ${JSON.stringify(nodeid)}`);
    if (onoff !== "on" && onoff !== "off") throw new Error(`maintenance takes on or off, got ${JSON.stringify(onoff)}`);
    await askDaemon(o.config, { kind: "set-node", nodeid: Number(nodeid), maintenance: onoff === "on" });
  });

program
  .command("admission")
  .description("can the cluster lose any one node and still place every HA VM? (exit 0 ok, 2 warn)")
  .option("--json", "print JSON")
  .option("-c, --config <file>", "agent settings (JSON), for the shared storage path and status file")
  .action(async (o: { json?: boolean; config?: string }) => {
    const { readAdmission, renderAdmission } = await import("./admission.ts");
    const report = await readAdmission(loadAgentConfig(o.config));
    process.stdout.write(o.json ? JSON.stringify(report, null, 2) + "\n" : renderAdmission(report));
    if (!report.ok) process.exitCode = 2;
  });

program
  .command("elect")
  .description("re-elect the master now (the best prio wins even without failback)")
  .option("-c, --config <file>", "agent settings (JSON)")
  .action(async (o: { config?: string }) => askDaemon(o.config, { kind: "elect" }));

const vm = program.command("vm").description("VM definitions in the cluster metadata (shared storage)");
vm.command("define <name>")
  .description("define (or redefine) a VM; the master places and starts it")
  .requiredOption("--ram <mb>", "RAM in MB", Number)
  .option("--vcpus <n>", "virtual CPUs", Number, 1)
  .requiredOption("--disk <kind:path>", "disk, e.g. network:/run/ha-storage/vms/web1.disk or local:/var/lib/vm/x.img")
  .option("--ip <address>", "the VM's own address (process driver)")
  .option("--ha", "restart it elsewhere when its node fails", false)
  .option("--restart-priority <n>", "higher restarts first", Number, 0)
  .option("-c, --config <file>", "agent settings (JSON), for the shared storage path")
  .action(async (name: string, o: { ram: number; vcpus: number; disk: string; ip?: string; ha: boolean; restartPriority: number; config?: string }) => {
    const { ClusterMetadata } = await import("../effects/cluster-metadata.ts");
    const storageDir = loadAgentConfig(o.config).storageDir;
    if (!storageDir) throw new Error("no storageDir in the agent config: VM metadata lives on the shared storage");
    const [kind, ...path] = o.disk.split(":");
    await new ClusterMetadata(storageDir).defineVm({
      definition: { name, ramMb: o.ram, vcpus: o.vcpus, disk: { kind: kind as "network" | "local", path: path.join(":") }, ip: o.ip, ha: o.ha },
      restartPriority: o.restartPriority,
    });
    process.stdout.write(`defined ${name}\n`);
  });

// Node membership (run on a member; the master applies it) and the installer (run on the new node).
const node = program.command("node").description("add or remove cluster nodes (run on a member; the master distributes corosync.conf)");
node
  .command("add")
  .description("add a node to corosync.conf everywhere (config_version+1); refused without quorum or on a duplicate id/address")
  .requiredOption("--id <nodeid>", "the new node's corosync nodeid", Number)
  .requiredOption("--addr <ip>", "its ring0 address")
  .option("--prio <n>", "its priority (higher = preferred master)", Number, 0)
  .option("--name <name>", "its corosync node name")
  .option("-c, --config <file>", "agent settings (JSON)")
  .action(async (o: { id: number; addr: string; prio: number; name?: string; config?: string }) => {
    const { nodeAdd } = await import("./node-commands.ts");
    process.stdout.write(await nodeAdd(o.config, { nodeid: o.id, addr: o.addr, prio: o.prio, name: o.name }));
  });
node
  .command("remove <nodeid>")
  .description("remove a drained node from corosync.conf everywhere; refused if it owns VMs, is the master, or quorum would be lost")
  .option("--drain", "first put it in maintenance and wait until its VMs run elsewhere")
  .option("-c, --config <file>", "agent settings (JSON)")
  .action(async (nodeid: string, o: { drain?: boolean; config?: string }) => {
    const { nodeRemove } = await import("./node-commands.ts");
    process.stdout.write(await nodeRemove(o.config, Number(nodeid), { drain: o.drain, say: (line) => process.stdout.write(line + "\n") }));
  });
node
  .command("join-info")
  .description("print what a joining node needs (corosync.conf, authkey, agent settings, quorum) as JSON; used by install over ssh")
  .option("-c, --config <file>", "agent settings (JSON)")
  .action(async (o: { config?: string }) => {
    const { joinInfo } = await import("./node-commands.ts");
    process.stdout.write(JSON.stringify(await joinInfo(o.config)) + "\n");
  });

program
  .command("install")
  .description("prepare this machine and add it to a running cluster through a member (see README: Installing a node)")
  .requiredOption("--nodeid <n>", "this node's corosync nodeid (free in the cluster)")
  .requiredOption("--addr <ip>", "this node's ring0 address")
  .option("--prio <n>", "this node's priority", "0")
  .option("--name <name>", "this node's corosync name (default: hostname)")
  .option("--member <ssh-destination>", "a cluster member, reached with ssh (e.g. root@10.0.0.11)")
  .option("--member-exec <prefix>", "instead of ssh: a command prefix that runs commands on a member")
  .option("--member-cli <command>", "corolistener's command on the member", "corolistener")
  .option("--member-config <file>", "the agent settings file on the member (the new node's template)", "/etc/corolistener/config.json")
  .option("--root <dir>", "prefix for the agent, its unit and settings (not /etc/corosync)", "/")
  .option("--agent-config <file>", "where this node's agent settings go", "/etc/corolistener/config.json")
  .option("--agent-source <dir>", "the corolistener checkout to install (default: this one)")
  .option("--packages <auto|skip>", "install missing packages with apt-get/dnf, or only warn", "auto")
  .option("--no-start", "write everything but do not start chrony, MariaDB, corosync and the agent (prints what remains)")
  .action(async (raw: Record<string, unknown>) => {
    const { install, parseInstallOptions, thisCheckout } = await import("../install/installer.ts");
    const o = parseInstallOptions({ ...raw, agentSource: raw.agentSource ?? thisCheckout() });
    await install(o, (line) => process.stdout.write(line + "\n"));
  });

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`corolistener: ${err.message}\n`);
  process.exit(1);
});

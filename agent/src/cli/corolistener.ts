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
      const rows = nodeListFromView(live.view);
      if (o.json) {
        const v = live.view;
        const out = { source: "daemon", localNodeId: v.localNodeId, quorate: v.quorum.quorate === true, members: v.quorum.members, quorum: v.quorum, master: v.master, nodes: rows, reasons: v.reasons };
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

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`corolistener: ${err.message}\n`);
  process.exit(1);
});

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

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`corolistener: ${err.message}\n`);
  process.exit(1);
});

#!/usr/bin/env node
// corolistener: the HA daemon of a cluster node (`corolistener daemon`) and its inspection CLI (`-l`).
import { Command } from "commander";
import { readClusterState, type ClusterSnapshot } from "../corosync/index.ts";
import { renderNodeList, type NodeListRow } from "./node-list.ts";
import { loadAgentConfig } from "../config.ts";
import { readLiveStatus } from "../effects/status-file.ts";
import type { NodeView } from "../core/types.ts";

/** The node list as the running daemon sees it: HA statuses and the elected master. */
export function nodeListFromView(v: NodeView): NodeListRow[] {
  return v.nodes.map((n) => ({ id: n.nodeid, ip: n.addr ?? "", status: n.status.replace(/_/g, " "), master: n.isMaster, prio: n.prio }));
}

/** The node list as corosync alone sees it: joined/left, and the master by prio among quorate members. */
export function nodeListFromCorosync(s: ClusterSnapshot): NodeListRow[] {
  const members = new Set(s.members);
  const candidates = s.quorate ? s.nodes.filter((n) => members.has(n.nodeid)) : [];
  // Highest prio wins, ties go to the lowest nodeid (the same rule as the HA core's election).
  const master = candidates.reduce<(typeof candidates)[number] | undefined>(
    (best, n) => (!best || n.prio > best.prio || (n.prio === best.prio && n.nodeid < best.nodeid) ? n : best),
    undefined,
  );
  return s.nodes
    .map((n) => ({
      id: n.nodeid,
      ip: n.ring0Addr ?? "",
      status: members.has(n.nodeid) ? "joined" : "left",
      master: n.nodeid === master?.nodeid,
      prio: n.prio,
    }))
    .sort((a, b) => a.id - b.id);
}

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

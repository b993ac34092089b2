// File replication in the lab (docs/operations.md "File replication"): every node runs `nodereplication serve`
// (an rsync daemon on its control address); the file sets live in the node's private
// /var/lib/corosync (bind-mounted from <nodeDir>/lib-corosync), so tests see them from the host.
import { join } from "node:path";
import type { LabNode, LabTopology } from "./topology.ts";

export const LAB_FILE_SYNC_SECRET = "lab-file-sync-secret";
/** Inside a node. */
export const NODE_FILES_DIR = "/var/lib/corosync/files";
export const LAB_FILE_SYNC_PORT = 873;

export type LabFileSyncOptions = { schedule?: string };

/** The agent config's fileSync section for one lab node (pure). */
export function labFileSyncConfig(topo: LabTopology, node: LabNode, o: LabFileSyncOptions) {
  const subnet = `${topo.clusterIp.split(".").slice(0, 3).join(".")}.0/${topo.ctlPrefix}`;
  return {
    // Tests and benchmarks trigger cycles themselves with the CLI unless they ask for a schedule.
    schedule: o.schedule ?? "0 0 1 1 *",
    secret: LAB_FILE_SYNC_SECRET,
    port: LAB_FILE_SYNC_PORT,
    listenAddress: node.ctlAddr,
    hostsAllow: subnet,
    ioTimeoutSec: 10,
    connectTimeoutSec: 3,
    sets: { mgrfiles: { source: `${NODE_FILES_DIR}/mgrfiles-source`, target: `${NODE_FILES_DIR}/mgrfiles` } },
  };
}

/** Where a node's file-set directories are, seen from the host. */
export function hostFilesDir(nodeDir: string) {
  return join(nodeDir, "lib-corosync", "files");
}

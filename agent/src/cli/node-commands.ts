// `corolistener node add|remove|join-info`, run on a cluster member. Changes go through the local
// daemon's admin inbox to the master, which checks them again, bumps config_version and distributes
// corosync.conf to every member (see effects/config-sync.ts). Refusals are decided here first, from
// the daemon's live view, so the operator gets the reason on the terminal and nothing changes.
import { readFile } from "node:fs/promises";
import { parseCorosyncConf, readClusterConfig, sleep, type ClusterConfig } from "@ha/shared";
import { loadAgentConfig } from "../config.ts";
import { readLiveStatus } from "../effects/status-file.ts";
import { AdminInbox } from "../effects/admin-inbox.ts";
import { COROSYNC_CONF } from "../effects/config-sync.ts";
import { ClusterMetadata } from "../effects/cluster-metadata.ts";
import { refuseAddNode, refuseRemoveNode, type AddNodeRequest, type ClusterFacts } from "../node-admin.ts";

export const COROSYNC_AUTHKEY = "/etc/corosync/authkey";
const APPLY_TIMEOUT_MS = 20_000;

/** What `join-info` prints: everything a joining node needs, plus the facts its installer checks. */
export type JoinInfo = {
  memberNodeId: number;
  clusterName: string;
  configVersion: string;
  corosyncConf: string;
  /** base64 of /etc/corosync/authkey (secret: only ever sent over the installer's ssh channel). */
  authkey: string | null;
  /** The member's agent settings file, the template for the new node's. */
  agentConfig: Record<string, unknown>;
  facts: ClusterFacts;
};

async function readConf(): Promise<{ text: string; conf: ClusterConfig }> {
  const text = await readFile(COROSYNC_CONF, "utf8");
  return { text, conf: readClusterConfig(parseCorosyncConf(text)) };
}

/** The cluster as this member sees it: corosync.conf plus the running daemon's view. */
export async function memberFacts(configPath: string | undefined): Promise<{ facts: ClusterFacts; localNodeId: number; conf: ClusterConfig; confText: string }> {
  const config = loadAgentConfig(configPath);
  const live = readLiveStatus(config.statusFile);
  if (!live) throw new Error("the corolistener daemon is not running on this node: run this on a cluster member");
  const { text, conf } = await readConf();
  const v = live.view;
  // The metadata is the authority on VM owners; the view's copy can lag a second behind.
  const owners = config.storageDir
    ? (await new ClusterMetadata(config.storageDir).read()).owners.map((o) => ({ vm: o.vm, node: o.node }))
    : v.vms.map((x) => ({ vm: x.vm, node: x.owner }));
  return {
    facts: {
      nodes: conf.nodes.map((n) => ({ nodeid: n.nodeid, addr: n.ring0Addr, name: n.name })),
      quorate: v.quorum.quorate === true,
      members: v.quorum.members,
      master: v.master,
      owners,
    },
    localNodeId: v.localNodeId,
    conf,
    confText: text,
  };
}

/** Waits until this member's corosync.conf satisfies `done` (the master distributed the change). */
async function waitForConf(done: (c: ClusterConfig) => boolean, what: string): Promise<ClusterConfig> {
  const deadline = Date.now() + APPLY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const { conf } = await readConf().catch(() => ({ conf: null }));
    if (conf && done(conf)) return conf;
    await sleep(200);
  }
  throw new Error(`the master did not ${what} within ${APPLY_TIMEOUT_MS / 1000} s: see "admin request refused" in the master's log`);
}

export async function nodeAdd(configPath: string | undefined, req: AddNodeRequest): Promise<string> {
  const { facts, conf } = await memberFacts(configPath);
  const refused = refuseAddNode(facts, req);
  if (refused) throw new Error(`cannot add n${req.nodeid}: ${refused}`);
  await new AdminInbox(loadAgentConfig(configPath).statusFile).put({ kind: "add-node", ...req });
  const after = await waitForConf((c) => c.nodes.some((n) => n.nodeid === req.nodeid), `add n${req.nodeid}`);
  return `added n${req.nodeid} (${req.addr}, prio ${req.prio}): config_version ${conf.configVersion} -> ${after.configVersion}\n`;
}

/** `--drain`: maintenance on (the master restarts the node's VMs elsewhere), then wait until it owns none. */
async function drain(configPath: string | undefined, nodeid: number, timeoutMs: number, say: (line: string) => void) {
  await new AdminInbox(loadAgentConfig(configPath).statusFile).put({ kind: "set-node", nodeid, maintenance: true });
  say(`n${nodeid}: maintenance on, waiting for its VMs to run elsewhere`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const owned = (await memberFacts(configPath)).facts.owners.filter((o) => o.node === nodeid).map((o) => o.vm);
    if (owned.length === 0) return;
    if (Date.now() > deadline) throw new Error(`n${nodeid} still owns ${owned.join(", ")} after ${timeoutMs / 1000} s of maintenance: nothing was removed (see the master's log)`);
    await sleep(1000);
  }
}

export async function nodeRemove(configPath: string | undefined, nodeid: number, opts: { drain?: boolean; drainTimeoutMs?: number; say?: (line: string) => void } = {}): Promise<string> {
  if (!Number.isInteger(nodeid) || nodeid < 1) throw new Error(`node id must be a positive integer, got ${nodeid}`);
  let { facts, conf, localNodeId } = await memberFacts(configPath);
  if (nodeid === localNodeId) throw new Error(`cannot remove n${nodeid} from itself: run this on another member`);
  const owns = facts.owners.some((o) => o.node === nodeid);
  if (owns && opts.drain) {
    // Everything but the VMs must already allow the removal, or draining would be for nothing.
    const other = refuseRemoveNode({ ...facts, owners: [] }, nodeid);
    if (other) throw new Error(`cannot remove n${nodeid}: ${other}`);
    await drain(configPath, nodeid, opts.drainTimeoutMs ?? 300_000, opts.say ?? (() => undefined));
    ({ facts, conf } = await memberFacts(configPath));
  }
  const refused = refuseRemoveNode(facts, nodeid);
  if (refused) throw new Error(`cannot remove n${nodeid}: ${refused}`);
  await new AdminInbox(loadAgentConfig(configPath).statusFile).put({ kind: "remove-node", nodeid });
  const after = await waitForConf((c) => !c.nodes.some((n) => n.nodeid === nodeid), `remove n${nodeid}`);
  return [
    `removed n${nodeid}: config_version ${conf.configVersion} -> ${after.configVersion}; the cluster now has ${after.nodes.length} nodes`,
    `on n${nodeid}: systemctl disable --now corolistener corosync, then delete /etc/corosync/authkey and corosync.conf`,
    "",
  ].join("\n");
}

export async function joinInfo(configPath: string | undefined): Promise<JoinInfo> {
  const { facts, localNodeId, conf, confText } = await memberFacts(configPath);
  const authkey = await readFile(COROSYNC_AUTHKEY).then((b) => b.toString("base64"), () => null);
  const agentConfig = configPath ? (JSON.parse(await readFile(configPath, "utf8")) as Record<string, unknown>) : {};
  return { memberNodeId: localNodeId, clusterName: conf.clusterName, configVersion: String(conf.configVersion), corosyncConf: confText, authkey, agentConfig, facts };
}

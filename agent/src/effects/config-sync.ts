// corosync.conf distribution: the master writes the new file (bumped config_version) and multicasts it;
// every node validates it, writes it atomically and acknowledges; when all members have it, the master
// tells corosync to reload it everywhere (corosync-cfgtool -R).
import { readFile } from "node:fs/promises";
import {
  parseCorosyncConf,
  writeCorosyncConf,
  readClusterConfig,
  setConfigVersion,
  setNodeAttribute,
  addNode,
  removeNode,
  writeFileAtomic,
  run,
} from "@ha/shared";
import type { NodeConfig } from "../core/types.ts";

export const COROSYNC_CONF = "/etc/corosync/corosync.conf";

/**
 * The current file turned into the desired node list (nodes added or removed, prio/replication
 * applied) with the new version (pure). `names` gives the corosync `name` of nodes being added.
 */
export function renderDistributedConfig(currentText: string, version: number, nodes: NodeConfig[], names: ReadonlyMap<number, string> = new Map()): string {
  let root = parseCorosyncConf(currentText);
  const present = new Set(readClusterConfig(root).nodes.map((n) => n.nodeid));
  const wanted = new Set(nodes.map((n) => n.nodeid));
  for (const id of present) if (!wanted.has(id)) root = removeNode(root, id);
  for (const n of nodes) {
    if (present.has(n.nodeid)) continue;
    if (!n.addr) throw new Error(`cannot add n${n.nodeid} to corosync.conf: no address`);
    root = addNode(root, { nodeid: n.nodeid, name: names.get(n.nodeid), ring0Addr: n.addr, prio: n.prio, replication: n.replication ?? true });
  }
  for (const n of nodes) {
    root = setNodeAttribute(root, n.nodeid, "prio", n.prio);
    if (n.replication !== undefined) root = setNodeAttribute(root, n.nodeid, "replication", n.replication ? "on" : "off");
    if (n.maintenance !== undefined) root = setNodeAttribute(root, n.nodeid, "maintenance", n.maintenance ? "on" : "off");
  }
  return writeCorosyncConf(setConfigVersion(root, BigInt(version)));
}

/**
 * Checks a received file before it replaces ours: it must parse, be newer, and still list this node.
 * Returns the reason it is refused, or null when it is acceptable (pure).
 */
export function refuseReceivedConfig(text: string, currentVersion: bigint, localNodeId: number): string | null {
  try {
    const cfg = readClusterConfig(parseCorosyncConf(text));
    if (cfg.configVersion <= currentVersion) return `config_version ${cfg.configVersion} is not newer than ours (${currentVersion})`;
    if (!cfg.nodes.some((n) => n.nodeid === localNodeId)) return `it does not list this node (${localNodeId})`;
    return null;
  } catch (err) {
    return `it is not a valid corosync.conf: ${(err as Error).message}`;
  }
}

export class ConfigSync {
  /** The distribution waiting for acknowledgements: who has not answered yet, and what to do then. */
  private pending: { version: number; waiting: Set<number>; timer: NodeJS.Timeout; onDone: (missing: number[]) => void } | null = null;
  constructor(
    private readonly path = COROSYNC_CONF,
    private readonly reload: () => Promise<void> = async () => {
      const r = await run("corosync-cfgtool", ["-R"], { timeoutMs: 10_000 });
      if (r.code !== 0) throw new Error(`corosync-cfgtool -R failed: ${r.stderr.trim()}`);
    },
  ) {}

  async currentVersion(): Promise<bigint> {
    return readClusterConfig(parseCorosyncConf(await readFile(this.path, "utf8"))).configVersion;
  }

  /** Master side: the text to multicast. */
  async prepare(version: number, nodes: NodeConfig[], names?: ReadonlyMap<number, string>): Promise<string> {
    return renderDistributedConfig(await readFile(this.path, "utf8"), version, nodes, names);
  }

  /** Any node: validate and install a received file. Throws with the reason when refused. */
  async install(text: string, localNodeId: number): Promise<number> {
    const refused = refuseReceivedConfig(text, await this.currentVersion(), localNodeId);
    if (refused) throw new Error(`refusing distributed corosync.conf: ${refused}`);
    await writeFileAtomic(this.path, text);
    return Number(readClusterConfig(parseCorosyncConf(text)).configVersion);
  }

  /** Master side: reload once every member acknowledged (or after a timeout, for the ones that did). */
  expectAcks(version: number, members: number[], onDone: (missing: number[]) => void, timeoutMs = 5000) {
    if (this.pending) clearTimeout(this.pending.timer);
    this.pending = { version, waiting: new Set(members), timer: setTimeout(() => this.finish(), timeoutMs), onDone };
  }

  ack(version: number, from: number) {
    if (this.pending?.version !== version) return;
    this.pending.waiting.delete(from);
    if (this.pending.waiting.size === 0) this.finish();
  }

  private finish() {
    const p = this.pending;
    if (!p) return;
    clearTimeout(p.timer);
    this.pending = null;
    p.onDone([...p.waiting]);
  }

  reloadCorosync() {
    return this.reload();
  }
}

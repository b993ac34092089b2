import { readClusterConfig, type Transport } from './cluster-config.ts';
import { CorosyncConfError } from './errors.ts';
import { section, value, type ConfEntry, type ConfSection } from './tree.ts';

export interface NodeSpec {
  nodeid: number;
  name?: string;
  ring0Addr: string;
  /** All link addresses (ring0_addr, ring1_addr, ...); must start with ring0Addr. Defaults to [ring0Addr]. */
  ringAddrs?: string[];
  prio?: number;
  replication?: boolean;
}

export interface BuildOptions {
  clusterName: string;
  nodes: NodeSpec[];
  transport?: Transport;
  tokenMs?: number;
  /** Extra token time per node beyond two (corosync default 650 ms); 0 keeps failure detection flat as the ring grows. */
  tokenCoefficientMs?: number;
  /** Time to reach consensus before a new membership forms (corosync default 1.2 x token). */
  consensusMs?: number;
  /** true (default): aes256 + sha256, which needs /etc/corosync/authkey; false: none/none. */
  crypto?: boolean;
  configVersion?: bigint;
  logFile?: string;
  /** Emit quorum.two_node: 1; only honoured when there are exactly 2 nodes. */
  twoNode?: boolean;
}

/** `node { }` section in our canonical key order. */
export function nodeSection(node: NodeSpec): ConfSection {
  const addrs = node.ringAddrs ?? [node.ring0Addr];
  if (addrs[0] !== node.ring0Addr) {
    throw new CorosyncConfError(`node ${node.nodeid}: ringAddrs[0] (${addrs[0]}) must equal ring0Addr (${node.ring0Addr})`);
  }
  return section('node', [
    ...(node.name !== undefined ? [value('name', node.name)] : []),
    value('nodeid', node.nodeid),
    ...addrs.map((addr, link) => value(`ring${link}_addr`, addr)),
    value('prio', node.prio ?? 0),
    value('replication', node.replication ? 'on' : 'off'),
  ]);
}

/** A fresh corosync 3 config; validated with readClusterConfig before it is returned. */
export function buildCorosyncConf(opts: BuildOptions): ConfSection {
  const transport = opts.transport ?? 'knet';
  const crypto = opts.crypto ?? true;
  // corosync 3 only implements crypto for knet.
  if (crypto && transport !== 'knet') throw new CorosyncConfError(`crypto requires the knet transport (got ${transport}); pass crypto: false`);
  const links = Math.max(1, ...opts.nodes.map((n) => n.ringAddrs?.length ?? 1));

  const totem: ConfEntry[] = [
    value('version', 2),
    value('cluster_name', opts.clusterName),
    value('transport', transport),
    value('config_version', opts.configVersion ?? 1n),
    ...(opts.tokenMs !== undefined ? [value('token', opts.tokenMs)] : []),
    ...(opts.tokenCoefficientMs !== undefined ? [value('token_coefficient', opts.tokenCoefficientMs)] : []),
    ...(opts.consensusMs !== undefined ? [value('consensus', opts.consensusMs)] : []),
    value('crypto_cipher', crypto ? 'aes256' : 'none'),
    value('crypto_hash', crypto ? 'sha256' : 'none'),
    ...Array.from({ length: links }, (_, link) => section('interface', [value('linknumber', link)])),
  ];
  const root = section('', [
    section('totem', totem),
    section('logging', [
      value('to_logfile', 'yes'),
      value('logfile', opts.logFile ?? '/var/log/corosync/corosync.log'),
      value('to_syslog', 'no'),
      value('timestamp', 'on'),
    ]),
    section('quorum', [
      value('provider', 'corosync_votequorum'),
      ...(opts.twoNode && opts.nodes.length === 2 ? [value('two_node', 1)] : []),
    ]),
    section('nodelist', opts.nodes.map(nodeSection)),
  ]);
  readClusterConfig(root);
  return root;
}

// Pure helpers (no FFI): votequorum flag names, cmap value decoding, nodelist parsing.
import type { NodelistEntry } from './types.ts';

// VOTEQUORUM_INFO_* bits from votequorum.h, in bit order.
const VOTEQUORUM_FLAGS: Array<[number, string]> = [
  [1, 'TWONODE'],
  [2, 'QUORATE'],
  [4, 'WAIT_FOR_ALL'],
  [8, 'LAST_MAN_STANDING'],
  [16, 'AUTO_TIE_BREAKER'],
  [32, 'ALLOW_DOWNSCALE'],
  [64, 'QDEVICE_REGISTERED'],
  [128, 'QDEVICE_ALIVE'],
  [256, 'QDEVICE_CAST_VOTE'],
  [512, 'QDEVICE_MASTER_WINS'],
];

export const VOTEQUORUM_INFO_QUORATE = 2;

/** Decodes votequorum_info.flags into names; unknown bits become 'UNKNOWN_0x...'. */
export function decodeVotequorumFlags(flags: number): string[] {
  const names: string[] = [];
  let rest = flags >>> 0;
  for (const [bit, name] of VOTEQUORUM_FLAGS) {
    if (rest & bit) names.push(name);
    rest &= ~bit;
  }
  if (rest) names.push(`UNKNOWN_0x${(rest >>> 0).toString(16)}`);
  return names;
}

// cmap_value_types_t from cmap.h.
export const CMAP_VALUETYPE = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  INT64: 7,
  UINT64: 8,
  FLOAT: 9,
  DOUBLE: 10,
  STRING: 11,
  BINARY: 12,
} as const;

export type CmapValue = string | number | bigint | Buffer;

/** Decodes a raw cmap value (as filled by cmap_get) according to its type. */
export function decodeCmapValue(type: number, buf: Buffer): CmapValue {
  const T = CMAP_VALUETYPE;
  switch (type) {
    case T.INT8: return buf.readInt8(0);
    case T.UINT8: return buf.readUInt8(0);
    case T.INT16: return buf.readInt16LE(0);
    case T.UINT16: return buf.readUInt16LE(0);
    case T.INT32: return buf.readInt32LE(0);
    case T.UINT32: return buf.readUInt32LE(0);
    case T.INT64: return buf.readBigInt64LE(0);
    case T.UINT64: return buf.readBigUInt64LE(0);
    case T.FLOAT: return buf.readFloatLE(0);
    case T.DOUBLE: return buf.readDoubleLE(0);
    case T.STRING: {
      const nul = buf.indexOf(0);
      return buf.toString('utf8', 0, nul < 0 ? buf.length : nul);
    }
    default: return Buffer.from(buf);
  }
}

/** String form used for NodelistEntry.raw (like corosync-cmapctl prints it). */
export function cmapValueToString(v: CmapValue): string {
  return Buffer.isBuffer(v) ? v.toString('hex') : String(v);
}

const NODE_KEY = /^nodelist\.node\.(\d+)\.(.+)$/;
const TRUE_WORDS = new Set(['on', 'yes', 'true', '1']);

function toInt(s: string | undefined): number | undefined {
  if (s === undefined || !/^\s*-?\d+\s*$/.test(s)) return undefined;
  return Number.parseInt(s, 10);
}

/**
 * Builds NodelistEntry[] from flat cmap pairs under `nodelist.` (values already stringified).
 * Entries without a valid nodeid are skipped (corosync 3 with knet requires one). Sorted by nodeid.
 */
export function parseNodelist(pairs: Record<string, string>): NodelistEntry[] {
  const byIndex = new Map<number, Record<string, string>>();
  for (const [key, value] of Object.entries(pairs)) {
    const m = NODE_KEY.exec(key);
    if (!m) continue;
    const idx = Number(m[1]);
    const raw = byIndex.get(idx) ?? {};
    raw[m[2]!] = value;
    byIndex.set(idx, raw);
  }
  const nodes: NodelistEntry[] = [];
  for (const raw of byIndex.values()) {
    const nodeid = toInt(raw.nodeid);
    if (nodeid === undefined || nodeid <= 0) continue;
    const entry: NodelistEntry = {
      nodeid,
      prio: toInt(raw.prio) ?? 0,
      replication: TRUE_WORDS.has((raw.replication ?? '').trim().toLowerCase()),
      maintenance: TRUE_WORDS.has((raw.maintenance ?? '').trim().toLowerCase()),
      raw,
    };
    if (raw.name !== undefined) entry.name = raw.name;
    if (raw.ring0_addr !== undefined) entry.ring0Addr = raw.ring0_addr;
    nodes.push(entry);
  }
  return nodes.sort((a, b) => a.nodeid - b.nodeid);
}

/** Sorted copy of a nodeid list (quorum members are reported sorted ascending). */
export function sortedIds(ids: Iterable<number>): number[] {
  return [...ids].sort((a, b) => a - b);
}

export type ClusterConfig = { nodes: NodelistEntry[]; configVersion: bigint; clusterName?: string; tokenMs?: number; consensusMs?: number };

/**
 * Builds the config view from cmap values (`nodelist.*` plus the totem keys below).
 * tokenMs and consensusMs prefer runtime.config.totem.*: the effective values corosync actually
 * uses (token with token_coefficient applied; consensus defaulted to 1.2 x token), updated on a
 * reload.
 */
export function configFromCmap(values: Map<string, CmapValue>): ClusterConfig {
  const pairs: Record<string, string> = {};
  for (const [k, v] of values) if (k.startsWith('nodelist.')) pairs[k] = cmapValueToString(v);
  const version = values.get('totem.config_version');
  const name = values.get('totem.cluster_name');
  const token = values.get('runtime.config.totem.token') ?? values.get('totem.token');
  const consensus = values.get('runtime.config.totem.consensus') ?? values.get('totem.consensus');
  const cfg: ClusterConfig = {
    nodes: parseNodelist(pairs),
    configVersion: typeof version === 'bigint' || typeof version === 'number' ? BigInt(version) : 0n,
  };
  if (typeof name === 'string') cfg.clusterName = name;
  if (typeof token === 'number' || typeof token === 'bigint') cfg.tokenMs = Number(token);
  if (typeof consensus === 'number' || typeof consensus === 'bigint') cfg.consensusMs = Number(consensus);
  return cfg;
}

/** The extra (non-nodelist) cmap keys configFromCmap looks at. */
export const CONFIG_KEYS = [
  'totem.config_version',
  'totem.cluster_name',
  'totem.token',
  'runtime.config.totem.token',
  'totem.consensus',
  'runtime.config.totem.consensus',
];

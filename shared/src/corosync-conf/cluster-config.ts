import { z } from 'zod';
import { CorosyncConfError } from './errors.ts';
import { childSections, lastValues, positionOf, type ConfSection, type ConfValue } from './tree.ts';

export interface ClusterNode {
  nodeid: number;
  name?: string;
  ring0Addr: string;
  /** ring0_addr, ring1_addr, ...: index = knet link number. */
  ringAddrs: string[];
  /** Our nodelist extension `prio: <int>`; 0 when absent. */
  prio: number;
  /** Our nodelist extension `replication: on|off`; off when absent. */
  replication: boolean;
}

export type Transport = 'knet' | 'udp' | 'udpu';

export interface ClusterConfig {
  clusterName: string;
  /** totem.config_version; 0 when absent (corosync's default). */
  configVersion: bigint;
  /** totem.transport; corosync 3 defaults to knet. */
  transport: Transport;
  tokenMs?: number;
  /** totem.crypto_cipher / crypto_hash ("none" when absent), crypto_model if set. */
  crypto: { cipher: string; hash: string; model?: string };
  /** quorum.two_node: 1 */
  twoNode: boolean;
  nodes: ClusterNode[];
}

export const U64_MAX = 2n ** 64n - 1n;
const MAX_LINKS = 8; // knet supports links 0..7

const uint32 = z
  .string()
  .regex(/^\d+$/, 'must be an unsigned integer')
  .transform(Number)
  .refine((n) => n <= 0xffffffff, 'must fit in 32 bits');

const configVersion = z
  .string()
  .regex(/^\d+$/, 'must be an unsigned 64-bit integer')
  .transform(BigInt)
  .refine((v) => v <= U64_MAX, `must be an unsigned 64-bit integer (at most ${U64_MAX})`);

// Value lists are the ones corosync 3 itself checks (coroparse.c).
const totemSchema = z.object({
  cluster_name: z.string({ error: 'is missing' }).min(1, 'must not be empty'),
  config_version: configVersion.optional(),
  transport: z.enum(['knet', 'udp', 'udpu'], { error: 'must be knet, udp or udpu' }).optional(),
  token: uint32.optional(),
  crypto_cipher: z.enum(['none', 'aes256', 'aes192', 'aes128'], { error: 'must be none, aes256, aes192 or aes128' }).optional(),
  crypto_hash: z
    .enum(['none', 'md5', 'sha1', 'sha256', 'sha384', 'sha512'], { error: 'must be none, md5, sha1, sha256, sha384 or sha512' })
    .optional(),
  crypto_model: z.string().optional(),
});

const nodeSchema = z
  .looseObject({
    nodeid: z
      .string({ error: 'is missing' })
      .regex(/^\d+$/, 'must be a positive integer')
      .transform(Number)
      .refine((n) => n >= 1 && n <= 0xffffffff, 'must be a positive integer below 2^32'),
    name: z.string().optional(),
    ring0_addr: z.string({ error: 'is missing' }).min(1, 'must not be empty'),
    prio: z
      .string()
      .regex(/^[+-]?\d+$/, 'must be an integer')
      .transform(Number)
      .refine(Number.isSafeInteger, 'is out of range')
      .optional(),
    replication: z.enum(['on', 'off'], { error: 'must be "on" or "off"' }).optional(),
  })
  .transform((raw, ctx): ClusterNode => {
    const ringAddrs: string[] = [];
    for (let link = 0; link < MAX_LINKS; link++) {
      const addr = raw[`ring${link}_addr`];
      if (typeof addr !== 'string') continue;
      // Index must equal the link number, so refuse holes rather than shift links.
      if (ringAddrs.length !== link) {
        ctx.issues.push({ code: 'custom', input: addr, path: [`ring${link}_addr`], message: `is set but ring${ringAddrs.length}_addr is missing (link numbers must be contiguous)` });
        return z.NEVER;
      }
      ringAddrs.push(addr);
    }
    return {
      nodeid: raw.nodeid,
      ...(raw.name !== undefined && { name: raw.name }),
      ring0Addr: raw.ring0_addr,
      ringAddrs,
      prio: raw.prio ?? 0,
      replication: raw.replication === 'on',
    };
  });

const configSchema = z.object({
  totem: totemSchema,
  quorum: z.looseObject({ two_node: z.enum(['0', '1'], { error: 'must be 0 or 1' }).optional() }),
  nodes: z.array(nodeSchema).min(1, 'must contain at least one node { } section'),
});

type Issue = { path: PropertyKey[]; message: string };

/** Checks that span keys or nodes, run once every value is individually valid. */
function crossCheck({ totem, nodes }: z.output<typeof configSchema>): Issue | undefined {
  const transport = totem.transport ?? 'knet';
  if ((totem.crypto_cipher ?? 'none') !== 'none' && (totem.crypto_hash ?? 'none') === 'none') {
    return { path: ['totem', 'crypto_hash'], message: 'must not be none when crypto_cipher is set (corosync refuses it)' };
  }
  const firstId = new Map<number, number>();
  const firstAddr = new Map<string, number>();
  for (const [i, node] of nodes.entries()) {
    // knet addresses hosts by a 16-bit id; corosync refuses larger nodeids with knet.
    if (transport === 'knet' && node.nodeid > 0xffff) return { path: ['nodes', i, 'nodeid'], message: 'must be below 65536 with the knet transport' };
    const sameId = firstId.get(node.nodeid);
    if (sameId !== undefined) return { path: ['nodes', i, 'nodeid'], message: `is already used by node #${sameId + 1}` };
    const sameAddr = firstAddr.get(node.ring0Addr);
    if (sameAddr !== undefined) return { path: ['nodes', i, 'ring0_addr'], message: `is already used by node #${sameAddr + 1}` };
    firstId.set(node.nodeid, i);
    firstAddr.set(node.ring0Addr, i);
    // corosync refuses differing link sets (with "No multicast port specified for interface 1").
    const links = nodes[0]!.ringAddrs.length;
    if (node.ringAddrs.length !== links) {
      return { path: ['nodes', i], message: `has ${node.ringAddrs.length} link(s) but node #1 has ${links}; every node needs the same ringN_addr keys` };
    }
  }
  return undefined;
}

/** Typed, validated view of a parsed corosync.conf. Throws CorosyncConfError pointing at the bad value. */
export function readClusterConfig(root: ConfSection): ClusterConfig {
  const totems = childSections(root, 'totem');
  if (totems.length === 0) throw new CorosyncConfError("missing 'totem' section");
  const nodelists = childSections(root, 'nodelist');
  if (nodelists.length !== 1) {
    // corosync restarts node numbering per nodelist block, silently overwriting nodes.
    throw new CorosyncConfError(`expected exactly one 'nodelist' section, found ${nodelists.length}`, nodelists[1] && positionOf(nodelists[1]));
  }
  const nodelist = nodelists[0]!;
  const nodeSections = childSections(nodelist, 'node');
  const totem = lastValues(...totems); // repeated totem blocks merge in corosync
  const quorumSections = childSections(root, 'quorum');
  const quorum = lastValues(...quorumSections);
  const nodes = nodeSections.map((s) => lastValues(s));

  const result = configSchema.safeParse({ totem: strings(totem), quorum: strings(quorum), nodes: nodes.map(strings) });
  if (!result.success) throw located(result.error.issues[0]!);
  const { totem: t, quorum: q, nodes: n } = result.data;
  const issue = crossCheck(result.data);
  if (issue) throw located(issue);
  return {
    clusterName: t.cluster_name,
    configVersion: t.config_version ?? 0n,
    transport: t.transport ?? 'knet',
    ...(t.token !== undefined && { tokenMs: t.token }),
    crypto: { cipher: t.crypto_cipher ?? 'none', hash: t.crypto_hash ?? 'none', ...(t.crypto_model !== undefined && { model: t.crypto_model }) },
    twoNode: q.two_node === '1',
    nodes: n,
  };

  // Name the node/section and key, and point at the offending value (else at its section).
  function located({ path: [scope, index, nodeKey], message }: Issue): CorosyncConfError {
    const inNode = scope === 'nodes' && typeof index === 'number';
    const key = inNode ? nodeKey : index;
    const values = inNode ? nodes[index] : scope === 'quorum' ? quorum : scope === 'totem' ? totem : undefined;
    const section = inNode ? nodeSections[index] : scope === 'quorum' ? quorumSections.at(-1) : scope === 'totem' ? totems.at(-1) : nodelist;
    let where = scope === 'nodes' ? 'nodelist' : String(scope);
    if (inNode) {
      const ids = ['nodeid', 'name'].flatMap((k) => (values?.get(k) ? [`${k} ${values.get(k)!.value}`] : []));
      where = `nodelist node #${index + 1}${ids.length ? ` (${ids.join(', ')})` : ''}`;
    }
    if (typeof key === 'string') where += inNode ? `: ${key}` : `.${key}`;
    const entry = typeof key === 'string' ? values?.get(key) : undefined;
    const got = entry ? ` (got ${JSON.stringify(entry.value)})` : '';
    const pos = (entry && positionOf(entry)) ?? (section && positionOf(section));
    return new CorosyncConfError(`${where} ${message}${got}`, pos);
  }
}

function strings(values: Map<string, ConfValue>): Record<string, string> {
  return Object.fromEntries([...values].map(([k, v]) => [k, v.value]));
}

import { nodeSection, type NodeSpec } from './build.ts';
import { readClusterConfig, U64_MAX } from './cluster-config.ts';
import { CorosyncConfError } from './errors.ts';
import { childSections, setKey, withEntries, type ConfEntry, type ConfSection } from './tree.ts';

// All helpers return a new tree; untouched subtrees are shared with the input.
// Node edits validate both the input and the result with readClusterConfig.

export function setConfigVersion(root: ConfSection, version: bigint): ConfSection {
  if (version < 0n || version > U64_MAX) throw new CorosyncConfError(`config_version ${version} is not an unsigned 64-bit integer`);
  const totems = childSections(root, 'totem');
  if (totems.length === 0) throw new CorosyncConfError("missing 'totem' section");
  // Update every totem block that sets it (blocks merge, last wins); else add it to the first.
  const holders = totems.filter((t) => t.entries.some((e) => e.kind === 'value' && e.key === 'config_version'));
  const targets = new Set(holders.length ? holders : totems.slice(0, 1));
  return withEntries(root, root.entries.map((e) => (e.kind === 'section' && targets.has(e) ? setKey(e, 'config_version', version) : e)));
}

export function bumpConfigVersion(root: ConfSection): ConfSection {
  const current = readClusterConfig(root).configVersion;
  if (current === U64_MAX) throw new CorosyncConfError('config_version is already at its maximum (2^64-1)');
  return setConfigVersion(root, current + 1n);
}

/** Set `key: value` inside the node with this nodeid (e.g. prio, replication). */
export function setNodeAttribute(root: ConfSection, nodeid: number, key: string, val: string | number): ConfSection {
  return editNodelist(root, (entries, find) => {
    const target = find(nodeid);
    return entries.map((e) => (e === target ? setKey(target, key, val) : e));
  });
}

/** Append a node section after the last existing one. */
export function addNode(root: ConfSection, node: NodeSpec): ConfSection {
  return editNodelist(root, (entries) => {
    const lastNode = entries.filter((e) => e.kind === 'section' && e.name === 'node').at(-1);
    const at = lastNode ? entries.indexOf(lastNode) + 1 : entries.length;
    return [...entries.slice(0, at), nodeSection(node), ...entries.slice(at)];
  });
}

export function removeNode(root: ConfSection, nodeid: number): ConfSection {
  return editNodelist(root, (entries, find) => {
    const target = find(nodeid);
    return entries.filter((e) => e !== target);
  });
}

type NodelistEdit = (entries: ConfEntry[], find: (nodeid: number) => ConfSection) => ConfEntry[];

function editNodelist(root: ConfSection, edit: NodelistEdit): ConfSection {
  const config = readClusterConfig(root); // also guarantees exactly one nodelist
  const nodelist = childSections(root, 'nodelist')[0]!;
  // config.nodes is in the same order as the nodelist's node sections.
  const find = (nodeid: number): ConfSection => {
    const i = config.nodes.findIndex((n) => n.nodeid === nodeid);
    if (i === -1) throw new CorosyncConfError(`no node with nodeid ${nodeid} in nodelist`);
    return childSections(nodelist, 'node')[i]!;
  };
  const updatedList = withEntries(nodelist, edit(nodelist.entries, find));
  const updated = withEntries(root, root.entries.map((e) => (e === nodelist ? updatedList : e)));
  readClusterConfig(updated);
  return updated;
}

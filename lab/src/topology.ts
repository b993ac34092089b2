// Pure description of a lab: namespace names, interface names and addresses.
// Everything lives on private test subnets that exist only inside the lab's namespaces.

export const MAX_NODES = 16;

export type LabNode = {
  id: number;
  name: string; // "n1"
  ns: string; // network namespace of the node
  ctlAddr: string; // control network (corosync, cluster IP) on the node's vmbr0
  dataAddr: string; // data/storage network on the node's data0 (where the test IP answers)
  ctlPort: string; // switch-side end of the node's control link
  dataPort: string; // switch-side end of the node's data link
  prio: number;
};

export type LabTopology = {
  name: string;
  switchNs: string;
  ctlBridge: string;
  dataBridge: string;
  ctlPrefix: number;
  clusterIp: string;
  testIp: string; // answers on the data network only: lets a node tell "control link lost" from "isolated"
  switchCtlAddr: string; // the switch's own address on the control network: the port forwarder connects from here
  nodes: LabNode[];
};

const CTL_NET = "172.31.224";
const DATA_NET = "172.31.225";

export function labTopology(name: string, count: number): LabTopology {
  if (!/^[a-z][a-z0-9]{0,7}$/.test(name)) {
    throw new Error(`lab name "${name}" must be 1-8 lowercase letters/digits, starting with a letter`);
  }
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) {
    throw new Error(`a lab has 1 to ${MAX_NODES} nodes, not ${count}`);
  }
  const nodes: LabNode[] = [];
  for (let id = 1; id <= count; id++) {
    nodes.push({
      id,
      name: `n${id}`,
      ns: `${name}-n${id}`,
      ctlAddr: `${CTL_NET}.${10 + id}`,
      dataAddr: `${DATA_NET}.${10 + id}`,
      ctlPort: `c${id}`,
      dataPort: `d${id}`,
      // n1 has the highest priority by default, so the expected master is predictable.
      prio: (count - id + 1) * 10,
    });
  }
  return {
    name,
    switchNs: `${name}-sw`,
    ctlBridge: "brctl0",
    dataBridge: "brdata0",
    ctlPrefix: 24,
    clusterIp: `${CTL_NET}.100`,
    testIp: `${DATA_NET}.1`,
    switchCtlAddr: `${CTL_NET}.254`,
    nodes,
  };
}

/** Resolves "n3", "3" or 3 to a node of the topology, with a clear error otherwise. */
export function findNode(topo: LabTopology, ref: string | number): LabNode {
  const id = typeof ref === "number" ? ref : Number(String(ref).replace(/^n/, ""));
  const node = topo.nodes.find((n) => n.id === id);
  if (!node) {
    throw new Error(`no node "${ref}" in lab ${topo.name} (nodes: ${topo.nodes.map((n) => n.name).join(", ")})`);
  }
  return node;
}

/**
 * nftables ruleset for the switch that lets traffic flow only inside each group.
 * Nodes in no group talk to everyone; a group of one is isolated.
 */
export function partitionRuleset(topo: LabTopology, groups: number[][]): string {
  const groupOf = new Map<number, number>();
  groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
  const rules: string[] = [];
  for (const a of topo.nodes) {
    for (const b of topo.nodes) {
      const ga = groupOf.get(a.id);
      const gb = groupOf.get(b.id);
      if (a.id !== b.id && ga !== undefined && gb !== undefined && ga !== gb) {
        rules.push(`    iifname "${a.ctlPort}" oifname "${b.ctlPort}" drop`);
      }
    }
  }
  return [
    "table bridge lab {",
    "  chain forward_filter {",
    "    type filter hook forward priority 0; policy accept;",
    ...rules,
    "  }",
    "}",
    "",
  ].join("\n");
}

// What a node's agent says about the cluster (`corolistener -l --json`), for lab tests and benches.
import { NODE_AGENT_CONFIG, type Lab } from "./lab.ts";

/** The master as node `from` sees it; null when it names none or cannot tell. */
export async function masterOf(lab: Lab, from: number): Promise<number | null> {
  const r = await lab.exec(from, ["./corolistener", "-l", "--json", "-c", NODE_AGENT_CONFIG]);
  return r.code === 0 ? (JSON.parse(r.stdout) as { master: number | null }).master : null;
}

/** The master once every node is a good member (so a first placement sees them all); else null. */
export async function masterOfHealthyCluster(lab: Lab, from: number): Promise<number | null> {
  const r = await lab.exec(from, ["./corolistener", "-l", "--json", "-c", NODE_AGENT_CONFIG]);
  if (r.code !== 0) return null;
  const l = JSON.parse(r.stdout) as { master: number | null; nodes: Array<{ status: string }> };
  return l.nodes.length === lab.topo.nodes.length && l.nodes.every((n) => n.status === "leader" || n.status === "member") ? l.master : null;
}

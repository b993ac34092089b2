#!/usr/bin/env node
// `lab`: bring up, inspect, break and heal a local multi-node corosync cluster.
import { Command, InvalidArgumentError } from "commander";
import { spawnSync } from "node:child_process";
import { Lab, destroyLab } from "./lab.ts";
import { parseProcessKind } from "./processes.ts";

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError("not a whole number");
  return n;
};
const nodeList = (v: string) => v.split(",").filter(Boolean);

const program = new Command("labctl").description("local multi-node corosync lab in network namespaces").option("--name <name>", "lab name", "lab");
const labName = () => program.opts<{ name: string }>().name;

program
  .command("up")
  .description("build the namespaces, start corosync on every node and wait for quorum")
  .option("-n, --nodes <n>", "number of nodes (1-16)", int, 3)
  .option("--no-agents", "do not start corolistener on the nodes")
  .option("--no-mariadb", "do not run MariaDB on the nodes")
  .option("--token <ms>", "corosync token timeout", int, 1000)
  .option("--forward <port>", "serve the panel on 127.0.0.1:<port> (0: no forwarder)", int, 15000)
  .option("--file-sync [schedule]", "file replication: an rsync daemon per node; the master copies on this croner schedule (default every 5 minutes)")
  .option("--crypto", "knet crypto with a shared authkey (as in production)")
  .option("--standby <ids>", "nodes built but left out of the cluster, e.g. 4 or 4,5: machines for `corolistener install`")
  .action(async (o: { nodes: number; agents: boolean; mariadb: boolean; token: number; forward: number; fileSync?: string | boolean; crypto?: boolean; standby?: string }) => {
    const t0 = Date.now();
    const standby = o.standby ? o.standby.split(",").map((id) => int(id.trim())) : [];
    const lab = await Lab.up({ name: labName(), nodes: o.nodes, agents: o.agents, mariadb: o.mariadb, tokenMs: o.token, teardownOnExit: false, crypto: o.crypto, standby,
      fileSync: o.fileSync ? { schedule: typeof o.fileSync === "string" ? o.fileSync : "*/5 * * * *" } : undefined });
    console.log(`lab ${lab.name}: ${o.nodes} nodes quorate in ${Date.now() - t0} ms`);
    for (const n of lab.topo.nodes) console.log(`  ${n.name}  ${n.ctlAddr}  prio ${n.prio}  netns ${n.ns}`);
    console.log(`cluster IP ${lab.topo.clusterIp} (held by the master), test IP ${lab.topo.testIp}`);
    if (o.forward > 0 && o.agents) {
      lab.forwardPanel(o.forward);
      console.log(`panel: http://127.0.0.1:${o.forward}/  (forwarded to ${lab.topo.clusterIp}:1500 on the master)`);
      console.log(`first login: open it and use the one-time setup token the panel printed: grep setupToken ${lab.nodeDir(1).replace(/n1$/, "n*")}/log/agent.out`);
    }
    console.log(`try: labctl exec n1 -- corosync-quorumtool -s   |   labctl exec n1 -- ./corolistener -l   |   labctl down`);
  });

program.command("down").description("stop everything and delete the namespaces").action(() => {
  destroyLab(labName());
  console.log(`lab ${labName()} is down`);
});

program.command("status").description("nodes, links, processes and quorum").action(async () => {
  for (const s of await Lab.open(labName()).status()) {
    const q = s.quorum.error ? `corosync: ${s.quorum.error.split("\n")[0]}` : `quorate=${s.quorum.quorate} members=[${s.quorum.members}]`;
    console.log(`${s.node.padEnd(4)} ${s.addr.padEnd(15)} link=${s.link} storage=${s.storage} ${q} ${s.processes.join(" ")}`);
  }
});

program
  .command("exec <node> <cmd...>")
  .description("run a command inside a node (use -- before the command)")
  .action((node: string, cmd: string[]) => {
    const lab = Lab.open(labName());
    const id = lab.topo.nodes.find((n) => n.name === node || String(n.id) === node)?.id;
    if (!id) throw new Error(`no node ${node}`);
    const [c, ...args] = [...lab.enterArgs(id, process.cwd()), ...cmd];
    const r = spawnSync(c!, args, { stdio: "inherit" });
    process.exitCode = r.status ?? 1;
  });

program.command("cut <node>").option("--data", "also cut the data link (the test IP stops answering)").action(async (node: string, o: { data?: boolean }) => {
  await Lab.open(labName()).cut(node, o);
});
program.command("heal [node]").description("heal one node or the whole network").action(async (node?: string) => {
  await Lab.open(labName()).heal(node);
});
program
  .command("partition <groups...>")
  .description("split the control network, e.g. lab partition 1,2 3,4,5")
  .action(async (groups: string[]) => {
    await Lab.open(labName()).partition(groups.map(nodeList));
  });
for (const [verb, what] of [
  ["kill", "SIGKILL"],
  ["pause", "SIGSTOP"],
  ["resume", "SIGCONT"],
] as const) {
  program.command(`${verb} <node> <process>`).description(`${what} a node's process (corosync, agent, mariadb, panel, vm, all)`).action((node: string, proc: string) => {
    const pids = Lab.open(labName()).kill(Number(node.replace(/^n/, "")), parseProcessKind(proc), what);
    console.log(`${what} ${pids.join(" ")}`);
  });
}
program.command("start <node> <process>").description("start a node's process again").action(async (node: string, proc: string) => {
  const kind = parseProcessKind(proc);
  if (kind === "all") throw new Error("start one process at a time");
  console.log(await Lab.open(labName()).start(Number(node.replace(/^n/, "")), kind));
});
program.command("crash <node>").description("kill every process of a node and take its links down, like a power cut").action(async (node: string) => {
  await Lab.open(labName()).crash(node);
});
program.command("boot <node>").description("bring a crashed node back (links up, corosync and agent started)").action(async (node: string) => {
  await Lab.open(labName()).boot(node);
});
program.command("storage-cut <node>").description("make the shared storage unreachable on a node").action(async (node: string) => {
  await Lab.open(labName()).storageCut(node);
});
program.command("storage-heal <node>").action(async (node: string) => {
  await Lab.open(labName()).storageHeal(node);
});

program.parseAsync().catch((err: Error) => {
  console.error(`lab: ${err.message}`);
  process.exit(1);
});

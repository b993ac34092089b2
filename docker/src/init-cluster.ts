// `cluster-init` in compose.yaml: makes the evaluation cluster's corosync.conf (knet crypto on) and
// authkey once, in the shared /cluster volume; a second run keeps what is there.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { buildCorosyncConf, writeCorosyncConf } from "../../shared/src/index.ts";

const dir = process.argv[2] ?? "/cluster";
// NODES="1:10.89.0.11:30,2:10.89.0.12:20,3:10.89.0.13:10" (nodeid:address:prio)
const nodes = (process.env.NODES ?? "").split(",").filter(Boolean).map((spec) => {
  const [id, addr, prio] = spec.split(":");
  if (!id || !addr) throw new Error(`NODES entry "${spec}" is not nodeid:address[:prio]`);
  return { nodeid: Number(id), name: `n${id}`, ring0Addr: addr, prio: Number(prio ?? 0), replication: false };
});
if (nodes.length < 2) throw new Error("NODES must list at least two nodes (nodeid:address:prio,...)");
mkdirSync(dir, { recursive: true });
if (!existsSync(join(dir, "authkey"))) writeFileSync(join(dir, "authkey"), randomBytes(256), { mode: 0o400 });
if (!existsSync(join(dir, "corosync.conf"))) {
  const conf = buildCorosyncConf({ clusterName: process.env.CLUSTER_NAME ?? "eval", nodes, crypto: true, tokenMs: 1000, tokenCoefficientMs: 0 });
  writeFileSync(join(dir, "corosync.conf"), writeCorosyncConf(conf));
}
console.log(`cluster files ready in ${dir}`);

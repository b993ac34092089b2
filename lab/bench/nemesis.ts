// The long nemesis run (lab/src/nemesis): a lab with agents, MariaDB and a few HA VMs, a client
// writing users through the panel on the cluster IP, and --faults seeded faults; prints a summary
// (faults by kind, writes attempted / acknowledged / 503, lost acknowledged writes, stale reads,
// split-IP and double-VM samples, heal->writable median / p95 / max, nodes left diverged) and exits
// 1 when anything was violated. The client's history, report.json and (on violations, or with
// --keep-logs) every node's logs go to --out (default artifacts/nemesis/seed-N-<time>).
// Run as root, one lab at a time on a shared machine:
//   flock /tmp/ha-lab.lock node --import tsx lab/bench/nemesis.ts --seed 7 --faults 50 [--nodes 5] [--vms 3] [--keep-logs]
import { join } from "node:path";
import { runNemesis, formatSummary } from "../src/nemesis/index.ts";
import { REPO_ROOT } from "../src/index.ts";
import { argNumber, argText } from "./args.ts";

const seed = argNumber("seed", 1);
const faults = argNumber("faults", 50);
const nodes = argNumber("nodes", 5);
const vms = argNumber("vms", 3);
const out = argText("out", join(REPO_ROOT, "artifacts", "nemesis", `seed-${seed}-${new Date().toISOString().replace(/[:.]/g, "-")}`));
const keepLogs = process.argv.includes("--keep-logs") ? "always" : "on-failure";

if (![seed, faults, nodes, vms].every(Number.isInteger)) {
  console.error("usage: lab/bench/nemesis.ts --seed N --faults N [--nodes 5] [--vms 3] [--out DIR] [--keep-logs]");
  process.exit(2);
}

const report = await runNemesis({ seed, faults, nodes, vms, name: "nemb", artifactsDir: out, keepLogs });
console.log(formatSummary(report));
process.exit(report.violations.length ? 1 : 0);

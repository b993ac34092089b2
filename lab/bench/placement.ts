// Placement benchmark (pure, no lab; prints numbers, asserts nothing): placeVms() for 1,000 VMs on
// 16 nodes (the target: under 50 ms), and the admission check (16 node losses) on the same
// cluster. Restart priorities and RAM sizes vary; some nodes are reserve or in maintenance.
//   node --import tsx lab/bench/placement.ts [--vms 1000] [--nodes 16] [--runs 50]
import { performance } from "node:perf_hooks";
import { placeVms, type PlacementNode, type PlacementVm } from "../../agent/src/core/placement.ts";
import { checkAdmission, type AdmissionVm } from "../../agent/src/core/admission.ts";
import { argNumber as arg } from "./args.ts";

const vmCount = arg("vms", 1000);
const nodeCount = arg("nodes", 16);
const runs = arg("runs", 50);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const fmt = (xs: number[]) => `median ${pct(xs, 0.5).toFixed(2)} ms   p95 ${pct(xs, 0.95).toFixed(2)} ms   max ${Math.max(...xs).toFixed(2)} ms`;

// Deterministic pseudo-random sizes (no seed handling needed for a benchmark).
let x = 12345;
const rand = (n: number) => ((x = (x * 1103515245 + 12345) % 2 ** 31), x % n);

const nodes: PlacementNode[] = Array.from({ length: nodeCount }, (_, i) => ({
  nodeid: i + 1,
  ramMb: 256 * 1024,
  usedRamMb: 0,
  vmCount: 0,
  reserve: i === nodeCount - 1,
  maintenance: i === nodeCount - 2,
}));
const vms: PlacementVm[] = Array.from({ length: vmCount }, (_, i) => ({ id: `vm${i}`, ramMb: 512 * (1 + rand(8)), restartPriority: rand(5) }));

const place: number[] = [];
let placed = 0;
for (let r = 0; r < runs; r++) {
  const t0 = performance.now();
  const result = placeVms(nodes, vms);
  place.push(performance.now() - t0);
  placed = result.placements.length;
}
console.log(`placeVms: ${vmCount} VMs on ${nodeCount} nodes (1 reserve, 1 in maintenance), ${runs} runs: ${fmt(place)}; ${placed} placed; target < 50 ms`);

// Admission: the same VMs already spread over the nodes, every node's loss checked.
const spread = placeVms(nodes, vms);
const owner = new Map(spread.placements.map((p) => [p.vm, p.node]));
const admissionVms: AdmissionVm[] = vms.map((v) => ({ ...v, ha: true, storage: "shared", owner: owner.get(v.id) ?? null }));
const admissionNodes = nodes.map((n) => ({ nodeid: n.nodeid, ramMb: n.ramMb, reserve: n.reserve, maintenance: n.maintenance }));
const admission: number[] = [];
let ok = false;
for (let r = 0; r < Math.max(5, Math.floor(runs / 5)); r++) {
  const t0 = performance.now();
  ok = checkAdmission(admissionNodes, admissionVms).ok;
  admission.push(performance.now() - t0);
}
console.log(`checkAdmission: ${vmCount} VMs, ${nodeCount} node losses, ${admission.length} runs: ${fmt(admission)}; survives any one loss: ${ok}`);

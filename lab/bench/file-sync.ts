// File replication benchmark (prints numbers, asserts nothing): the master pushes a file set of
// --files files (--size bytes each) to every other node; then --cycles cycles with --changed of the
// files rewritten before each. Per cycle: rsync time per node (as nodereplication reports it), the
// whole cycle (nodes in parallel), and until each node's `current` flipped (CLI start included).
// Run: node --import tsx lab/bench/file-sync.ts [--nodes 3] [--files 10000] [--changed 0.01] [--size 4096] [--cycles 7]
import { mkdirSync, readlinkSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Lab, NODE_AGENT_CONFIG, hostFilesDir, sleep } from "../src/index.ts";
import { argNumber as arg } from "./args.ts";

const nodeCount = arg("nodes", 3);
const fileCount = arg("files", 10_000);
const changedShare = arg("changed", 0.01);
const fileSize = arg("size", 4096);
const cycles = arg("cycles", 7);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const line = (name: string, xs: number[]) => `  ${name.padEnd(34)} median ${pct(xs, 0.5)} ms   p95 ${pct(xs, 0.95)} ms   max ${Math.max(...xs)} ms   (n=${xs.length})`;

type CycleOut = { cycleMs: number; results: Array<{ nodeid: number; ok: boolean; durationMs: number; filesChanged: number; error: string | null }> };

async function main() {
  const lab = await Lab.up({ name: "frep", nodes: nodeCount, fileSync: {} });
  try {
    const source = join(hostFilesDir(lab.nodeDir(1)), "mgrfiles-source");
    const others = lab.topo.nodes.map((n) => n.id).filter((id) => id !== 1);
    const fileName = (i: number) => join(source, `d${String(i % 100).padStart(3, "0")}`, `f${i}.dat`);
    const content = (i: number, gen: number) => Buffer.alloc(fileSize, `${i}:${gen}:`);
    for (let d = 0; d < 100; d++) mkdirSync(join(source, `d${String(d).padStart(3, "0")}`), { recursive: true });
    for (let i = 0; i < fileCount; i++) writeFileSync(fileName(i), content(i, 0));
    const version = (id: number) => {
      const p = join(hostFilesDir(lab.nodeDir(id)), "mgrfiles", "current");
      return existsSync(p) ? readlinkSync(p) : "";
    };
    for (;;) {
      const r = await Promise.all(lab.topo.nodes.map((n) => lab.exec(n.id, ["ss", "-ltnH", "sport = :873"])));
      if (r.every((x) => x.stdout.includes(":873"))) break;
      await sleep(200);
    }

    /** One cycle via the CLI on n1; also times until every node's `current` flipped. */
    const cycle = async () => {
      const before = others.map(version);
      const t0 = Date.now();
      const visible = new Map<number, number>();
      const watch = (async () => {
        while (visible.size < others.length && Date.now() - t0 < 600_000) {
          // v-0 is the empty version the receiver makes before the very first copy: not the copy itself.
          others.forEach((id, k) => !visible.has(id) && ![before[k], "v-0"].includes(version(id)) && visible.set(id, Date.now() - t0));
          await sleep(5);
        }
      })();
      const r = await lab.exec(1, ["./nodereplication", "-c", "mgrfiles", "--config", NODE_AGENT_CONFIG, "--json", "--force", "--no-record"], { timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`cycle failed: ${r.stdout} ${r.stderr}`);
      await watch;
      return { out: JSON.parse(r.stdout) as CycleOut, visibleMs: Math.max(...visible.values()) };
    };

    console.log(`file replication: ${nodeCount} nodes (1 master -> ${others.length}), ${fileCount} files of ${fileSize} B, ${(changedShare * 100).toFixed(1)}% changed per cycle`);
    const first = await cycle();
    console.log(`first full copy: cycle ${first.out.cycleMs} ms; per node ${first.out.results.map((x) => `n${x.nodeid} ${x.durationMs} ms`).join(", ")}; visible everywhere after ${first.visibleMs} ms`);

    const perNode = new Map<number, number[]>(others.map((id) => [id, []]));
    const cycleMs: number[] = [];
    const visibleMs: number[] = [];
    const changedCounts: number[] = [];
    const noChange: number[] = [];
    for (let c = 1; c <= cycles; c++) {
      const changed = Math.round(fileCount * changedShare);
      for (let k = 0; k < changed; k++) {
        const i = (c * 7919 + k * 104_729) % fileCount; // spread over the directories, different every cycle
        writeFileSync(fileName(i), content(i, c));
      }
      const r = await cycle();
      cycleMs.push(r.out.cycleMs);
      visibleMs.push(r.visibleMs);
      for (const x of r.out.results) perNode.get(x.nodeid)!.push(x.durationMs);
      changedCounts.push(...r.out.results.map((x) => x.filesChanged));
    }
    for (let c = 0; c < 3; c++) noChange.push((await cycle()).out.cycleMs);

    console.log(`${cycles} cycles with ${Math.round(fileCount * changedShare)} files changed (rsync counted ${Math.min(...changedCounts)}-${Math.max(...changedCounts)} per node):`);
    for (const [id, xs] of perNode) console.log(line(`rsync to n${id}`, xs));
    console.log(line("cycle (all nodes in parallel)", cycleMs));
    console.log(line("until visible (incl. CLI start)", visibleMs));
    console.log(line("cycle with nothing changed", noChange));
    console.log(`  ratio first full copy / median 1% cycle: ${(first.out.cycleMs / pct(cycleMs, 0.5)).toFixed(1)}x`);
  } finally {
    await lab.down();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

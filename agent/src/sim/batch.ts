// Many schedules: a deterministic mix of seeds, cluster sizes and profiles, optionally spread
// over worker threads. Used by the simulator test and `cli.ts --runs`.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { simulate, type LeaseMode, type SimOptions } from './simulate.ts';

export interface BatchSpec {
  firstSeed: number;
  count: number;
  /** Fault-phase length in ticks. */
  steps: number;
  /** Every n-th schedule uses the product-default timeouts, the rest the fast profile. */
  defaultProfileEvery: number;
  /** Options applied to every schedule (sabotage, failback...). */
  base?: Partial<SimOptions>;
}

export interface BatchFailure {
  seed: number;
  nodes: number;
  invariant: string;
  message: string;
  command: string;
}

export interface BatchResult {
  schedules: number;
  events: number;
  /** Summed coverage counters of all schedules. */
  coverage: Record<string, number>;
  failures: BatchFailure[];
  wallMs: number;
}

/** Half the schedules run the default lease, a quarter the old short one, a quarter mixed (simulate.ts LeaseMode). */
const LEASE_MODES: readonly LeaseMode[] = ['transition', 'transition', 'short', 'mixed'];

/** The options of schedule `seed` in a batch: 3..7 nodes, profile and lease mode by seed. */
export function batchOptions(spec: BatchSpec, seed: number): SimOptions {
  const nodes = 3 + (seed % 5);
  const profile = seed % spec.defaultProfileEvery === 0 ? 'default' : 'fast';
  // By seed / 5, so every lease mode meets every cluster size and both profiles.
  const lease = LEASE_MODES[Math.floor(seed / 5) % LEASE_MODES.length]!;
  return { seed, nodes, steps: spec.steps, profile, lease, ...spec.base };
}

/** Run a contiguous slice of a batch in this thread. */
export function runSlice(spec: BatchSpec, from: number, to: number): Omit<BatchResult, 'wallMs'> {
  const failures: BatchFailure[] = [];
  const coverage: Record<string, number> = {};
  let events = 0;
  for (let seed = from; seed < to; seed++) {
    const opts = batchOptions(spec, seed);
    const r = simulate(opts);
    events += r.stats.events;
    addCounts(coverage, r.stats.coverage);
    const v = r.violations[0];
    if (v) failures.push({ seed, nodes: opts.nodes, invariant: v.invariant, message: v.message, command: r.command });
  }
  return { schedules: to - from, events, coverage, failures };
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** Run a batch over `threads` worker threads (default: all cores). */
export async function runBatch(spec: BatchSpec, threads = availableParallelism()): Promise<BatchResult> {
  const started = performance.now();
  const n = Math.max(1, Math.min(threads, spec.count));
  if (n === 1) return { ...runSlice(spec, spec.firstSeed, spec.firstSeed + spec.count), wallMs: performance.now() - started };
  const per = Math.ceil(spec.count / n);
  const slices: Array<Promise<Omit<BatchResult, 'wallMs'>>> = [];
  for (let i = 0; i < n; i++) {
    const from = spec.firstSeed + i * per;
    const to = Math.min(spec.firstSeed + spec.count, from + per);
    if (from >= to) break;
    slices.push(
      new Promise((resolve, reject) => {
        const w = startWorker({ spec, from, to });
        w.once('message', resolve);
        w.once('error', reject);
        w.once('exit', (code) => {
          if (code !== 0) reject(new Error(`simulator worker exited with ${code}`));
        });
      }),
    );
  }
  const parts = await Promise.all(slices);
  const coverage: Record<string, number> = {};
  for (const p of parts) addCounts(coverage, p.coverage);
  return {
    schedules: parts.reduce((a, p) => a + p.schedules, 0),
    events: parts.reduce((a, p) => a + p.events, 0),
    coverage,
    failures: parts.flatMap((p) => p.failures).sort((a, b) => a.seed - b.seed),
    wallMs: performance.now() - started,
  };
}

/**
 * Workers do not inherit `--import tsx` in Node 20: a tiny ESM bootstrap registers tsx's loader
 * in the worker, then imports the TypeScript entry.
 */
function startWorker(workerData: unknown): Worker {
  const entry = new URL('./batch-worker.ts', import.meta.url).href;
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `const { register } = await import(${JSON.stringify(tsxApi)}); register(); await import(${JSON.stringify(entry)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), { workerData });
}

// Command line for the simulator.
//   node --import tsx agent/src/sim/cli.ts --seed 1234 --nodes 5 --steps 400 --trace
//   node --import tsx agent/src/sim/cli.ts --seed 1 --runs 2000            (seeds 1..2000, 3-7 nodes)

import type { Sabotage } from '../core/node-core.ts';
import { simulate, type Profile, type SimOptions } from './simulate.ts';

function parse(argv: string[]): { opts: SimOptions; runs: number; fixedNodes: boolean } {
  const opts: SimOptions = { seed: 1, nodes: 5, steps: 300 };
  let runs = 1;
  let fixedNodes = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--seed':
        opts.seed = Number(val());
        break;
      case '--nodes':
        opts.nodes = Number(val());
        fixedNodes = true;
        break;
      case '--steps':
        opts.steps = Number(val());
        break;
      case '--vms':
        opts.vms = Number(val());
        break;
      case '--profile':
        opts.profile = val() as Profile;
        break;
      case '--failback':
        opts.failback = true;
        break;
      case '--no-failback':
        opts.failback = false;
        break;
      case '--sabotage':
        opts.sabotage = val() as Sabotage;
        break;
      case '--no-faults':
        opts.faults = 'none';
        break;
      case '--trace':
        opts.trace = true;
        break;
      case '--runs':
        runs = Number(val());
        break;
      case '--help':
        console.log('usage: cli.ts [--seed N] [--nodes N] [--steps N] [--vms N] [--profile default|fast] [--failback|--no-failback] [--sabotage KIND] [--no-faults] [--trace] [--runs N]');
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  return { opts, runs, fixedNodes };
}

function main(): void {
  const { opts, runs, fixedNodes } = parse(process.argv.slice(2));
  if (runs === 1) {
    const r = simulate(opts);
    if (opts.trace) for (const line of r.trace) console.log(line);
    console.log(`${r.ok ? 'OK' : 'FAIL'} seed ${opts.seed}: ${r.stats.events} steps, ${r.stats.simMs} ms simulated, ${r.stats.faults} faults, ${r.stats.resets} resets`);
    for (const v of r.violations) console.log(`  ${v.invariant} at ${v.at} ms: ${v.message}`);
    if (!r.ok) console.log(`  replay: ${r.command}`);
    process.exitCode = r.ok ? 0 : 1;
    return;
  }
  const started = performance.now();
  let failed = 0;
  let events = 0;
  for (let k = 0; k < runs; k++) {
    const seed = opts.seed + k;
    const nodes = fixedNodes ? opts.nodes : 3 + (seed % 5);
    const r = simulate({ ...opts, seed, nodes, trace: false });
    events += r.stats.events;
    if (!r.ok) {
      failed++;
      console.log(`FAIL seed ${seed}: ${r.violations.map((v) => `${v.invariant}: ${v.message}`).join('; ')}\n  replay: ${r.command}`);
    }
  }
  const secs = (performance.now() - started) / 1000;
  console.log(`${runs - failed}/${runs} schedules ok in ${secs.toFixed(1)} s (${(runs / secs).toFixed(0)} schedules/s, ${(events / secs / 1000).toFixed(0)}k steps/s)`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main();

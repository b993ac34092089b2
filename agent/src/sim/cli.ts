// Command line for the simulator.
//   node --import tsx agent/src/sim/cli.ts --seed 1234 --nodes 5 --steps 400 --trace
//   node --import tsx agent/src/sim/cli.ts --seed 1 --runs 2000            (seeds 1..2000, 3-7 nodes, all cores)

import type { SimSabotage } from './model.ts';
import { runBatch } from './batch.ts';
import { DEFAULT_FAULT_MIX, type FaultMix } from './faults.ts';
import { simulate, type LeaseMode, type Profile, type SimOptions } from './simulate.ts';

interface CliArgs {
  opts: SimOptions;
  runs: number;
  threads: number | undefined;
  fixed: Partial<SimOptions>;
}

function parse(argv: string[]): CliArgs {
  const opts: SimOptions = { seed: 1, nodes: 5, steps: 300 };
  const fixed: Partial<SimOptions> = {};
  let runs = 1;
  let threads: number | undefined;
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
        opts.nodes = fixed.nodes = Number(val());
        break;
      case '--steps':
        opts.steps = Number(val());
        break;
      case '--vms':
        opts.vms = fixed.vms = Number(val());
        break;
      case '--profile':
        opts.profile = fixed.profile = val() as Profile;
        break;
      case '--failback':
        opts.failback = fixed.failback = true;
        break;
      case '--no-failback':
        opts.failback = fixed.failback = false;
        break;
      case '--sabotage':
        opts.sabotage = fixed.sabotage = val() as SimSabotage;
        break;
      case '--lease':
        opts.lease = fixed.lease = val() as LeaseMode;
        break;
      case '--no-faults':
        opts.faults = fixed.faults = 'none';
        break;
      case '--faults': {
        // Weights over the default mix, e.g. --faults partition=12,dbKill=4
        const mix: Partial<FaultMix> = {};
        for (const kv of val().split(',')) {
          const [k, v] = kv.split('=');
          if (k === undefined || !(k in DEFAULT_FAULT_MIX) || !Number.isFinite(Number(v))) throw new Error(`--faults: bad weight "${kv}" (families: ${Object.keys(DEFAULT_FAULT_MIX).join(', ')})`);
          mix[k as keyof FaultMix] = Number(v);
        }
        opts.faults = fixed.faults = mix;
        break;
      }
      case '--trace':
        opts.trace = true;
        break;
      case '--runs':
        runs = Number(val());
        break;
      case '--threads':
        threads = Number(val());
        break;
      case '--help':
        console.log(
          'usage: cli.ts [--seed N] [--nodes N] [--steps N] [--vms N] [--profile default|fast] [--failback|--no-failback]\n' +
            '              [--lease transition|short|mixed] [--sabotage KIND] [--no-faults | --faults family=weight,...] [--trace]\n' +
            '              [--runs N [--threads N]]\n' +
            '  sabotage (must fail): no-lease, no-ip-wait, no-fence-wait, keep-vms-on-quorum-loss, no-start-handshake (core);\n' +
            '                        one-ack, no-majority, clone-from-writable-only (database model)',
        );
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  return { opts, runs, threads, fixed };
}

async function main(): Promise<void> {
  const { opts, runs, threads, fixed } = parse(process.argv.slice(2));
  if (runs === 1) {
    const r = simulate(opts);
    if (opts.trace) for (const line of r.trace) console.log(line);
    console.log(`${r.ok ? 'OK' : 'FAIL'} seed ${opts.seed}: ${r.stats.events} steps, ${r.stats.simMs} ms simulated, ${r.stats.faults} faults, ${r.stats.resets} resets`);
    for (const v of r.violations) console.log(`  ${v.invariant} at ${v.at} ms: ${v.message}`);
    if (!r.ok) console.log(`  replay: ${r.command}`);
    process.exitCode = r.ok ? 0 : 1;
    return;
  }
  // Many seeds: 3-7 nodes and both timing profiles by seed, unless fixed on the command line.
  const r = await runBatch({ firstSeed: opts.seed, count: runs, steps: opts.steps, defaultProfileEvery: 5, base: fixed }, threads);
  for (const f of r.failures) console.log(`FAIL seed ${f.seed} (${f.nodes} nodes) ${f.invariant}: ${f.message}\n  replay: ${f.command}`);
  const secs = r.wallMs / 1000;
  console.log(`coverage: ${Object.entries(r.coverage).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`${r.schedules - r.failures.length}/${r.schedules} schedules ok in ${secs.toFixed(1)} s (${(r.schedules / secs).toFixed(0)} schedules/s, ${(r.events / secs / 1000).toFixed(0)}k steps/s)`);
  process.exitCode = r.failures.length === 0 ? 0 : 1;
}

await main();

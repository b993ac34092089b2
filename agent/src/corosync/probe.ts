// Diagnostic CLI: prints ClusterEvents as JSON lines and takes JSON-line commands on stdin.
//   node --import tsx agent/src/corosync/probe.ts [--group NAME | --no-group]
// Commands: {"cmd":"send","data":"x"} {"cmd":"sendMany","count":N,"prefix":"m"} {"cmd":"snapshot"}
//           {"cmd":"flood","count":N,"size":S} {"cmd":"read","timeoutMs":N} {"cmd":"cpu"} {"cmd":"stop"};
//           "id" is echoed back. Closing stdin also stops it. Used by the integration test.
import { createInterface } from 'node:readline';
import { CorosyncClient, readClusterState } from './index.ts';

const args = process.argv.slice(2);
const groupIdx = args.indexOf('--group');
const cpgGroup = args.includes('--no-group') ? null : groupIdx >= 0 ? (args[groupIdx + 1] ?? 'corolistener') : 'corolistener';

const toJson = (v: unknown) =>
  JSON.stringify(v, (_k, x) => {
    if (typeof x === 'bigint') return x.toString();
    if (x && typeof x === 'object' && (x as { type?: string }).type === 'Buffer') return Buffer.from((x as { data: number[] }).data).toString('utf8');
    return x;
  });
const out = (v: Record<string, unknown>): void => void process.stdout.write(toJson({ t: Date.now(), ...v }) + '\n');

let flowControlRetries = 0;
const logger = {
  info: (o: unknown, msg?: string) => out({ type: 'log', level: 'info', msg, o }),
  warn: (o: unknown, msg?: string) => out({ type: 'log', level: 'warn', msg, o }),
  debug: (_o: unknown, msg?: string) => void (msg?.startsWith('cpg flow control') && flowControlRetries++),
};
const client = new CorosyncClient({ cpgGroup, logger });

// 'flood' messages are counted instead of printed (they are many and large).
const FLOOD = Buffer.from('flood:');
const flood = { received: 0, outOfOrder: 0 };
client.on('event', (ev) => {
  if (ev.type === 'cpg-message' && ev.data.subarray(0, FLOOD.length).equals(FLOOD)) {
    if (ev.data.readUInt32LE(FLOOD.length) !== flood.received) flood.outOfOrder++;
    flood.received++;
    return;
  }
  out({ ...ev });
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await client.stop();
  out({ type: 'stopped' });
  process.exitCode = 0;
  process.stdin.destroy();
}

type Command = { cmd: string; id?: string; data?: string; count?: number; size?: number; prefix?: string; timeoutMs?: number };

async function command(c: Command): Promise<void> {
  switch (c.cmd) {
    case 'send':
      await client.send(c.data ?? '');
      return out({ type: 'sent', id: c.id });
    case 'sendMany': {
      const sends = Array.from({ length: c.count ?? 1 }, (_, i) => client.send(`${c.prefix ?? 'm'}${i}`));
      await Promise.all(sends);
      return out({ type: 'sent', id: c.id, count: sends.length });
    }
    case 'flood': {
      // count messages of `size` bytes: "flood:" + u32 sequence number + padding
      Object.assign(flood, { received: 0, outOfOrder: 0 });
      flowControlRetries = 0;
      const count = c.count ?? 1000;
      const size = Math.max(FLOOD.length + 4, c.size ?? 8000);
      const sends = Array.from({ length: count }, (_, i) => {
        const msg = Buffer.alloc(size, 0x2e);
        FLOOD.copy(msg);
        msg.writeUInt32LE(i, FLOOD.length);
        return client.send(msg);
      });
      await Promise.all(sends);
      await client.waitFor(() => flood.received >= count, 30_000);
      return out({ type: 'flood', id: c.id, sent: count, ...flood, flowControlRetries });
    }
    case 'snapshot':
      return out({ type: 'snapshot', id: c.id, snapshot: client.snapshot() });
    case 'read': // one-shot readClusterState, independent of the running client
      try {
        return out({ type: 'read', id: c.id, snapshot: await readClusterState({ timeoutMs: c.timeoutMs ?? 5000 }) });
      } catch (err) {
        return out({ type: 'read', id: c.id, error: (err as Error).message });
      }
    case 'cpu':
      return out({ type: 'cpu', id: c.id, usage: process.cpuUsage() });
    case 'stop':
      return stop();
    default:
      return out({ type: 'error', id: c.id, error: `unknown command ${c.cmd}` });
  }
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (!line.trim()) return;
    let c: Command;
    try {
      c = JSON.parse(line) as Command;
    } catch {
      return out({ type: 'error', error: `bad command: ${line}` });
    }
    command(c).catch((err: Error) => out({ type: 'error', id: c.id, error: err.message }));
  })
  .on('close', () => void stop());

client.start().then(
  () => out({ type: 'started' }),
  (err: Error) => out({ type: 'error', error: err.message }),
);

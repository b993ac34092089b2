// Integration test of the koffi corosync bindings against a private single-node corosync.
// corosync runs in its own network + mount namespace (private /run, /dev/shm, /etc/corosync);
// the code under test runs in a child (agent/src/corosync/probe.ts) entered into those
// namespaces with nsenter, talking JSON lines over stdio. Needs root, ip, unshare, corosync.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const PROBE = join(REPO, 'agent/src/corosync/probe.ts');
const T = 30_000; // per-test timeout

type Line = { t: number; type: string; [k: string]: any };

function corosyncConf(configVersion: number, prio: number): string {
  return `totem {
  version: 2
  cluster_name: t
  config_version: ${configVersion}
  transport: knet
  token: 1000
  crypto_cipher: none
  crypto_hash: none
}
nodelist {
  node {
    nodeid: 1
    name: n1
    ring0_addr: 127.0.0.1
    prio: ${prio}
    replication: on
  }
}
quorum {
  provider: corosync_votequorum
}
logging {
  to_stderr: no
  to_syslog: no
  to_logfile: yes
  logfile: /var/log/corosync/corosync.log
}
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Private corosync in its own namespaces; everything it creates is removed by cleanup(). */
class Lab {
  readonly ns = `cb-${randomBytes(4).toString('hex')}`;
  readonly dir = mkdtempSync(join(tmpdir(), 'cb-bindings-'));
  corosync: ChildProcess | undefined;
  private nsCreated = false;

  setup(): void {
    for (const d of ['etc', 'lib', 'log']) mkdirSync(join(this.dir, d));
    this.writeConf(3, 100);
    execFileSync('ip', ['netns', 'add', this.ns]);
    this.nsCreated = true;
    execFileSync('ip', ['-n', this.ns, 'link', 'set', 'lo', 'up']);
  }

  writeConf(configVersion: number, prio: number): void {
    writeFileSync(join(this.dir, 'etc/corosync.conf'), corosyncConf(configVersion, prio));
  }

  /** First start: new mount namespace. `ip netns exec`, unshare and sh all exec, so pid = corosync. */
  startFresh(): void {
    const d = this.dir;
    const script =
      'mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /dev/shm && ' +
      `mount --bind ${d}/etc /etc/corosync && mount --bind ${d}/lib /var/lib/corosync && ` +
      `mount --bind ${d}/log /var/log/corosync && exec corosync -f`;
    this.corosync = spawn('ip', ['netns', 'exec', this.ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script], {
      stdio: 'ignore',
    });
  }

  /** Restart inside the namespaces a surviving process (the probe) is still in. */
  restartVia(pid: number): void {
    this.corosync = spawn('nsenter', ['-t', String(pid), '-m', '-n', 'corosync', '-f'], { stdio: 'ignore' });
  }

  /** Runs a corosync tool inside the lab's namespaces. */
  tool(args: string[]): { status: number | null; stdout: string } {
    const r = spawnSync('nsenter', ['-t', String(this.corosync!.pid), '-m', '-n', ...args], { encoding: 'utf8', timeout: 5000 });
    return { status: r.status, stdout: r.stdout };
  }

  async waitReady(timeoutMs = 15_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (!alive(this.corosync?.pid)) throw new Error('corosync exited during startup');
      if (this.tool(['corosync-quorumtool', '-s']).status === 0) return;
      await sleep(100);
    }
    throw new Error('corosync did not become quorate');
  }

  async killCorosync(): Promise<void> {
    const p = this.corosync;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  async cleanup(): Promise<void> {
    await this.killCorosync().catch(() => {});
    this.cleanupSync();
  }

  /** Synchronous variant for process 'exit' / signal handlers. Idempotent. */
  cleanupSync(): void {
    const p = this.corosync;
    if (p?.pid && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    if (this.nsCreated) spawnSync('ip', ['netns', 'del', this.ns]);
    this.nsCreated = false;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The probe child: collects its JSON lines and lets tests wait for them. */
class Probe {
  readonly proc: ChildProcess;
  readonly lines: Line[] = [];
  private readonly waiters = new Set<() => void>();
  stderr = '';

  constructor(corosyncPid: number, args: string[] = []) {
    this.proc = spawn('nsenter', ['-t', String(corosyncPid), '-m', '-n', `--wd=${REPO}`, process.execPath, '--import', 'tsx', PROBE, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      try {
        this.lines.push(JSON.parse(l) as Line);
      } catch {
        this.stderr += `[stdout] ${l}\n`;
      }
      for (const w of this.waiters) w();
    });
    this.proc.stderr!.on('data', (d) => (this.stderr += String(d)));
    this.proc.on('exit', () => {
      for (const w of this.waiters) w();
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  send(cmd: Record<string, unknown>): void {
    this.proc.stdin!.write(JSON.stringify(cmd) + '\n');
  }

  /** Resolves with the first line at index >= from matching pred. */
  waitLine(pred: (l: Line) => boolean, timeoutMs: number, from = 0): Promise<Line> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.lines.slice(from).find(pred);
        if (hit) finish(null, hit);
        else if (this.proc.exitCode !== null) finish(new Error(`probe exited (${this.proc.exitCode}): ${this.stderr}`));
      };
      const finish = (err: Error | null, line?: Line) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (err) reject(err);
        else resolve(line!);
      };
      const timer = setTimeout(() => {
        const tail = this.lines.slice(-5).map((l) => JSON.stringify(l).slice(0, 300));
        finish(new Error(`timed out waiting for probe line; last lines:\n${tail.join('\n')}\nstderr: ${this.stderr}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  async request(cmd: Record<string, unknown>, timeoutMs = 10_000): Promise<Line> {
    const id = randomBytes(4).toString('hex');
    const from = this.lines.length;
    this.send({ ...cmd, id });
    return this.waitLine((l) => l.id === id, timeoutMs, from);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

const prerequisites = (() => {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  for (const bin of ['corosync', 'ip', 'unshare', 'nsenter']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} not installed`;
  }
  return null;
})();

describe('corosync bindings on a single-node corosync', { skip: prerequisites ?? false }, () => {
  const lab = new Lab();
  let probe: Probe;
  let late: Probe | undefined; // started while corosync is down
  let mark = 0; // index of the first probe line belonging to the current test

  // Also clean up if this test process is interrupted (hooks don't run then).
  const onSignal = (sig: NodeJS.Signals) => {
    probe?.kill();
    late?.kill();
    lab.cleanupSync();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  const onExit = () => lab.cleanupSync();

  before(async () => {
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal).once('exit', onExit);
    try {
      lab.setup();
      lab.startFresh();
      await lab.waitReady();
      probe = new Probe(lab.corosync!.pid!);
    } catch (err) {
      await lab.cleanup();
      throw err;
    }
  });

  after(async () => {
    probe?.kill();
    late?.kill();
    await lab.cleanup();
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal).off('exit', onExit);
  });

  test('connects and reports quorum, votequorum and config', { timeout: T }, async () => {
    const connected = await probe.waitLine((l) => l.type === 'connected', 15_000);
    assert.equal(connected.localNodeId, 1);
    await probe.waitLine((l) => l.type === 'started', 5_000);
    const quorum = await probe.waitLine((l) => l.type === 'quorum', 5_000);
    assert.equal(quorum.quorate, true);
    assert.deepEqual(quorum.members, [1]);
    assert.match(quorum.ringSeq, /^\d+$/);

    const vq = (await probe.waitLine((l) => l.type === 'votequorum', 5_000)).info;
    assert.equal(vq.nodeId, 1);
    assert.equal(vq.expectedVotes, 1);
    assert.equal(vq.highestExpected, 1);
    assert.equal(vq.totalVotes, 1);
    assert.equal(vq.quorum, 1);
    assert.equal(vq.quorate, true);
    assert.ok(vq.flags.includes('QUORATE'));

    const cfg = await probe.waitLine((l) => l.type === 'config', 5_000);
    assert.equal(cfg.configVersion, '3');
    assert.equal(cfg.clusterName, 't');
    assert.equal(cfg.tokenMs, 1000);
    assert.equal(cfg.nodes.length, 1);
    const [n1] = cfg.nodes;
    assert.deepEqual([n1.nodeid, n1.name, n1.ring0Addr, n1.prio, n1.replication], [1, 'n1', '127.0.0.1', 100, true]);
    assert.equal(n1.raw.prio, '100');

    const { snapshot } = await probe.request({ cmd: 'snapshot' });
    assert.equal(snapshot.connected, true);
    assert.equal(snapshot.quorate, true);
    assert.deepEqual(snapshot.members, [1]);
    assert.equal(snapshot.configVersion, '3');
  });

  test('cpg: 100 AGREED messages arrive in order from our own nodeid', { timeout: T }, async () => {
    const membership = await probe.waitLine((l) => l.type === 'cpg-membership' && l.group === 'corolistener', 10_000);
    assert.deepEqual(membership.members, [{ nodeid: 1, pid: probe.pid }]);
    mark = probe.lines.length;
    const sent = await probe.request({ cmd: 'sendMany', count: 100, prefix: 'msg-' });
    assert.equal(sent.count, 100);
    await probe.waitLine((l) => l.type === 'cpg-message' && l.data === 'msg-99', 10_000, mark);
    const msgs = probe.lines.slice(mark).filter((l) => l.type === 'cpg-message');
    assert.deepEqual(
      msgs.map((m) => m.data),
      Array.from({ length: 100 }, (_, i) => `msg-${i}`),
    );
    for (const m of msgs) assert.deepEqual([m.group, m.nodeid, m.pid], ['corolistener', 1, probe.pid]);
  });

  test('cpg: a 5000 x 8 KiB burst survives flow control, in order', { timeout: T }, async (t) => {
    const r = await probe.request({ cmd: 'flood', count: 5000, size: 8192 }, 25_000);
    assert.equal(r.type, 'flood', JSON.stringify(r));
    assert.deepEqual([r.received, r.outOfOrder], [5000, 0]);
    t.diagnostic(`CS_ERR_TRY_AGAIN retries during burst: ${r.flowControlRetries}`);
  });

  test('config reload emits a config event', { timeout: T }, async () => {
    mark = probe.lines.length;
    lab.writeConf(4, 150);
    assert.equal(lab.tool(['corosync-cfgtool', '-R']).status, 0);
    const cfg = await probe.waitLine((l) => l.type === 'config' && l.configVersion === '4', 10_000, mark);
    assert.equal(cfg.nodes[0].prio, 150);
  });

  test('idle: < 50 ms CPU over 5 s', { timeout: T }, async (t) => {
    await sleep(500); // let the previous test's traffic settle
    const a = (await probe.request({ cmd: 'cpu' })).usage;
    await sleep(5000);
    const b = (await probe.request({ cmd: 'cpu' })).usage;
    const usedMs = (b.user - a.user + b.system - a.system) / 1000;
    t.diagnostic(`idle CPU over 5 s: ${usedMs.toFixed(2)} ms`);
    assert.ok(usedMs < 50, `idle CPU ${usedMs} ms`);
  });

  test('corosync killed: disconnected event, probe stays alive, readClusterState fails clearly', { timeout: T }, async () => {
    mark = probe.lines.length;
    await lab.killCorosync();
    const disc = await probe.waitLine((l) => l.type === 'disconnected', 10_000, mark);
    assert.match(disc.reason, /closed|failed/);
    const { snapshot } = await probe.request({ cmd: 'snapshot' });
    assert.equal(snapshot.connected, false);
    assert.equal(snapshot.quorate, false);
    const sendErr = await probe.request({ cmd: 'send', data: 'x' });
    assert.equal(sendErr.type, 'error');
    assert.match(sendErr.error, /not connected/);
    const read = await probe.request({ cmd: 'read', timeoutMs: 700 });
    assert.equal(
      read.error,
      'cannot connect to corosync: is corosync running on this node? (CS_ERR_LIBRARY)',
    );
    assert.ok(alive(probe.pid) && probe.proc.exitCode === null);

    // A client started now keeps retrying in the background instead of failing.
    late = new Probe(probe.pid, ['--no-group']);
    await sleep(1000);
    assert.equal(late.lines.find((l) => l.type === 'started' || l.type === 'connected'), undefined);
    assert.equal(late.proc.exitCode, null);
  });

  test('corosync restarted: reconnects and re-emits state; cpg works again', { timeout: T }, async () => {
    mark = probe.lines.length;
    lab.restartVia(probe.pid);
    await lab.waitReady();
    const conn = await probe.waitLine((l) => l.type === 'connected', 15_000, mark);
    assert.equal(conn.localNodeId, 1);
    const quorum = await probe.waitLine((l) => l.type === 'quorum', 5_000, mark);
    assert.deepEqual([quorum.quorate, quorum.members], [true, [1]]);
    await probe.waitLine((l) => l.type === 'votequorum' && l.info.quorum === 1, 5_000, mark);
    const cfg = await probe.waitLine((l) => l.type === 'config', 5_000, mark);
    assert.equal(cfg.configVersion, '4');
    await probe.waitLine((l) => l.type === 'cpg-membership', 10_000, mark);
    const from = probe.lines.length;
    await probe.request({ cmd: 'send', data: 'after-restart' });
    await probe.waitLine((l) => l.type === 'cpg-message' && l.data === 'after-restart', 5_000, from);

    const read = await probe.request({ cmd: 'read', timeoutMs: 5000 });
    assert.equal(read.error, undefined);
    assert.equal(read.snapshot.quorate, true);
    assert.deepEqual(read.snapshot.members, [1]);
    assert.equal(read.snapshot.votequorum.expectedVotes, 1);
    assert.equal(read.snapshot.nodes[0].prio, 150);

    await late!.waitLine((l) => l.type === 'started', 10_000);
    assert.equal((await late!.request({ cmd: 'snapshot' })).snapshot.cpgMembers.length, 0);
    const lateExit = new Promise((r) => late!.proc.once('exit', r));
    late!.send({ cmd: 'stop' });
    assert.equal(await lateExit, 0);
  });

  test('stop: leaves, finalizes and lets the process exit', { timeout: T }, async () => {
    const exited = new Promise<number | null>((r) => probe.proc.once('exit', (code) => r(code)));
    probe.send({ cmd: 'stop' });
    await probe.waitLine((l) => l.type === 'stopped', 10_000);
    assert.equal(await exited, 0);
    assert.match(lab.tool(['corosync-cpgtool']).stdout, /^(?![\s\S]*corolistener)/);
  });
});

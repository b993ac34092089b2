// Maintenance drain: the master asks the node in maintenance to stop one VM (`drain`), the node
// confirms (`drained`, ordered), the master assigns it elsewhere; one VM at a time, never back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateCpgMessage } from '../../../src/core/messages.ts';
import type { NodeConfig, VmSpec } from '../../../src/core/types.ts';
import { Harness } from './harness.ts';

const NODES: NodeConfig[] = [
  { nodeid: 1, prio: 100, addr: '10.0.0.1', ramMb: 16384 },
  { nodeid: 2, prio: 50, addr: '10.0.0.2', ramMb: 16384 },
  { nodeid: 3, prio: 40, addr: '10.0.0.3', ramMb: 16384 },
];
const VMS: VmSpec[] = [
  { id: 'a', ramMb: 1024, ha: true, storage: 'shared', restartPriority: 1 },
  { id: 'b', ramMb: 1024, ha: true, storage: 'shared', restartPriority: 5 },
  { id: 'c', ramMb: 1024, ha: false, storage: 'shared', restartPriority: 0 },
  { id: 'disk', ramMb: 1024, ha: false, storage: 'local', restartPriority: 0 },
];

function converged(nodes = NODES): Harness {
  const h = new Harness({ nodes, vms: VMS, owners: { a: 3, b: 3, c: 3, disk: 3 } });
  h.start();
  h.run(3000);
  assert.deepEqual(h.running(), { 1: [], 2: [], 3: ['a', 'b', 'c', 'disk'] });
  return h;
}

/** What an admin's `corolistener maintenance 3 on` ends in: a config with n3 in maintenance on every node. */
function maintenance(h: Harness, node: number, on: boolean, nodes = NODES): void {
  const next = nodes.map((n) => (n.nodeid === node ? { ...n, maintenance: on } : n));
  for (const id of h.cores.keys()) h.deliver(id, { type: 'config', version: on ? 2 : 3, nodes: next });
}

/** VM start/stop actions in time order, as "n3 stop a". */
const vmOps = (h: Harness, since: number) =>
  h.actions.filter((l) => l.at >= since && (l.action.type === 'StartVm' || l.action.type === 'StopVm')).map((l) => `n${l.node} ${l.action.type === 'StartVm' ? 'start' : 'stop'} ${(l.action as { vm: string }).vm}`);

describe('maintenance drain', () => {
  it('moves every shared-storage VM off the node, highest priority first, one at a time; local disks stay', () => {
    const h = converged();
    const t0 = h.now;
    maintenance(h, 3, true);
    h.run(5000);
    assert.deepEqual(h.running()[3], ['disk']);
    const elsewhere = [...h.running()[1]!, ...h.running()[2]!].sort();
    assert.deepEqual(elsewhere, ['a', 'b', 'c'], 'HA and non-HA shared VMs are drained');
    // Each VM stops on n3 before it starts elsewhere, and the next stop waits for that start.
    const ops = vmOps(h, t0).map((o) => o.replace(/^n[12] start/, 'start'));
    assert.deepEqual(ops, ['n3 stop b', 'start b', 'n3 stop a', 'start a', 'n3 stop c', 'start c']);
    assert.ok(h.decisions.some((d) => d.node === 1 && /disk stays on n3 in maintenance: its disk is local/.test(d.reason)));
    for (const vm of ['a', 'b', 'c']) assert.equal(h.metadata.get(vm)!.epoch, 2, `${vm} has a new ownership epoch`);
  });

  it('never places anything on a node in maintenance; off again, it takes VMs', () => {
    const h = converged();
    maintenance(h, 3, true);
    h.run(5000);
    // n2 fails: its VMs go to n1 only.
    const onN2 = h.running()[2]!;
    assert.ok(onN2.length > 0);
    h.crash(2);
    h.run(15_000);
    assert.deepEqual(h.running()[3], ['disk']);
    for (const vm of onN2.filter((v) => VMS.find((s) => s.id === v)!.ha)) assert.ok(h.running()[1]!.includes(vm), `${vm} recovered on n1`);
    maintenance(h, 3, false);
    h.run(3000);
    assert.deepEqual(h.running()[3], ['disk'], 'no failback of drained VMs: they stay where they run');
  });

  it('a VM that fits nowhere else is not drained (stays running, with a reason)', () => {
    const tight = NODES.map((n) => ({ ...n, ramMb: n.nodeid === 3 ? 16384 : 512 }));
    const h = converged(tight);
    maintenance(h, 3, true, tight);
    h.run(5000);
    assert.deepEqual(h.running()[3], ['a', 'b', 'c', 'disk']);
    assert.equal(h.actionsOf(3, 'StopVm').length, 0);
    assert.ok(h.decisions.some((d) => d.node === 1 && /cannot drain b off n3: b stays down: needs 1024 MB, most free is 512 MB/.test(d.reason)));
  });

  it('a local-disk VM of a failed node is shown unrecoverable with the reason (HA flag or not)', () => {
    const h = converged();
    h.crash(3);
    h.run(15_000);
    const note = h.core(1).view().vms.find((v) => v.vm === 'disk')!.note;
    assert.equal(note, 'disk unrecoverable: its disk is local to failed n3');
    assert.ok(!Object.values(h.running()).flat().includes('disk'));
    assert.equal(h.core(1).view().vms.find((v) => v.vm === 'c')!.note, 'c stays down with n3: not HA-enabled');
  });

  it('a membership change mid-drain: the stopped VM is drained again, not restarted on the drained node', () => {
    // n3 stops b for its drain, but its `drained` is lost in a membership change (an agent restart
    // on n2): every node forgets the drain, and the master starts it over.
    let loseDrained = true;
    const h = new Harness({
      nodes: NODES,
      vms: VMS,
      owners: { a: 3, b: 3, c: 3, disk: 3 },
      wire: (from, msg) => (loseDrained && from === 3 && msg.kind === 'drained' ? { ...msg, kind: 'lost' } : msg),
    });
    h.start();
    h.run(3000);
    const t0 = h.now;
    maintenance(h, 3, true);
    for (let i = 0; i < 50 && !vmOps(h, t0).includes('n3 stop b'); i++) h.run(100);
    h.run(500);
    assert.ok(!Object.values(h.running()).flat().includes('b'), 'b is stopped on n3 and its confirmation was lost');
    loseDrained = false;
    h.crashAgent(2);
    h.run(300);
    h.startAgent(2);
    h.run(8000);
    const ops = vmOps(h, t0);
    assert.ok(!ops.includes('n3 start b'), `n3 kept b stopped: ${ops.join(', ')}`);
    assert.ok(h.running()[1]!.includes('b') || h.running()[2]!.includes('b'), 'b runs elsewhere');
    // n3 did announce a start of b once the drain was forgotten, but the master's new drain came
    // within the start handshake, so the start was abandoned before any StartVm.
    assert.ok(h.decisions.some((d) => d.node === 3 && d.reason === 'start of b abandoned: it is being drained off n3'));
  });

  it('drain and drained are validated like every message', () => {
    assert.deepEqual(validateCpgMessage({ v: 1, kind: 'drain', term: 2, vm: 'a', node: 3, epoch: 1, reason: 'x' }), { ok: true, msg: { v: 1, kind: 'drain', term: 2, vm: 'a', node: 3, epoch: 1, reason: 'x' } });
    assert.equal(validateCpgMessage({ v: 1, kind: 'drain', term: 2, vm: 'a', node: 0, epoch: 1, reason: 'x' }).ok, false);
    assert.equal(validateCpgMessage({ v: 1, kind: 'drained', term: 2, vm: '', epoch: 1 }).ok, false);
  });
});

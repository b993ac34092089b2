import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAdmission, type AdmissionNode, type AdmissionVm } from '../../../src/core/admission.ts';

const node = (nodeid: number, ramMb: number | undefined, extra: Partial<AdmissionNode> = {}): AdmissionNode => ({ nodeid, ramMb, reserve: false, maintenance: false, ...extra });
const vm = (id: string, owner: number | null, ramMb: number, extra: Partial<AdmissionVm> = {}): AdmissionVm => ({
  id,
  owner,
  ramMb,
  ha: true,
  storage: 'shared',
  restartPriority: 0,
  ...extra,
});

describe('checkAdmission', () => {
  const table: Array<{ name: string; nodes: AdmissionNode[]; vms: AdmissionVm[]; ok: boolean; down: Record<number, string[]>; unrecoverable?: Record<number, string[]> }> = [
    { name: 'empty cluster is fine', nodes: [node(1, 4096), node(2, 4096)], vms: [], ok: true, down: {} },
    { name: 'room for each node elsewhere', nodes: [node(1, 4096), node(2, 4096), node(3, 4096)], vms: [vm('a', 1, 2048), vm('b', 2, 2048), vm('c', 3, 2048)], ok: true, down: {} },
    {
      name: 'a full pair: losing either leaves VMs down',
      nodes: [node(1, 4096), node(2, 4096)],
      vms: [vm('a', 1, 3072), vm('b', 2, 3072)],
      ok: false,
      down: { 1: ['a'], 2: ['b'] },
    },
    {
      name: 'non-HA VMs are not counted (they stay down by design)',
      nodes: [node(1, 4096), node(2, 4096)],
      vms: [vm('a', 1, 3072, { ha: false }), vm('b', 2, 3072, { ha: false })],
      ok: true,
      down: {},
    },
    {
      name: 'stopped VMs are ignored and use no RAM',
      nodes: [node(1, 4096), node(2, 4096)],
      vms: [vm('a', 1, 3072, { desired: 'stopped' }), vm('b', 2, 3072)],
      ok: true,
      down: {},
    },
    {
      name: 'a reserve node takes what regular nodes cannot',
      nodes: [node(1, 4096), node(2, 4096), node(3, 8192, { reserve: true })],
      vms: [vm('a', 1, 3072), vm('b', 2, 3072)],
      ok: true,
      down: {},
    },
    {
      name: 'a maintenance node is no survivor',
      nodes: [node(1, 4096), node(2, 4096), node(3, 65536, { maintenance: true })],
      vms: [vm('a', 1, 3072), vm('b', 2, 3072)],
      ok: false,
      down: { 1: ['a'], 2: ['b'] },
    },
    {
      name: 'restart priority decides who fits',
      nodes: [node(1, 8192), node(2, 4096)],
      vms: [vm('low', 1, 2048), vm('high', 1, 3072, { restartPriority: 5 }), vm('x', 2, 512)],
      ok: false,
      down: { 1: ['low'] },
    },
    {
      name: 'local-disk HA VMs are unrecoverable, not a capacity problem',
      nodes: [node(1, 4096), node(2, 4096)],
      vms: [vm('disk', 1, 1024, { storage: 'local' })],
      ok: true,
      down: {},
      unrecoverable: { 1: ['disk'] },
    },
    {
      name: 'a node already down is no survivor and is skipped',
      nodes: [node(1, 4096), node(2, 4096, { down: true }), node(3, 4096)],
      vms: [vm('a', 1, 3072), vm('c', 3, 3072)],
      ok: false,
      down: { 1: ['a'], 3: ['c'] },
    },
    { name: 'unknown RAM is unlimited', nodes: [node(1, undefined), node(2, undefined)], vms: [vm('a', 1, 1_000_000), vm('b', 2, 1_000_000)], ok: true, down: {} },
  ];
  for (const t of table) {
    it(t.name, () => {
      const r = checkAdmission(t.nodes, t.vms);
      assert.equal(r.ok, t.ok, r.summary);
      const down = Object.fromEntries(r.nodes.filter((l) => l.staysDown.length > 0).map((l) => [l.nodeid, l.staysDown.map((d) => d.vm).sort()]));
      assert.deepEqual(down, t.down);
      const unrec = Object.fromEntries(r.nodes.filter((l) => l.unrecoverable.length > 0).map((l) => [l.nodeid, l.unrecoverable]));
      assert.deepEqual(unrec, t.unrecoverable ?? {});
      assert.equal(r.nodes.length, t.nodes.length, 'one result per node');
    });
  }

  it('explains the failure and where VMs would go', () => {
    const r = checkAdmission([node(1, 4096), node(2, 2048), node(3, 4096)], [vm('a', 1, 3072), vm('b', 1, 1024)]);
    assert.equal(r.ok, true);
    assert.deepEqual(r.nodes[0]!.restarted, [{ vm: 'a', node: 3 }, { vm: 'b', node: 2 }]);
    const bad = checkAdmission([node(1, 4096), node(2, 2048)], [vm('a', 1, 3072)]);
    assert.match(bad.summary, /losing n1 leaves 1 HA VM\(s\) down \(a\)/);
    assert.match(bad.nodes[0]!.staysDown[0]!.reason, /needs 3072 MB, most free is 2048 MB on n2/);
    assert.equal(bad.nodes[0]!.skipped, undefined);
    assert.match(checkAdmission([node(1, 1, { down: true })], []).nodes[0]!.skipped!, /already down/);
  });
});

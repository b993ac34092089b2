import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { placeVms, type PlacementNode, type PlacementVm } from '../../../src/core/placement.ts';

const node = (nodeid: number, ramMb: number | undefined, used = 0, vmCount = 0, extra: Partial<PlacementNode> = {}): PlacementNode => ({
  nodeid,
  ramMb,
  usedRamMb: used,
  vmCount,
  reserve: false,
  maintenance: false,
  ...extra,
});
const vm = (id: string, ramMb: number, restartPriority = 0): PlacementVm => ({ id, ramMb, restartPriority });

describe('placeVms', () => {
  const table: Array<{ name: string; nodes: PlacementNode[]; vms: PlacementVm[]; expect: Record<string, number | null> }> = [
    { name: 'fewest VMs wins', nodes: [node(1, 16384, 0, 3), node(2, 16384, 0, 1)], vms: [vm('a', 1024)], expect: { a: 2 } },
    { name: 'tie on count: lowest nodeid', nodes: [node(2, 16384), node(1, 16384)], vms: [vm('a', 1024)], expect: { a: 1 } },
    { name: 'fewest VMs but not enough RAM: next one', nodes: [node(1, 4096, 3072, 0), node(2, 16384, 0, 5)], vms: [vm('a', 2048)], expect: { a: 2 } },
    { name: 'load is updated as VMs are placed', nodes: [node(1, 16384), node(2, 16384)], vms: [vm('a', 1024), vm('b', 1024), vm('c', 1024)], expect: { a: 1, b: 2, c: 1 } },
    { name: 'restart priority first', nodes: [node(1, 4096)], vms: [vm('low', 4096, 0), vm('high', 4096, 9)], expect: { high: 1, low: null } },
    { name: 'reserve only when no regular node fits', nodes: [node(1, 2048), node(2, 32768, 0, 0, { reserve: true })], vms: [vm('a', 1024), vm('b', 8192)], expect: { a: 1, b: 2 } },
    { name: 'reserve not used while a regular node fits', nodes: [node(1, 16384, 0, 9), node(2, 32768, 0, 0, { reserve: true })], vms: [vm('a', 1024)], expect: { a: 1 } },
    { name: 'maintenance never chosen', nodes: [node(1, 65536, 0, 0, { maintenance: true }), node(2, 4096)], vms: [vm('a', 2048), vm('b', 4096)], expect: { a: 2, b: null } },
    { name: 'unlimited RAM when unknown', nodes: [node(1, undefined)], vms: [vm('a', 1_000_000)], expect: { a: 1 } },
    { name: 'nothing available', nodes: [], vms: [vm('a', 1)], expect: { a: null } },
  ];
  for (const t of table) {
    it(t.name, () => {
      const r = placeVms(t.nodes, t.vms);
      const got: Record<string, number | null> = {};
      for (const p of r.placements) got[p.vm] = p.node;
      for (const u of r.unplaced) got[u.vm] = null;
      assert.deepEqual(got, t.expect);
    });
  }

  it('explains an unplaced VM', () => {
    const r = placeVms([node(1, 8192, 6144), node(2, 4096)], [vm('big', 8192)]);
    assert.match(r.unplaced[0]!.reason, /big stays down: needs 8192 MB, most free is 4096 MB on n2; retried when capacity appears/);
  });
  it('explains why a node was chosen', () => {
    const r = placeVms([node(3, 16384, 0, 2)], [vm('a', 1024)]);
    assert.match(r.placements[0]!.reason, /a -> n3: node with fewest VMs \(2\) and enough free RAM \(16384 MB >= 1024 MB\)/);
  });
  it('explains maintenance-only clusters', () => {
    assert.match(placeVms([node(1, 1000, 0, 0, { maintenance: true })], [vm('a', 1)]).unplaced[0]!.reason, /every available node is in maintenance/);
  });
  it('does not modify its inputs', () => {
    const nodes = [node(1, 16384)];
    const vms = [vm('b', 1), vm('a', 1)];
    placeVms(nodes, vms);
    assert.deepEqual(nodes, [node(1, 16384)]);
    assert.deepEqual(vms.map((v) => v.id), ['b', 'a']);
  });
});

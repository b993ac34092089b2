// requestedNodeVerdict(): can the node an admin named for a new VM take it now? (core/placement.ts)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ramOwnedByNode, requestedNodeVerdict, type RequestedNodeFacts } from '../../../src/core/placement.ts';

const n = (nodeid: number, o: Partial<RequestedNodeFacts> = {}): RequestedNodeFacts => ({ nodeid, status: 'member', ramMb: 4096, reserve: false, maintenance: false, ...o });

describe('requestedNodeVerdict', () => {
  const table: Array<{ what: string; nodes: RequestedNodeFacts[]; used?: Array<[number, number]>; ram?: number; ok: boolean; why?: RegExp }> = [
    { what: 'a good member with room', nodes: [n(1, { status: 'leader' }), n(3)], ok: true },
    { what: 'the master itself (leader)', nodes: [n(3, { status: 'leader' })], ok: true },
    { what: 'unlimited RAM (capacity unknown)', nodes: [n(3, { ramMb: undefined })], used: [[3, 1 << 20]], ok: true },
    { what: 'exactly enough RAM left', nodes: [n(3)], used: [[3, 3840]], ok: true },
    { what: 'a reserve node named explicitly', nodes: [n(3, { reserve: true })], ok: true },
    { what: 'in maintenance', nodes: [n(3, { maintenance: true })], ok: false, why: /^in maintenance$/ },
    { what: 'not enough free RAM', nodes: [n(3)], used: [[3, 3900]], ok: false, why: /^needs 256 MB, 196 MB free$/ },
    { what: 'more than it has at all', nodes: [n(3, { ramMb: 128 })], ok: false, why: /needs 256 MB, 128 MB free/ },
    { what: 'RAM used on another node does not count', nodes: [n(2), n(3)], used: [[2, 4096]], ok: true },
    { what: 'offline', nodes: [n(3, { status: 'offline' })], ok: false, why: /^offline$/ },
    { what: 'starting up (unknown)', nodes: [n(3, { status: 'unknown' })], ok: false, why: /^unknown$/ },
    { what: 'storage isolation', nodes: [n(3, { status: 'storage_isolation' })], ok: false, why: /^storage_isolation$/ },
    { what: 'excluded', nodes: [n(3, { status: 'excluded' })], ok: false, why: /^excluded$/ },
    { what: 'full failure', nodes: [n(3, { status: 'full_failure' })], ok: false, why: /^full_failure$/ },
    { what: 'a flapping link', nodes: [n(3, { status: 'network_unstable' })], ok: false, why: /network_unstable: its link flapped/ },
    { what: 'not in the view at all', nodes: [n(1)], ok: false, why: /not a node of the cluster/ },
    { what: 'status before maintenance: an offline node in maintenance says offline', nodes: [n(3, { status: 'offline', maintenance: true })], ok: false, why: /^offline$/ },
  ];
  for (const c of table) {
    it(c.what, () => {
      const v = requestedNodeVerdict({ id: 'v', ramMb: c.ram ?? 256 }, 3, c.nodes, new Map(c.used ?? []));
      assert.equal(v.ok, c.ok, JSON.stringify(v));
      if (!v.ok && c.why) assert.match(v.why, c.why);
      if (v.ok) assert.match(v.reason, /^v -> n3: requested/);
    });
  }
  it('a reserve node says so in the reason', () => {
    const v = requestedNodeVerdict({ id: 'v', ramMb: 256 }, 3, [n(3, { reserve: true })], new Map());
    assert.ok(v.ok);
    assert.match(v.reason, /reserve node \(named explicitly\)/);
  });
});

describe('ramOwnedByNode', () => {
  it('counts owned VMs with a spec that should run, as placement does', () => {
    const used = ramOwnedByNode(
      [{ vm: 'a', owner: 1 }, { vm: 'b', owner: 1 }, { vm: 'c', owner: 2 }, { vm: 'stopped', owner: 2 }, { vm: 'unowned', owner: null }, { vm: 'no-spec', owner: 3 }],
      [{ id: 'a', ramMb: 512 }, { id: 'b', ramMb: 256, desired: 'running' }, { id: 'c', ramMb: 1024 }, { id: 'stopped', ramMb: 2048, desired: 'stopped' }, { id: 'unowned', ramMb: 64 }],
    );
    assert.deepEqual([...used].sort(), [[1, 768], [2, 1024]]);
  });
});

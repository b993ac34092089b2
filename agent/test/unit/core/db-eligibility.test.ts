// Mastership follows the database: a node whose database cannot become primary is not elected
// while another good member's can (db-health events, carried in hellos and reports).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeConfig } from '../../../src/core/types.ts';
import { Harness } from './harness.ts';

const NODES: NodeConfig[] = [
  { nodeid: 1, prio: 100, addr: '10.0.0.1' },
  { nodeid: 2, prio: 50, addr: '10.0.0.2' },
  { nodeid: 3, prio: 40, addr: '10.0.0.3' },
];
const SHORT_LEASE = { leaseMs: 1000 };

function converged(opts: Partial<ConstructorParameters<typeof Harness>[0]> = {}): Harness {
  const h = new Harness({ nodes: NODES, settings: SHORT_LEASE, ...opts });
  h.start();
  h.run(3000);
  assert.equal(h.masterOf(1), 1);
  assert.deepEqual([...h.ip], [1]);
  return h;
}

const dbHealth = (h: Harness, id: number, eligible: boolean, reason = ''): void => {
  h.post(id, { type: 'db-health', eligible, reason });
  h.pump();
};

describe('node core: database eligibility', () => {
  it('the master whose database cannot be primary is replaced, even with failback off; it demotes and releases', () => {
    const h = converged();
    const since = h.now;
    dbHealth(h, 1, false, 'diverged, being re-cloned');
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 2, `n${id}`);
    assert.ok(h.decisions.some((d) => d.node === 3 && /n1 reported member, prio 100, database diverged, being re-cloned: n2 elected.*\(n1: database diverged, being re-cloned\)/.test(d.reason)));
    assert.deepEqual(h.actionsOf(1, undefined, since).map((a) => a.type).filter((t) => ['DemoteDatabase', 'ReleaseClusterIp', 'StopPanel'].includes(t)), ['DemoteDatabase', 'ReleaseClusterIp', 'StopPanel']);
    h.run(500);
    assert.deepEqual([...h.ip], [2], 'released: no lease wait');
    const promote = h.actionsOf(2, 'PromoteDatabase');
    assert.equal(promote.length, 1);
    assert.equal(promote[0]!.type === 'PromoteDatabase' ? promote[0]!.term : -1, h.core(2).view().cpg.term, 'PromoteDatabase carries the term');
    const v = h.core(3).view();
    const n1 = v.nodes.find((n) => n.nodeid === 1)!;
    assert.equal(n1.dbEligible, false);
    assert.equal(n1.dbReason, 'diverged, being re-cloned');
    assert.match(n1.reason, /n1 not master: database diverged, being re-cloned/);
    assert.equal(v.nodes.find((n) => n.nodeid === 2)!.dbEligible, undefined, 'never judged (no database section)');

    // Back to normal: without failback the new master stays.
    dbHealth(h, 1, true);
    h.run(500);
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 2);
    assert.equal(h.core(2).view().nodes[0]!.dbEligible, true);
    assert.match(h.core(2).view().nodes[0]!.reason, /n1 not master: n2 is established and failback is off/);
  });

  it('with failback on, the better node takes mastership back once its database can be primary again', () => {
    const h = converged({ settings: { ...SHORT_LEASE, failback: true } });
    dbHealth(h, 1, false, 'down');
    h.run(500);
    assert.equal(h.masterOf(3), 2);
    dbHealth(h, 1, true);
    h.run(500);
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 1);
    assert.deepEqual([...h.ip], [1]);
  });

  it('no database can be primary: VM HA goes on, the master stays, and the decision says so', () => {
    const h = converged();
    dbHealth(h, 2, false, 'down');
    dbHealth(h, 3, false, 'down');
    assert.equal(h.masterOf(2), 1);
    dbHealth(h, 1, false, 'down');
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 1);
    assert.deepEqual([...h.ip], [1]);
    assert.ok(h.decisions.some((d) => d.node === 2 && d.kind === 'status' && /n2's database cannot be primary: down/.test(d.reason)));
    // No re-election when nothing changes for the election: the reports only update the view.
    assert.match(h.core(3).view().nodes[1]!.reason, /n2 not master: prio 50 < 100 of n1/);
    // The first database back takes over.
    dbHealth(h, 3, true);
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 3);
    assert.ok(h.decisions.some((d) => d.node === 1 && /n3 elected/.test(d.reason)));
  });

  it("a node whose database cannot be primary says so in its hello: the round does not elect it", () => {
    const h = new Harness({ nodes: NODES, settings: SHORT_LEASE });
    for (const id of [1, 2, 3]) h.boot(id);
    dbHealth(h, 1, false, 'replication broken: error 1236');
    h.partition([[1, 2, 3]]);
    h.run(3000);
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 2);
    const hello = h.actionsOf(1, 'SendCpg').find((a) => a.type === 'SendCpg' && a.msg.kind === 'hello');
    assert.ok(hello?.type === 'SendCpg' && hello.msg.kind === 'hello' && hello.msg.dbEligible === false && hello.msg.dbReason === 'replication broken: error 1236');
  });

  it('an eligible database sends dbEligible: true once judged, nothing before (nodes without a database)', () => {
    const h = converged();
    const msgs = (id: number) => h.actionsOf(id, 'SendCpg').flatMap((a) => (a.type === 'SendCpg' && (a.msg.kind === 'hello' || a.msg.kind === 'report') ? [a.msg] : []));
    assert.ok(msgs(2).every((m) => !('dbEligible' in m)));
    dbHealth(h, 2, true);
    const last = msgs(2).at(-1)!;
    assert.equal(last.dbEligible, true);
    assert.ok(!('dbReason' in last));
    const count = msgs(2).length;
    dbHealth(h, 2, true);
    assert.equal(msgs(2).length, count, 'no report when nothing changed');
  });

  it('initialTerm: a restarted agent continues from its persisted term (terms and promote terms keep growing)', () => {
    const h = new Harness({ nodes: NODES, settings: SHORT_LEASE, options: (id) => ({ initialTerm: id === 1 ? 41 : 7 }) });
    h.start();
    h.run(3000);
    const term = h.core(1).view().cpg.term;
    assert.ok(term > 41, `term ${term}`);
    for (const id of [2, 3]) assert.equal(h.core(id).view().cpg.term, term);
    const p = h.actionsOf(1, 'PromoteDatabase')[0]!;
    assert.ok(p.type === 'PromoteDatabase' && p.term === term);
    // Garbage is ignored (starts from 0).
    const g = new Harness({ nodes: NODES, settings: SHORT_LEASE, options: () => ({ initialTerm: -3.5 }) });
    g.start();
    g.run(3000);
    assert.equal(g.core(1).view().cpg.term, 1);
  });
});

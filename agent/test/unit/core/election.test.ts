import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { electMaster, notMasterReason, quorumNeed, resolveRound, startupWait, type Candidate, type RoundHello } from '../../../src/core/election.ts';

describe('quorumNeed', () => {
  for (const [n, need] of [[1, 1], [2, 2], [3, 2], [4, 3], [5, 3], [6, 4], [7, 4]] as const) {
    it(`${n} nodes need ${need}`, () => assert.equal(quorumNeed(n), need));
  }
});

describe('electMaster', () => {
  const nodes: Candidate[] = [
    { nodeid: 1, prio: 50 },
    { nodeid: 2, prio: 100 },
    { nodeid: 3, prio: 100 },
    { nodeid: 4, prio: 200, eligible: false },
    { nodeid: 7, prio: 40 },
  ];
  const table: Array<{ name: string; members: number[]; current: number | null; failback: boolean; master: number | null; reason: RegExp }> = [
    { name: 'highest prio wins', members: [1, 2], current: null, failback: false, master: 2, reason: /n2 elected: highest prio/ },
    { name: 'tie goes to the lowest nodeid', members: [1, 2, 3], current: null, failback: false, master: 2, reason: /n2 elected/ },
    { name: 'ineligible node never wins', members: [1, 4], current: null, failback: false, master: 1, reason: /n1 elected/ },
    { name: 'no failback: established master kept', members: [1, 2, 7], current: 7, failback: false, master: 7, reason: /n7 stays master: failback is off \(n2 has prio 100 vs 40\)/ },
    { name: 'failback: better node takes over', members: [1, 2, 7], current: 7, failback: true, master: 2, reason: /n2 takes over from n7: failback on/ },
    { name: 'current master already best', members: [1, 2], current: 2, failback: true, master: 2, reason: /n2 stays master: best candidate/ },
    { name: 'lost master is replaced', members: [1, 3], current: 2, failback: false, master: 3, reason: /n3 elected.*n2 is gone/ },
    { name: 'ineligible current master is replaced', members: [1, 4], current: 4, failback: false, master: 1, reason: /n1 elected/ },
    { name: 'no members, no master', members: [], current: null, failback: false, master: null, reason: /no master/ },
    { name: 'unknown members are ignored', members: [9], current: null, failback: false, master: null, reason: /no eligible member/ },
  ];
  for (const t of table) {
    it(t.name, () => {
      const r = electMaster(t.members, nodes, t.current, { failback: t.failback });
      assert.equal(r.master, t.master);
      assert.match(r.reason, t.reason);
    });
  }
  it('does not depend on member order', () => {
    assert.equal(electMaster([3, 1, 2], nodes, null, { failback: false }).master, electMaster([2, 3, 1], nodes, null, { failback: false }).master);
  });
});

describe('notMasterReason', () => {
  it('explains a lower prio', () => {
    assert.equal(notMasterReason({ nodeid: 3, prio: 40 }, { nodeid: 7, prio: 100 }), 'n3 not master: prio 40 < 100 of n7');
  });
  it('explains a tie lost on nodeid', () => {
    assert.match(notMasterReason({ nodeid: 5, prio: 100 }, { nodeid: 2, prio: 100 }), /same prio 100, n2 has the lower nodeid/);
  });
  it('explains no failback', () => {
    assert.match(notMasterReason({ nodeid: 1, prio: 200 }, { nodeid: 2, prio: 100 }), /established and failback is off/);
  });
});

describe('resolveRound (after a membership change)', () => {
  const h = (from: number, prio: number, extra: Partial<RoundHello> = {}): RoundHello => ({ from, prio, term: 3, claim: false, majority: true, status: 'member', nodeCount: 3, ...extra });
  const table: Array<{ name: string; members: number[]; hellos: RoundHello[]; failback?: boolean; master: number | null; term?: number; reason?: RegExp }> = [
    {
      name: 'newcomer with higher prio does not take over an established master',
      members: [1, 2, 3],
      hellos: [h(1, 50, { claim: true }), h(2, 50), h(3, 999, { term: 0, majority: false })],
      master: 1,
      term: 4,
      reason: /n1 stays master: failback is off/,
    },
    { name: 'failback lets the newcomer win', members: [1, 2, 3], hellos: [h(1, 50, { claim: true }), h(2, 50), h(3, 999)], failback: true, master: 3 },
    { name: 'no claim: election by prio', members: [1, 2], hellos: [h(1, 50), h(2, 60)], master: 2 },
    { name: 'minority view has no master', members: [1], hellos: [h(1, 50, { claim: true })], master: null, reason: /1 of 3 nodes in this view, need 2/ },
    { name: 'non-member statuses are not candidates', members: [1, 2], hellos: [h(1, 50), h(2, 60, { status: 'starting' })], master: 1 },
    { name: 'claimant with a bad status is not kept', members: [1, 2], hellos: [h(1, 50), h(2, 60, { claim: true, status: 'storage_isolation' })], master: 1 },
    {
      name: 'two claimants (healed split): the one from a majority view wins',
      members: [1, 2, 3],
      hellos: [h(1, 50, { claim: true, majority: false, term: 9 }), h(2, 40, { claim: true, term: 5 }), h(3, 10)],
      master: 2,
      term: 10,
    },
    { name: 'largest reported cluster size decides the majority', members: [1, 2], hellos: [h(1, 50), h(2, 50, { nodeCount: 5 })], master: null },
  ];
  for (const t of table) {
    it(t.name, () => {
      const r = resolveRound(t.members, t.hellos, { failback: t.failback ?? false });
      assert.equal(r.master, t.master, r.reason);
      if (t.term !== undefined) assert.equal(r.term, t.term);
      if (t.reason) assert.match(r.reason, t.reason);
    });
  }
});

describe('startup grace (resolveRound / startupWait)', () => {
  // Every member freshly started (young) and corosync says n1 is up too.
  const y = (from: number, prio: number, extra: Partial<RoundHello> = {}): RoundHello => ({
    from, prio, term: 0, claim: false, majority: false, status: 'member', nodeCount: 3, graceLeftMs: 4700, quorumMembers: [1, 2, 3], ...extra,
  });
  const table: Array<{ name: string; members: number[]; hellos: RoundHello[]; master: number | null; reason?: RegExp }> = [
    { name: 'all young, n1 quorate but its agent missing: no fresh master', members: [2, 3], hellos: [y(2, 50), y(3, 40)], master: null, reason: /waiting up to 5s for n1's agent to join/ },
    { name: 'all young, everyone in the view: best wins', members: [1, 2, 3], hellos: [y(1, 100), y(2, 50), y(3, 40)], master: 1 },
    { name: 'one member past its grace: elect now (liveness)', members: [2, 3], hellos: [y(2, 50), y(3, 40, { graceLeftMs: 0 })], master: 2 },
    { name: 'an established claimant is kept (never delays a failover)', members: [2, 3], hellos: [y(2, 50, { claim: true, majority: true, term: 4 }), y(3, 40)], master: 2, reason: /stays master/ },
    { name: 'older agents (no grace fields): elect as before', members: [2, 3], hellos: [y(2, 50, { graceLeftMs: undefined, quorumMembers: undefined }), y(3, 40, { graceLeftMs: undefined, quorumMembers: undefined })], master: 2 },
    { name: 'no quorum info: nothing known to be missing', members: [2, 3], hellos: [y(2, 50, { quorumMembers: [] }), y(3, 40, { quorumMembers: [] })], master: 2 },
    { name: 'missing node known to one member only still waits', members: [2, 3], hellos: [y(2, 50, { quorumMembers: [2, 3] }), y(3, 40, { quorumMembers: [1, 2, 3], graceLeftMs: 1200 })], master: null, reason: /up to 2s for n1's agent/ },
    { name: 'a better member still starting is waited for', members: [1, 2, 3], hellos: [y(1, 100, { status: 'starting' }), y(2, 50), y(3, 40)], master: null, reason: /n1 \(better than n2\) to finish starting/ },
    { name: 'a worse member still starting is not waited for', members: [1, 2, 3], hellos: [y(1, 100), y(2, 50), y(3, 40, { status: 'starting' })], master: 1 },
    { name: 'minority view: no master, no wait reason', members: [2], hellos: [y(2, 50)], master: null, reason: /1 of 3 nodes in this view/ },
  ];
  for (const t of table) {
    it(t.name, () => {
      const r = resolveRound(t.members, t.hellos, { failback: false });
      assert.equal(r.master, t.master, r.reason);
      if (t.reason) assert.match(r.reason, t.reason);
    });
  }
  it('names every missing agent', () => {
    const w = startupWait([2, 3], [{ from: 2, graceLeftMs: 100, quorumMembers: [1, 2, 3, 4] }, { from: 3, graceLeftMs: 900, quorumMembers: [2, 3, 5] }], { nodeid: 2, prio: 50 });
    assert.match(w ?? '', /waiting up to 1s for the agents of n1, n4, n5 to join/);
  });
});

describe('database eligibility (electMaster / resolveRound / notMasterReason)', () => {
  const c = (nodeid: number, prio: number, db?: string): Candidate => (db === undefined ? { nodeid, prio } : { nodeid, prio, dbEligible: false, dbReason: db });
  const nodes = [c(1, 100, 'diverged, being re-cloned'), c(2, 50), c(3, 40), c(4, 200, 'down'), c(5, 30, 'database unreachable')];
  const table: Array<{ name: string; members: number[]; current: number | null; failback: boolean; master: number | null; reason: RegExp }> = [
    { name: 'a better prio whose database cannot be primary is passed over', members: [1, 2, 3], current: null, failback: false, master: 2, reason: /^n2 elected: highest prio among n2\(50\), n3\(40\)$/ },
    { name: 'an established master whose database cannot be primary is replaced, even without failback', members: [1, 2, 3], current: 1, failback: false, master: 2, reason: /n2 elected.*\(n1: database diverged, being re-cloned\)/ },
    { name: 'failback still applies among the members whose database can be primary', members: [1, 2, 3], current: 3, failback: false, master: 3, reason: /n3 stays master: failback is off \(n2 has prio 50 vs 40\)/ },
    { name: 'no database can be primary: elected as usual, and the reason says so', members: [1, 4, 5], current: null, failback: false, master: 4, reason: /n4 elected: highest prio among n4\(200\), n1\(100\), n5\(30\); no member's database can be primary: n4 master without a writable database/ },
    { name: 'no database can be primary: the established master is kept', members: [1, 4, 5], current: 5, failback: false, master: 5, reason: /n5 stays master: failback is off.*no member's database can be primary: n5 master/ },
    { name: 'a reason that already names the database is not repeated', members: [2, 5], current: 5, failback: false, master: 2, reason: /\(n5: database unreachable\)$/ },
  ];
  for (const t of table) {
    it(t.name, () => {
      const r = electMaster(t.members, nodes, t.current, { failback: t.failback });
      assert.equal(r.master, t.master, r.reason);
      assert.match(r.reason, t.reason);
    });
  }

  const h = (from: number, prio: number, extra: Partial<RoundHello> = {}): RoundHello => ({ from, prio, term: 3, claim: false, majority: true, status: 'member', nodeCount: 3, ...extra });
  const bad = { dbEligible: false, dbReason: 'diverged, being re-cloned' } as const;
  const rounds: Array<{ name: string; members: number[]; hellos: RoundHello[]; master: number | null; reason?: RegExp }> = [
    { name: 'a claimant whose database cannot be primary is replaced', members: [1, 2, 3], hellos: [h(1, 100, { claim: true, ...bad }), h(2, 50), h(3, 40)], master: 2, reason: /n2 elected.*n1: database diverged/ },
    { name: 'hellos without the fields (older agents) count as eligible', members: [1, 2, 3], hellos: [h(1, 100, { claim: true }), h(2, 50, { dbEligible: true }), h(3, 40)], master: 1 },
    { name: 'of two claimants, the one whose database can be primary', members: [1, 2, 3], hellos: [h(1, 100, { claim: true, term: 9, ...bad }), h(2, 50, { claim: true, term: 5 }), h(3, 40)], master: 2, reason: /n2 stays master/ },
    { name: 'no database can be primary: the claimant is kept', members: [1, 2, 3], hellos: [h(1, 10, { claim: true, ...bad }), h(2, 50, bad), h(3, 40, bad)], master: 1, reason: /no member's database can be primary: n1 master without a writable database/ },
    { name: 'a bad status is not made good by a database', members: [1, 2], hellos: [h(1, 100, { status: 'storage_isolation' }), h(2, 50, bad)], master: 2, reason: /no member's database can be primary/ },
  ];
  for (const t of rounds) {
    it(`round: ${t.name}`, () => {
      const r = resolveRound(t.members, t.hellos, { failback: false });
      assert.equal(r.master, t.master, r.reason);
      if (t.reason) assert.match(r.reason, t.reason);
    });
  }

  it('startup grace: a better member still starting is not waited for when its database cannot be primary', () => {
    const y = (from: number, prio: number, extra: Partial<RoundHello> = {}): RoundHello => ({ from, prio, term: 0, claim: false, majority: false, status: 'member', nodeCount: 3, graceLeftMs: 4000, quorumMembers: [1, 2, 3], ...extra });
    assert.equal(resolveRound([1, 2, 3], [y(1, 100, { status: 'starting', ...bad }), y(2, 50), y(3, 40)], { failback: false }).master, 2);
  });

  it('notMasterReason names the database', () => {
    assert.equal(notMasterReason(c(1, 100, 'diverged, being re-cloned'), c(2, 50)), 'n1 not master: database diverged, being re-cloned');
    assert.equal(notMasterReason({ nodeid: 1, prio: 100, dbEligible: false }, c(2, 50)), 'n1 not master: database cannot be primary');
    // When the master's database cannot be primary either, the usual reason applies.
    assert.match(notMasterReason(c(3, 40, 'down'), c(2, 50, 'down')), /prio 40 < 50/);
  });
});

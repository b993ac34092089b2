import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateCpgMessage } from '../../../src/core/messages.ts';

describe('validateCpgMessage', () => {
  const good = [
    { v: 1, kind: 'renew', term: 3, sentAt: 1234.5 },
    // The holder's lease terms (older agents send none: the receiver uses its own settings).
    { v: 1, kind: 'renew', term: 3, sentAt: 1234.5, leaseMs: 2750, releaseBudgetMs: 1000 },
    { v: 1, kind: 'elect', reason: 'admin' },
    { v: 1, kind: 'released', term: 2 },
    { v: 1, kind: 'start', vm: 'vm1', epoch: 4, sentAt: 10 },
    { v: 1, kind: 'report', prio: 100, status: 'member', running: ['vm1'], configVersion: 2, nodeCount: 3, failback: false },
    { v: 1, kind: 'assign', term: 1, vm: 'vm1', from: null, fromEpoch: 0, to: 2, epoch: 1, reason: 'x' },
    { v: 1, kind: 'vm-table', term: 1, vms: [{ id: 'vm1', ramMb: 512, ha: true, storage: 'shared', restartPriority: 1 }], owners: [['vm1', 2, 1]] },
    {
      v: 1, kind: 'hello', members: [1, 2], term: 0, claim: false, majority: false, prio: 10, status: 'starting', running: [],
      configVersion: 0, nodeCount: 3, failback: false, msSinceRenewal: 0, renewedBy: null, owners: [],
    },
    {
      v: 1, kind: 'hello', members: [2, 3], term: 0, claim: false, majority: false, prio: 10, status: 'starting', running: [],
      configVersion: 0, nodeCount: 3, failback: false, msSinceRenewal: 0, renewedBy: null, owners: [], graceLeftMs: 4700, quorumMembers: [1, 2, 3],
    },
    {
      v: 1, kind: 'hello', members: [1, 2, 3], term: 4, claim: false, majority: true, prio: 10, status: 'member', running: [],
      configVersion: 1, nodeCount: 3, failback: false, msSinceRenewal: 120, renewedBy: 1, renewLeaseMs: 2750, renewReleaseBudgetMs: 1000, owners: [],
    },
    { v: 1, kind: 'report', prio: 100, status: 'member', running: [], configVersion: 2, nodeCount: 3, failback: false, graceLeftMs: 0, quorumMembers: [] },
    { v: 1, kind: 'report', prio: 100, status: 'member', running: [], configVersion: 2, nodeCount: 3, failback: false, leaseTerms: true },
    // Database eligibility (absent in older agents' messages and for nodes without a database).
    { v: 1, kind: 'report', prio: 100, status: 'member', running: [], configVersion: 2, nodeCount: 3, failback: false, dbEligible: false, dbReason: 'diverged, being re-cloned' },
    {
      v: 1, kind: 'hello', members: [1, 2], term: 7, claim: true, majority: true, prio: 10, status: 'member', running: [],
      configVersion: 1, nodeCount: 3, failback: false, msSinceRenewal: 0, renewedBy: 1, owners: [], dbEligible: true,
    },
  ];
  for (const m of good) {
    it(`accepts ${m.kind}`, () => {
      const r = validateCpgMessage(m);
      assert.equal(r.ok, true, r.ok ? '' : r.reason);
      if (r.ok) assert.deepEqual(r.msg, m);
    });
  }

  const bad: Array<[string, unknown, RegExp]> = [
    ['null', null, /not an object/],
    ['a string', 'hello', /not an object/],
    ['an array', [1, 2], /not an object/],
    ['another version', { v: 2, kind: 'renew', term: 1, sentAt: 1 }, /unsupported message version/],
    ['unknown kind', { v: 1, kind: 'take-over' }, /unknown message kind/],
    ['negative term', { v: 1, kind: 'renew', term: -1, sentAt: 1 }, /term must be an integer/],
    ['NaN time', { v: 1, kind: 'renew', term: 1, sentAt: Number.NaN }, /sentAt must be a finite number/],
    ['text lease-terms flag', { v: 1, kind: 'report', prio: 1, status: 'member', running: [], configVersion: 1, nodeCount: 1, failback: false, leaseTerms: 'yes' }, /leaseTerms must be a boolean/],
    ['zero lease in a renewal', { v: 1, kind: 'renew', term: 1, sentAt: 1, leaseMs: 0 }, /leaseMs must be an integer >= 1/],
    ['text release budget in a renewal', { v: 1, kind: 'renew', term: 1, sentAt: 1, leaseMs: 2750, releaseBudgetMs: '1000' }, /releaseBudgetMs must be an integer >= 1/],
    [
      'fractional renewal lease in a hello',
      { v: 1, kind: 'hello', members: [1], term: 0, claim: false, majority: false, prio: 1, status: 'member', running: [], configVersion: 0, nodeCount: 1, failback: false, msSinceRenewal: 0, renewedBy: 1, renewLeaseMs: 1.5, owners: [] },
      /renewLeaseMs must be an integer >= 1/,
    ],
    ['unknown status', { v: 1, kind: 'report', prio: 1, status: 'boss', running: [], configVersion: 1, nodeCount: 1, failback: false }, /status is not a known status/],
    ['epoch not increasing', { v: 1, kind: 'assign', term: 1, vm: 'vm1', from: 1, fromEpoch: 5, to: 2, epoch: 5, reason: '' }, /epoch must be greater/],
    ['node id 0', { v: 1, kind: 'assign', term: 1, vm: 'vm1', from: null, fromEpoch: 0, to: 0, epoch: 1, reason: '' }, /to must be an integer >= 1/],
    ['bad owner triple', { v: 1, kind: 'vm-table', term: 1, vms: [], owners: [['vm1', 2]] }, /owners\[0\] must be/],
    ['bad storage kind', { v: 1, kind: 'vm-table', term: 1, vms: [{ id: 'a', ramMb: 1, ha: true, storage: 'nfs', restartPriority: 0 }], owners: [] }, /storage must be shared\|local/],
    ['huge list', { v: 1, kind: 'report', prio: 1, status: 'member', running: new Array(20_000).fill('x'), configVersion: 1, nodeCount: 1, failback: false }, /at most 10000/],
    ['negative grace', { v: 1, kind: 'report', prio: 1, status: 'member', running: [], configVersion: 1, nodeCount: 1, failback: false, graceLeftMs: -1 }, /graceLeftMs must be an integer/],
    ['bad quorum member', { v: 1, kind: 'report', prio: 1, status: 'member', running: [], configVersion: 1, nodeCount: 1, failback: false, quorumMembers: [0] }, /quorumMembers\[0\] must be an integer >= 1/],
    ['overlong reason', { v: 1, kind: 'elect', reason: 'x'.repeat(501) }, /at most 500 chars/],
    ['text DB eligibility', { v: 1, kind: 'report', prio: 1, status: 'member', running: [], configVersion: 1, nodeCount: 1, failback: false, dbEligible: 'no' }, /dbEligible must be a boolean/],
    ['overlong DB reason', { v: 1, kind: 'report', prio: 1, status: 'member', running: [], configVersion: 1, nodeCount: 1, failback: false, dbEligible: false, dbReason: 'x'.repeat(501) }, /dbReason must be a string/],
  ];
  for (const [name, raw, reason] of bad) {
    it(`rejects ${name}`, () => {
      const r = validateCpgMessage(raw);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, reason);
    });
  }
  it('never throws, even on hostile getters', () => {
    const hostile = Object.defineProperty({ v: 1 }, 'kind', { get: () => { throw new Error('boom'); }, enumerable: true });
    const r = validateCpgMessage(hostile);
    assert.equal(r.ok, false);
  });
});

// The lease the daemon gives the core: from corosync's effective timing, unless the agent config sets it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { coreSettings, parseAgentConfig } from '../../src/config.ts';
import { TRANSITION_SLACK_MS } from '../../src/core/lease.ts';
import { DEFAULT_SETTINGS, resolveSettings, settingsProblems } from '../../src/core/types.ts';

const ha = (json = '{}') => parseAgentConfig(`{"ha":${json}}`).ha;

describe('coreSettings: the lease follows corosync', () => {
  it('lab timing (token 1000, consensus 1200): token + consensus + renewal + slack', () => {
    const r = coreSettings(ha(), { tokenMs: 1000, consensusMs: 1200 });
    assert.equal(r.settings.leaseMs, 1000 + 1200 + 250 + TRANSITION_SLACK_MS);
    assert.equal(r.settings.leaseMs, DEFAULT_SETTINGS.leaseMs);
    assert.match(r.lease, /corosync token 1000 \+ consensus 1200/);
    assert.deepEqual(settingsProblems(resolveSettings(r.settings)), []);
  });
  it("corosync's production defaults on 3 nodes (effective token 3650, consensus 4380)", () => {
    assert.equal(coreSettings(ha(), { tokenMs: 3650, consensusMs: 4380 }).settings.leaseMs, 3650 + 4380 + 250 + TRANSITION_SLACK_MS);
  });
  it('without a consensus value: 1.2 x token (corosync default)', () => {
    assert.equal(coreSettings(ha(), { tokenMs: 3000 }).settings.leaseMs, 3000 + 3600 + 250 + TRANSITION_SLACK_MS);
  });
  it('a configured renewal interval is part of it', () => {
    assert.equal(coreSettings(ha('{"leaseRenewMs":400}'), { tokenMs: 1000, consensusMs: 1200 }).settings.leaseMs, 1000 + 1200 + 400 + TRANSITION_SLACK_MS);
  });
  it('timing not read yet: the core default', () => {
    const r = coreSettings(ha(), {});
    assert.equal(r.settings.leaseMs, undefined);
    assert.match(r.lease, /default/);
  });
  it('an explicit leaseMs wins (fastest failover, accepts the blip) and also sizes the VM start window', () => {
    const r = coreSettings(ha('{"leaseMs":1000}'), { tokenMs: 3000, consensusMs: 3600 });
    assert.equal(r.settings.leaseMs, 1000);
    assert.equal(r.settings.startWindowMs, 1000);
    assert.match(r.lease, /set in the agent config/);
  });
  it('keeps the other ha settings', () => {
    const r = coreSettings(ha('{"failback":true,"fenceTimeoutMs":4000}'), { tokenMs: 1000, consensusMs: 1200 });
    assert.equal(r.settings.failback, true);
    assert.equal(r.settings.fenceTimeoutMs, 4000);
  });
});

describe('ha settings that do not hold together are refused when the config is read', () => {
  it('names every problem and the file', () => {
    assert.throws(
      () => parseAgentConfig('{"ha":{"storageTimeoutMs":900,"fenceTimeoutMs":800,"leaseMarginMs":50}}', '/etc/corolistener/config.json'),
      {
        message:
          '/etc/corolistener/config.json: ha settings do not hold together: leaseMarginMs 50 must be >= tickMs 100; ' +
          'storageWriteMaxMs 1000 must be < fenceTimeoutMs 800',
      },
    );
  });
  it('an explicit lease is checked at once; a derived one waits for corosync timing (it always covers the renewal)', () => {
    assert.throws(() => parseAgentConfig('{"ha":{"leaseMs":1000,"leaseRenewMs":600}}'), /leaseRenewMs 600 must be > 0 and <= leaseMs\/2 \(500\)/);
    assert.doesNotThrow(() => parseAgentConfig('{"ha":{"leaseRenewMs":1500}}'));
  });
  it('the lab and benchmark settings pass', () => {
    assert.doesNotThrow(() => parseAgentConfig('{"ha":{"storageTimeoutMs":2000,"fenceTimeoutMs":3000}}'));
    assert.doesNotThrow(() => parseAgentConfig('{}'));
  });
});

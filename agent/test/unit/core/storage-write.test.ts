// The heartbeat write period leaves room for one slow write inside the storage timeout.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveSettings, settingsProblems, type NodeConfig } from '../../../src/core/types.ts';
import { Harness } from './harness.ts';

const NODES: NodeConfig[] = [
  { nodeid: 1, prio: 100 },
  { nodeid: 2, prio: 50 },
  { nodeid: 3, prio: 40 },
];

describe('heartbeat write period', () => {
  it('defaults to 1000 ms, or a quarter of a shorter storage timeout; an explicit one is kept', () => {
    assert.equal(resolveSettings().storageWriteMs, 1000);
    assert.equal(resolveSettings({ storageTimeoutMs: 2000 }).storageWriteMs, 500);
    assert.equal(resolveSettings({ storageTimeoutMs: 2000, storageWriteMs: 1000 }).storageWriteMs, 1000);
    assert.equal(resolveSettings({ storageTimeoutMs: 200 }).storageWriteMs, 100, 'never below a tick');
    assert.deepEqual(settingsProblems(resolveSettings({ storageTimeoutMs: 2000, fenceTimeoutMs: 3000 })), []);
  });

  for (const [storageWriteMs, isolated] of [[undefined, false], [1000, true]] as const) {
    it(`storage timeout 2000 ms, writes every ${storageWriteMs ?? 'default'} ms: one write that takes 1.2 s ${isolated ? 'is' : 'is not'} storage isolation`, () => {
      const h = new Harness({ nodes: NODES, settings: { storageTimeoutMs: 2000, fenceTimeoutMs: 3000, storageWriteMs } });
      h.start();
      h.run(4000);
      assert.equal(h.masterOf(1), 1);
      // Exactly one slow write: the next one n1 issues.
      const writes = h.actionsOf(1, 'WriteHeartbeat').length;
      h.slowWrites.set(1, 1200);
      while (h.actionsOf(1, 'WriteHeartbeat').length === writes) h.run(100);
      h.slowWrites.delete(1);
      h.run(3000);
      const fell = h.decisions.some((d) => d.node === 1 && /storage_isolation/.test(d.reason));
      assert.equal(fell, isolated);
      assert.equal(h.masterOf(2), isolated ? 2 : 1);
    });
  }
});

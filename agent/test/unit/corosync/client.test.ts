// CorosyncClient behaviour that needs no running corosync (nothing here calls start()).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CorosyncClient } from '../../../src/corosync/index.ts';
import { EventStream } from '../../../src/corosync/stream.ts';
import type { ClusterEvent } from '../../../src/corosync/types.ts';

const ev = (reason: string): ClusterEvent => ({ type: 'disconnected', reason });

describe('EventStream', () => {
  test('delivers queued and future events, then ends', async () => {
    let closed = 0;
    const s = new EventStream(() => closed++);
    s.push(ev('a'));
    assert.deepEqual(await s.next(), { value: ev('a'), done: false });
    const pending = s.next();
    s.push(ev('b'));
    assert.deepEqual(await pending, { value: ev('b'), done: false });
    s.push(ev('c'));
    s.end();
    assert.deepEqual(await s.next(), { value: ev('c'), done: false }, 'queued events survive end()');
    assert.equal((await s.next()).done, true);
    assert.equal(closed, 1);
  });

  test('end() releases a waiting consumer; return() unsubscribes', async () => {
    let closed = 0;
    const s = new EventStream(() => closed++);
    const pending = s.next();
    s.end();
    assert.equal((await pending).done, true);
    const r = new EventStream(() => closed++);
    r.push(ev('x'));
    await r.return();
    assert.equal((await r.next()).done, true);
    assert.equal(closed, 2);
  });
});

describe('CorosyncClient without a connection', () => {
  test('initial snapshot is empty and disconnected', () => {
    const c = new CorosyncClient();
    assert.deepEqual(c.snapshot(), { connected: false, quorate: false, members: [], nodes: [], cpgMembers: [] });
  });

  test('send rejects clearly when not connected', async () => {
    const c = new CorosyncClient();
    await assert.rejects(c.send('x'), /cannot send: not connected to corosync/);
  });

  test('waitFor resolves immediately when already true and times out otherwise', async () => {
    const c = new CorosyncClient();
    assert.equal((await c.waitFor((s) => !s.connected, 100)).connected, false);
    await assert.rejects(c.waitFor((s) => s.connected, 30), /waitFor timed out after 30 ms/);
  });

  test('stop is idempotent, ends iterators and pending waits; start afterwards rejects', async () => {
    const c = new CorosyncClient();
    const it = c.events()[Symbol.asyncIterator]();
    const next = it.next();
    const wait = c.waitFor((s) => s.connected, 5000);
    await c.stop();
    await c.stop();
    assert.equal((await next).done, true);
    await assert.rejects(wait, /stopped/);
    await assert.rejects(c.start(), /stopped/);
    const after = c.events()[Symbol.asyncIterator]();
    assert.equal((await after.next()).done, true);
  });
});

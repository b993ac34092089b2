import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventHeap } from '../../../src/sim/heap.ts';
import { Prng } from '../../../src/sim/prng.ts';

describe('Prng', () => {
  it('is deterministic per seed', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    for (let i = 0; i < 100; i++) assert.equal(a.next(), b.next());
    assert.notEqual(new Prng(1).next(), new Prng(2).next());
  });
  it('stays in range', () => {
    const r = new Prng(7);
    for (let i = 0; i < 10_000; i++) {
      const x = r.int(3, 7);
      assert.ok(x >= 3 && x <= 7 && Number.isInteger(x));
      const f = r.next();
      assert.ok(f >= 0 && f < 1);
    }
  });
  it('covers the whole range roughly uniformly', () => {
    const r = new Prng(9);
    const counts = [0, 0, 0, 0, 0];
    for (let i = 0; i < 50_000; i++) counts[r.int(0, 4)]! += 1;
    for (const c of counts) assert.ok(c > 9_000 && c < 11_000, String(counts));
  });
  it('weighted() respects zero weights', () => {
    const r = new Prng(3);
    for (let i = 0; i < 1000; i++) assert.notEqual(r.weighted({ a: 1, b: 0, c: 2 }), 'b');
  });
  it('fork() gives an independent, reproducible stream', () => {
    assert.equal(new Prng(5).fork(1).next(), new Prng(5).fork(1).next());
    assert.notEqual(new Prng(5).fork(1).next(), new Prng(5).fork(2).next());
  });
});

describe('EventHeap', () => {
  it('pops by time, then priority, then insertion order', () => {
    const h = new EventHeap<{ at: number; prio: number; seq: number; name: string }>();
    const items = [
      { at: 5, prio: 1, seq: 0, name: 'c' },
      { at: 1, prio: 1, seq: 1, name: 'a' },
      { at: 5, prio: 0, seq: 2, name: 'b' },
      { at: 5, prio: 1, seq: 3, name: 'd' },
      { at: 9, prio: 1, seq: 4, name: 'e' },
    ];
    for (const i of items) h.push(i);
    const out: string[] = [];
    for (let e = h.pop(); e !== undefined; e = h.pop()) out.push(e.name);
    assert.deepEqual(out, ['a', 'b', 'c', 'd', 'e']);
  });
  it('sorts many random items', () => {
    const r = new Prng(11);
    const h = new EventHeap<{ at: number; prio: number; seq: number }>();
    for (let i = 0; i < 5000; i++) h.push({ at: r.int(0, 1000), prio: r.int(0, 1), seq: i });
    let prev = { at: -1, prio: -1, seq: -1 };
    for (let e = h.pop(); e !== undefined; e = h.pop()) {
      assert.ok(prev.at < e.at || (prev.at === e.at && (prev.prio < e.prio || (prev.prio === e.prio && prev.seq < e.seq))));
      prev = e;
    }
  });
});

// Checker: every read through the master that STARTED after a write was acknowledged must see that
// write. A successful read (200) that misses one is a stale read (served by a node that does not
// have it: an old master, a replica promoted without it, a primary that lost it).
import { inRanges, isAcked, type ReadOp, type WriteOp } from "../history.ts";

export type StaleRead = { start: number; end: number; final: boolean; missing: number[] };

/** Index of the first element of sorted `xs` that is >= v. */
function lowerBound(xs: number[], v: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function checkStaleReads(writes: WriteOp[], reads: ReadOp[]): StaleRead[] {
  const acked = writes.filter((w) => isAcked(w.status)).sort((a, b) => a.end - b.end);
  const ok = reads.filter((r) => r.status === 200).sort((a, b) => a.start - b.start);
  const out: StaleRead[] = [];
  const known: number[] = []; // seqs acknowledged before the current read started, sorted
  let next = 0;
  for (const r of ok) {
    while (next < acked.length && acked[next]!.end < r.start) {
      const s = acked[next++]!.seq;
      if (known.length === 0 || s > known[known.length - 1]!) known.push(s);
      else known.splice(lowerBound(known, s), 0, s);
    }
    // Count the known seqs the read's ranges cover; only when some are not covered, list them.
    let covered = 0;
    for (const [a, b] of r.seen) covered += lowerBound(known, b + 1) - lowerBound(known, a);
    if (covered === known.length) continue;
    out.push({ start: r.start, end: r.end, final: r.final === true, missing: known.filter((s) => !inRanges(r.seen, s)) });
  }
  return out;
}

// Checker: no acknowledged write may be missing from the final state (read from the final primary),
// and no write the panel refused (4xx, nothing written) may appear in it.
import { isAcked, isIndeterminate, type WriteOp } from "../history.ts";

export type LostWritesResult = {
  attempted: number;
  acked: number;
  /** 503, other 5xx, timeouts, broken connections: may or may not have been kept. */
  indeterminate: number;
  /** Indeterminate writes that the final state kept (allowed; informational). */
  indeterminateKept: number;
  /** 4xx: refused before anything was written. */
  refused: number;
  /** Acknowledged but absent from the final state: violations. */
  lost: number[];
  /** Refused (4xx) or never attempted, yet present: violations. */
  phantom: number[];
};

export function checkLostWrites(writes: WriteOp[], finalSeqs: Iterable<number>): LostWritesResult {
  const final = new Set(finalSeqs);
  const bySeq = new Map(writes.map((w) => [w.seq, w]));
  const acked = writes.filter((w) => isAcked(w.status));
  const indeterminate = writes.filter((w) => isIndeterminate(w.status));
  return {
    attempted: writes.length,
    acked: acked.length,
    indeterminate: indeterminate.length,
    indeterminateKept: indeterminate.filter((w) => final.has(w.seq)).length,
    refused: writes.length - acked.length - indeterminate.length,
    lost: acked.filter((w) => !final.has(w.seq)).map((w) => w.seq),
    phantom: [...final].filter((s) => {
      const w = bySeq.get(s);
      return !w || (!isAcked(w.status) && !isIndeterminate(w.status));
    }).sort((a, b) => a - b),
  };
}

// What the nemesis records: the client's operations (one JSON line each from client.ts) and the
// runner's timeline. Times are Date.now() of this machine (the client runs in a lab namespace on
// the same clock). Checkers (checkers/*.ts) read only these.

/** An HTTP status, or what happened instead of one. */
export type OpStatus = number | "timeout" | "error";

/** One write: POST /api/users creating user nem-<seed>-<seq>. */
export type WriteOp = { type: "write"; seq: number; start: number; end: number; status: OpStatus; error?: string };

/**
 * One read: GET /api/users; `seen` = the seqs of this run's users in the answer, as sorted inclusive
 * ranges ([[1, 40], [42, 97]]): compact even with thousands of users.
 */
export type ReadOp = { type: "read"; start: number; end: number; status: OpStatus; seen: Array<[number, number]>; count: number; final?: boolean; error?: string };

export type LoginOp = { type: "login" | "setup"; start: number; end: number; status: OpStatus; error?: string };

export type ClientEvent =
  | WriteOp
  | ReadOp
  | LoginOp
  | { type: "note"; t: number; msg: string }
  | { type: "ready"; t: number }
  | { type: "paused"; t: number; lastSeq: number }
  | { type: "fatal"; t: number; msg: string };

/** Acknowledged: the panel answered 2xx. */
export const isAcked = (s: OpStatus) => typeof s === "number" && s >= 200 && s < 300;
/**
 * Indeterminate: the write may or may not have been applied (503, 5xx, no answer). 4xx answers
 * (401 session lost, 403 CSRF, 400) are refused before anything is written.
 */
export const isIndeterminate = (s: OpStatus) => typeof s !== "number" || s >= 500;

/** Sorted unique integers -> inclusive ranges. */
export function toRanges(values: Iterable<number>): Array<[number, number]> {
  const sorted = [...new Set(values)].sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  for (const v of sorted) {
    const last = out[out.length - 1];
    if (last && v === last[1] + 1) last[1] = v;
    else out.push([v, v]);
  }
  return out;
}

export function inRanges(ranges: ReadonlyArray<readonly [number, number]>, v: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = ranges[mid]!;
    if (v < a) hi = mid - 1;
    else if (v > b) lo = mid + 1;
    else return true;
  }
  return false;
}

/** "1-40,42,44-97": short text for seq lists in reports (at most `max` ranges). */
export function formatSeqs(values: Iterable<number>, max = 12): string {
  const r = toRanges(values);
  const text = r.slice(0, max).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(",");
  return r.length > max ? `${text},… (${r.length} ranges)` : text;
}

/** The runner's record of one fault. Times in ms since the epoch. */
export type FaultRecord = {
  index: number;
  kind: string;
  /** The node(s) hit, resolved when the fault started. */
  target: number | null;
  peer?: number;
  /** Who was master (single IP holder / agreed view) when the fault started. */
  masterBefore: number | null;
  injectedAt: number;
  healedAt: number | null;
  /** The cluster was healthy again (single master, every node a member, processes running). */
  recoveredAt: number | null;
  masterAfter: number | null;
  notes: string[];
  skipped?: string;
};

// MariaDB GTID positions ("domain-server-seq" lists), pure. A position holds, per replication
// domain, the last transaction applied; with gtid_strict_mode sequence numbers only grow.
export type Gtid = { domain: number; server: number; seq: number };
export type GtidPos = Map<number, Gtid>;

export function parseGtidPos(text: string): GtidPos {
  const pos: GtidPos = new Map();
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(part);
    if (!m) throw new Error(`not a GTID: "${part}" in "${text}"`);
    const g = { domain: Number(m[1]), server: Number(m[2]), seq: Number(m[3]) };
    if (!Number.isSafeInteger(g.seq)) throw new Error(`GTID sequence number too large: ${part}`);
    const had = pos.get(g.domain);
    if (!had || had.seq < g.seq) pos.set(g.domain, g);
  }
  return pos;
}

export function formatGtidPos(pos: GtidPos): string {
  return [...pos.values()]
    .sort((a, b) => a.domain - b.domain)
    .map((g) => `${g.domain}-${g.server}-${g.seq}`)
    .join(",");
}

/** Per domain, the later of the two (what a node has: binlog plus replicated). */
export function mergeGtidPos(...positions: GtidPos[]): GtidPos {
  const out: GtidPos = new Map();
  for (const p of positions) for (const g of p.values()) {
    const had = out.get(g.domain);
    if (!had || had.seq < g.seq) out.set(g.domain, g);
  }
  return out;
}

/** Does `a` include everything `b` has? (Equal seq from another server means they diverged.) */
export function containsPos(a: GtidPos, b: GtidPos): boolean {
  for (const g of b.values()) {
    const x = a.get(g.domain);
    if (!x || x.seq < g.seq || (x.seq === g.seq && x.server !== g.server)) return false;
  }
  return true;
}

/**
 * GTIDs a replica has that the primary cannot have: it is ahead in a domain, or at the same
 * sequence number with another server's transaction. (A replica that is behind but diverged is
 * caught by the primary when replication starts: error 1236.)
 */
export function errantGtids(replica: GtidPos, primary: GtidPos): Gtid[] {
  const out: Gtid[] = [];
  for (const g of replica.values()) {
    const p = primary.get(g.domain);
    if (!p || p.seq < g.seq || (p.seq === g.seq && p.server !== g.server)) out.push(g);
  }
  return out;
}

export const gtidText = (gs: Gtid[]) => gs.map((g) => `${g.domain}-${g.server}-${g.seq}`).join(",");

/**
 * The most advanced candidate: one whose position contains every other's. Candidates that are not
 * contained in it are returned as diverged. Ties go to `prefer` (no catch-up needed).
 */
export function mostAdvanced<T extends { nodeid: number; pos: GtidPos }>(cands: T[], prefer: number): { best: T; diverged: T[] } {
  if (cands.length === 0) throw new Error("no candidate positions");
  const total = (c: T) => [...c.pos.values()].reduce((s, g) => s + g.seq, 0);
  const sorted = [...cands].sort((a, b) => total(b) - total(a) || Number(b.nodeid === prefer) - Number(a.nodeid === prefer) || a.nodeid - b.nodeid);
  // Prefer a candidate that contains all others; else the largest total, the rest diverged from it.
  const best = sorted.find((c) => cands.every((o) => containsPos(c.pos, o.pos))) ?? sorted[0]!;
  const bestPreferred = cands.find((c) => c.nodeid === prefer && containsPos(c.pos, best.pos) && containsPos(best.pos, c.pos));
  const chosen = bestPreferred ?? best;
  return { best: chosen, diverged: cands.filter((c) => !containsPos(chosen.pos, c.pos)) };
}

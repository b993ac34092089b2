// Checker: at the end no node's database is left diverged or broken. Reads every node's mariadbd
// over its socket (as root, from the root namespace: lab/src/mariadb.ts connectNode) and expects:
// exactly one primary (read_only OFF), on the cluster's master; every other node a replica of it
// with both threads running and no error, nothing the primary lacks (errant GTIDs), caught up with
// it, and holding the same rows of this run as the primary. Waits up to timeoutMs for a lagging
// replica to catch up; what is still wrong then is reported.
import { connectNode, APP_DATABASE } from "../../mariadb.ts";
import type { Lab } from "../../lab.ts";
import { sleep } from "@ha/shared";

type Gtid = { domain: number; server: number; seq: number };
type Pos = Map<number, Gtid>;

export function parsePos(text: string): Pos {
  const out: Pos = new Map();
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [d, s, q] = part.split("-").map(Number);
    if ([d, s, q].some((x) => !Number.isFinite(x))) continue;
    const had = out.get(d!);
    if (!had || had.seq < q!) out.set(d!, { domain: d!, server: s!, seq: q! });
  }
  return out;
}
const merge = (a: Pos, b: Pos): Pos => {
  const out = new Map(a);
  for (const g of b.values()) if (!out.get(g.domain) || out.get(g.domain)!.seq < g.seq) out.set(g.domain, g);
  return out;
};
export const formatPos = (p: Pos) => [...p.values()].sort((a, b) => a.domain - b.domain).map((g) => `${g.domain}-${g.server}-${g.seq}`).join(",");
/** Everything in b is in a (the same seq from another server means they diverged). */
export const containsPos = (a: Pos, b: Pos) => [...b.values()].every((g) => {
  const x = a.get(g.domain);
  return !!x && (x.seq > g.seq || (x.seq === g.seq && x.server === g.server));
});
/** GTIDs of `node` that `primary` cannot have. */
export const errant = (node: Pos, primary: Pos) => [...node.values()].filter((g) => {
  const p = primary.get(g.domain);
  return !p || p.seq < g.seq || (p.seq === g.seq && p.server !== g.server);
});

export type NodeDb = {
  id: number;
  reachable: boolean;
  error?: string;
  readOnly?: boolean;
  pos?: string;
  replica?: { masterHost: string; io: string; sql: string; ioError: string; sqlError: string } | null;
  /** This run's user seqs on the node. */
  seqs?: number[];
};

export type ReplicaCheck = { primary: number | null; nodes: NodeDb[]; problems: Array<{ node: number | null; problem: string }>; waitedMs: number };

async function readNode(lab: Lab, id: number, seed: number): Promise<NodeDb & { p?: Pos }> {
  let c;
  try {
    c = await connectNode(lab, id);
  } catch (err) {
    return { id, reachable: false, error: (err as Error).message };
  }
  try {
    const q = async (sql: string, params: unknown[] = []) => (await c.query({ sql, timeout: 5000 }, params))[0] as Array<Record<string, unknown>>;
    const [v] = await q("SELECT @@global.read_only AS ro, @@global.gtid_binlog_pos AS b, @@global.gtid_slave_pos AS s");
    const [st] = await q("SHOW SLAVE STATUS");
    let seqs: number[] = [];
    try {
      const rows = await q(`SELECT username FROM \`${APP_DATABASE}\`.users WHERE username LIKE ?`, [`nem-${seed}-%`]);
      seqs = rows.map((r) => Number(/-(\d+)$/.exec(String(r.username))?.[1])).filter(Number.isFinite).sort((a, b) => a - b);
    } catch (err) {
      return { id, reachable: true, error: `cannot read ${APP_DATABASE}.users: ${(err as Error).message}` };
    }
    const p = merge(parsePos(String(v?.b ?? "")), parsePos(String(v?.s ?? "")));
    const replica = st && String(st.Master_Host ?? "") !== ""
      ? { masterHost: String(st.Master_Host), io: String(st.Slave_IO_Running), sql: String(st.Slave_SQL_Running), ioError: st.Last_IO_Errno ? `${st.Last_IO_Errno}: ${st.Last_IO_Error}` : "", sqlError: st.Last_SQL_Errno ? `${st.Last_SQL_Errno}: ${st.Last_SQL_Error}` : "" }
      : null;
    return { id, reachable: true, readOnly: Number(v?.ro) !== 0, pos: formatPos(p), p, replica, seqs };
  } catch (err) {
    return { id, reachable: false, error: `does not answer queries: ${(err as Error).message}` };
  } finally {
    await c.end().catch(() => undefined);
  }
}

function judge(lab: Lab, nodes: Array<NodeDb & { p?: Pos }>, master: number | null, acked: Set<number>): ReplicaCheck["problems"] {
  const problems: ReplicaCheck["problems"] = [];
  for (const n of nodes) if (!n.reachable || n.error) problems.push({ node: n.id, problem: n.error ?? "unreachable" });
  const primaries = nodes.filter((n) => n.reachable && n.readOnly === false);
  if (primaries.length === 0) return [...problems, { node: null, problem: "no primary (every reachable database is read-only)" }];
  if (primaries.length > 1) problems.push({ node: null, problem: `${primaries.length} primaries: ${primaries.map((n) => `n${n.id}`).join(", ")}` });
  const p = primaries.find((n) => n.id === master) ?? primaries[0]!;
  if (master !== null && p.id !== master) problems.push({ node: p.id, problem: `the primary is n${p.id} but the cluster's master is n${master}` });
  const addr = lab.topo.nodes.find((n) => n.id === p.id)!.ctlAddr;
  const pSeqs = new Set(p.seqs ?? []);
  for (const n of nodes) {
    if (!n.reachable || n.error || !n.p || !p.p) continue;
    const mine = new Set(n.seqs);
    const missingAcked = [...acked].filter((s) => !mine.has(s));
    if (missingAcked.length) problems.push({ node: n.id, problem: `lacks ${missingAcked.length} acknowledged writes` });
    if (n.id === p.id) continue;
    const r = n.replica;
    if (!r) problems.push({ node: n.id, problem: "not a replica (no replication configured)" });
    else {
      if (r.masterHost !== addr) problems.push({ node: n.id, problem: `replicates from ${r.masterHost}, not from the primary n${p.id} (${addr})` });
      if (r.io !== "Yes" || r.sql !== "Yes") problems.push({ node: n.id, problem: `replication not running (IO ${r.io}, SQL ${r.sql})${r.ioError ? ` IO error ${r.ioError}` : ""}${r.sqlError ? ` SQL error ${r.sqlError}` : ""}` });
    }
    const bad = errant(n.p, p.p);
    if (bad.length) problems.push({ node: n.id, problem: `diverged: errant GTIDs ${bad.map((g) => `${g.domain}-${g.server}-${g.seq}`).join(",")} (node ${n.pos}, primary ${p.pos})` });
    else if (!containsPos(n.p, p.p)) problems.push({ node: n.id, problem: `behind the primary (node ${n.pos}, primary ${p.pos})` });
    const extra = n.seqs!.filter((s) => !pSeqs.has(s));
    const lacking = [...pSeqs].filter((s) => !mine.has(s));
    if (extra.length || lacking.length) problems.push({ node: n.id, problem: `rows differ from the primary: ${extra.length} not on the primary, ${lacking.length} missing` });
  }
  return problems;
}

export async function checkReplicas(lab: Lab, o: { seed: number; master: number | null; acked: Iterable<number>; timeoutMs?: number }): Promise<ReplicaCheck> {
  const acked = new Set(o.acked);
  const t0 = Date.now();
  const deadline = t0 + (o.timeoutMs ?? 30_000);
  for (;;) {
    const nodes = await Promise.all(lab.topo.nodes.map((n) => readNode(lab, n.id, o.seed)));
    const problems = judge(lab, nodes, o.master, acked);
    if (problems.length === 0 || Date.now() >= deadline) {
      const primary = nodes.filter((n) => n.reachable && n.readOnly === false).map((n) => n.id);
      return {
        primary: primary.includes(o.master ?? -1) ? o.master : (primary[0] ?? null),
        nodes: nodes.map(({ p: _p, ...n }) => n),
        problems,
        waitedMs: Date.now() - t0,
      };
    }
    await sleep(1000);
  }
}

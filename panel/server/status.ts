// The agent's live view of the cluster, read from its status file (agent/src/effects/status-file.ts).
// The file is replaced atomically (rename), so it is polled rather than watched: a read every
// 200 ms of a few kB is cheap and keeps changes within 1 s of the agent writing them.
import { EventEmitter } from "node:events";
import { readFile } from "node:fs/promises";
import { z } from "zod";

const NodeStatus = z.enum(["leader", "member", "network_isolation", "storage_isolation", "full_failure", "excluded", "network_unstable", "unknown", "offline"]);

/** Mirrors the agent's NodeView; unknown extra fields pass through untouched. */
export const NodeView = z.looseObject({
  localNodeId: z.number().int(),
  now: z.number().optional(),
  selfStatus: z.string(),
  quorum: z.looseObject({ quorate: z.boolean().nullable(), have: z.number(), need: z.number(), members: z.array(z.number().int()) }),
  cpg: z.looseObject({ members: z.array(z.number().int()), synced: z.boolean(), term: z.number(), majority: z.boolean() }).optional(),
  master: z.number().int().nullable(),
  isMaster: z.boolean(),
  holdsClusterIp: z.boolean().optional(),
  panelRunning: z.boolean().optional(),
  lease: z.looseObject({ fresh: z.boolean(), ageMs: z.number().nullable(), ipSafeInMs: z.number() }).optional(),
  nodes: z.array(
    z.looseObject({
      nodeid: z.number().int(),
      addr: z.string().optional(),
      prio: z.number(),
      status: NodeStatus,
      isMaster: z.boolean(),
      reason: z.string(),
      /** May its database make it master (absent: not judged); why not. */
      dbEligible: z.boolean().optional(),
      dbReason: z.string().optional(),
    }),
  ),
  vms: z.array(z.looseObject({ vm: z.string(), owner: z.number().int().nullable(), epoch: z.number(), local: z.string().nullable(), note: z.string() })).default([]),
  reasons: z.array(z.string()).default([]),
});
export type NodeView = z.output<typeof NodeView>;

/** Mirrors the agent's DbHealthDoc (agent/src/effects/db/health.ts): the master's last reading of every node's database. */
export const DbHealth = z.looseObject({
  checkedAt: z.number(),
  nodes: z.array(
    z.looseObject({
      nodeid: z.number().int(),
      reachable: z.boolean(),
      role: z.string(),
      replication: z.string(),
      source: z.string().optional(),
      error: z.string().optional(),
      lagSeconds: z.number().nullable().optional(),
      gtid: z.string().optional(),
    }),
  ),
});
export type DbHealth = z.output<typeof DbHealth>;
export type DbNodeHealth = DbHealth["nodes"][number];

/** A `db` section the panel does not understand is dropped (the cluster view still counts). */
export const StatusDoc = z.looseObject({ pid: z.number().int(), writtenAt: z.number(), view: NodeView, db: DbHealth.optional().catch(undefined) });

/** What the panel knows about the cluster right now. `view` is null when the state is unknown. */
export type LiveStatus = {
  state: "live" | "stale" | "missing" | "invalid";
  /** Why it is not live, for people. */
  problem: string | null;
  writtenAt: number | null;
  view: NodeView | null;
  /** The databases' health as the agent last read it (absent: the agent has no database section). */
  db?: DbHealth;
};

export class StatusSource extends EventEmitter<{ change: [LiveStatus] }> {
  private current: LiveStatus = { state: "missing", problem: "no status read yet", writtenAt: null, view: null };
  private key = "";
  private timer: NodeJS.Timeout | null = null;
  /** The read under way, if any; reads never overlap. */
  private reading: Promise<void> | null = null;

  constructor(
    private readonly path: string,
    private readonly maxAgeMs = 5000,
    private readonly intervalMs = 200,
  ) {
    super();
  }

  get status(): LiveStatus {
    return this.current;
  }

  async start() {
    await this.poll();
    // A tick while a read is under way is skipped (a slow disk must not pile up reads).
    this.timer = setInterval(() => void (this.reading ?? this.poll()), this.intervalMs);
    this.timer.unref();
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Reads the file once; emits `change` when what it says (ignoring clocks) changed. The read starts
   * after the call: if one is under way (it may predate a write the caller just made), this waits
   * for it and reads again.
   */
  async poll(): Promise<void> {
    while (this.reading) await this.reading;
    this.reading = this.read()
      .then((s) => this.set(s))
      .finally(() => (this.reading = null));
    return this.reading;
  }

  private async read(): Promise<LiveStatus> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { state: "missing", problem: code === "ENOENT" ? `no agent status at ${this.path}: is corolistener running?` : `cannot read ${this.path}: ${code}`, writtenAt: null, view: null };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { state: "invalid", problem: `${this.path} is not JSON`, writtenAt: null, view: null };
    }
    const r = StatusDoc.safeParse(json);
    if (!r.success) return { state: "invalid", problem: `${this.path}: unexpected content (${r.error.issues[0]?.path.join(".")}: ${r.error.issues[0]?.message})`, writtenAt: null, view: null };
    const age = Date.now() - r.data.writtenAt;
    if (age > this.maxAgeMs) {
      return { state: "stale", problem: `the agent's status is ${Math.round(age / 1000)} s old: is corolistener running?`, writtenAt: r.data.writtenAt, view: r.data.view, ...(r.data.db ? { db: r.data.db } : {}) };
    }
    return { state: "live", problem: null, writtenAt: r.data.writtenAt, view: r.data.view, ...(r.data.db ? { db: r.data.db } : {}) };
  }

  private set(s: LiveStatus) {
    // Clocks change on every write; only a change of substance goes out to browsers.
    const v = s.view;
    const key = JSON.stringify([s.state, s.problem?.replace(/\d+ s old/, ""), v && { ...v, now: 0, lease: v.lease && { ...v.lease, ageMs: 0, ipSafeInMs: 0 } }, s.db?.nodes]);
    this.current = s;
    if (key === this.key) return;
    this.key = key;
    this.emit("change", s);
  }
}

/** null when changes may be made now; otherwise the reason they are refused. */
export function refuseChangesBecause(s: LiveStatus): string | null {
  if (s.state !== "live" || !s.view) return `changes are refused while the cluster state is unknown (${s.problem ?? s.state})`;
  const q = s.view.quorum;
  if (q.quorate !== true) return `the cluster has no quorum (${q.have} of ${q.need} votes needed): changes are refused until quorum is back`;
  return null;
}

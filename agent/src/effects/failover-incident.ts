// The failover incident: when this node takes the master role over from another node, it records
// one "failover" incident with the measured phases of the takeover, so the panel can show where
// the time went:
//
//   detection     last sign of the old master (its last CPG message here) -> membership without it
//   election      membership change -> this node decided it is master
//   IP move       election -> cluster IP assigned (includes waiting out the old master's lease)
//   DB promotion  PromoteDatabase issued -> the local database is writable
//   VM restarts   election -> every HA VM of the old master runs on another node (or why not)
//
// FailoverTracker is pure (it is told what happened, with wall-clock times) and assembleIncident
// turns its record into the incident row; FailoverIncidents adds the database writes. The row is
// inserted as soon as the database is writable (so the panel shows the failover at once) and
// updated once when the VM restarts are settled or `vmTimeoutMs` has passed.
import type { Connection } from "mysql2/promise";
import type { CoreAction, CoreEvent, NodeId, NodeView, VmSpec } from "../core/types.ts";

export type IncidentPhase = { name: string; at: string; ms?: number; ok: boolean; detail?: string };
export type FailoverIncidentRow = {
  kind: "failover";
  severity: "info" | "warning" | "error";
  nodeid: number;
  summary: string;
  reason: string;
  phases: IncidentPhase[];
};

/** A finished step: when, and whether it worked. */
type Outcome = { at: number; ok: boolean; error?: string };

/** What one takeover looked like from the new master (times are wall-clock ms). */
export type Takeover = {
  self: NodeId;
  oldMaster: NodeId;
  term: number;
  /** When the old master left the membership; null: it was still a member (a planned handover). */
  membershipAt: number | null;
  /** Its last CPG message seen here before that; null if this agent never heard from it. */
  lastSeenAt: number | null;
  electedAt: number;
  /** Why this node became master (the core's decisions in that step). */
  electionReason: string;
  ipIssuedAt: number | null;
  ip: Outcome | null;
  /** False when the agent has no database to promote (the phase is left out). */
  dbWanted: boolean;
  dbIssuedAt: number | null;
  db: Outcome | null;
  /** HA VMs the old master owned at the takeover: they must be restarted elsewhere. */
  vms: string[];
  vmStarted: Record<string, { at: number; node: NodeId }>;
  vmFailed: Record<string, string>;
  /** The master's latest note per pending VM (e.g. "waiting for n1 to be fenced"). */
  vmNotes: Record<string, string>;
  /** Set when the takeover ended early: this node lost the master role before it settled. */
  abortedAt: number | null;
};

const iso = (ms: number) => new Date(ms).toISOString();
const secs = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

/** The incident row for a takeover as it stands at `now`; `settled` says nothing is left to wait for. */
export function assembleIncident(t: Takeover, now: number, vmTimeoutMs: number): { row: FailoverIncidentRow; settled: boolean } {
  const timedOut = t.abortedAt !== null || now - t.electedAt >= vmTimeoutMs;
  const end = t.abortedAt ?? now;
  const phases: IncidentPhase[] = [];
  const old = `n${t.oldMaster}`;

  // detection
  if (t.membershipAt === null) {
    phases.push({ name: "detection", at: iso(t.electedAt), ms: 0, ok: true, detail: `planned handover: ${old} was still a member` });
  } else if (t.lastSeenAt === null) {
    phases.push({ name: "detection", at: iso(t.membershipAt), ok: true, detail: `${old} left the membership; no earlier message from it was seen here` });
  } else {
    const ms = Math.max(0, t.membershipAt - t.lastSeenAt);
    phases.push({ name: "detection", at: iso(t.lastSeenAt), ms, ok: true, detail: `last message from ${old} -> membership without it` });
  }

  // election
  const electionFrom = t.membershipAt ?? t.electedAt;
  phases.push({ name: "election", at: iso(electionFrom), ms: Math.max(0, t.electedAt - electionFrom), ok: true, detail: t.electionReason });

  // IP move: from the election, so the wait for the old master's lease counts.
  const pendingPhase = (name: string, from: number, what: string): IncidentPhase => ({ name, at: iso(from), ms: Math.max(0, end - from), ok: false, detail: `${what} after ${secs(end - from)}` });
  if (t.ip) {
    const lease = t.ipIssuedAt !== null ? `waited ${secs(t.ipIssuedAt - t.electedAt)} for the old lease, assigned in ${secs(t.ip.at - t.ipIssuedAt)}` : "";
    phases.push({ name: "IP move", at: iso(t.electedAt), ms: Math.max(0, t.ip.at - t.electedAt), ok: t.ip.ok, detail: t.ip.ok ? lease : `failed: ${t.ip.error ?? "unknown error"}` });
  } else if (timedOut) {
    phases.push(pendingPhase("IP move", t.electedAt, "cluster IP still not assigned"));
  }

  // DB promotion: from when it was asked for (together with the IP, after the lease).
  if (t.dbWanted) {
    const from = t.dbIssuedAt ?? t.electedAt;
    if (t.db) phases.push({ name: "DB promotion", at: iso(from), ms: Math.max(0, t.db.at - from), ok: t.db.ok, detail: t.db.ok ? "writable" : `failed: ${t.db.error ?? "unknown error"}` });
    else if (timedOut) phases.push(pendingPhase("DB promotion", from, "still not writable"));
  }

  // VM restarts
  const started = t.vms.filter((vm) => t.vmStarted[vm]);
  const failed = t.vms.filter((vm) => !t.vmStarted[vm] && t.vmFailed[vm] !== undefined);
  const pending = t.vms.filter((vm) => !t.vmStarted[vm] && t.vmFailed[vm] === undefined);
  const vmsSettled = pending.length === 0;
  if (t.vms.length === 0) {
    phases.push({ name: "VM restarts", at: iso(t.electedAt), ms: 0, ok: true, detail: `${old} ran no HA VMs` });
  } else if (vmsSettled || timedOut) {
    const lastStart = Math.max(t.electedAt, ...started.map((vm) => t.vmStarted[vm]!.at));
    const parts = [
      ...started.map((vm) => `${vm} on n${t.vmStarted[vm]!.node} after ${secs(t.vmStarted[vm]!.at - t.electedAt)}`),
      ...failed.map((vm) => `${vm} failed: ${t.vmFailed[vm]}`),
      ...pending.map((vm) => `${vm} still pending${t.vmNotes[vm] ? `: ${t.vmNotes[vm]}` : ""}`),
    ];
    const ok = failed.length === 0 && pending.length === 0;
    phases.push({ name: "VM restarts", at: iso(t.electedAt), ms: Math.max(0, (ok ? lastStart : end) - t.electedAt), ok, detail: `${started.length}/${t.vms.length} restarted; ${parts.join("; ")}` });
  }

  const ipDone = t.ip !== null;
  const dbDone = !t.dbWanted || t.db !== null;
  const settled = timedOut || (ipDone && dbDone && vmsSettled);
  const anyFailed = phases.some((p) => !p.ok);
  const headline = t.membershipAt === null ? `n${t.self} took over from ${old} (planned)` : `${old} failed; n${t.self} took over`;
  const ipPart = t.ip?.ok ? `cluster IP after ${secs(t.ip.at - (t.lastSeenAt ?? t.membershipAt ?? t.electedAt))}` : "";
  const vmPart = t.vms.length ? `${started.length}/${t.vms.length} VMs restarted${vmsSettled || timedOut ? "" : " so far"}` : "";
  const details = [ipPart, vmPart].filter(Boolean).join(", ");
  return {
    settled,
    row: {
      kind: "failover",
      severity: anyFailed ? "error" : t.membershipAt === null ? "info" : "warning",
      nodeid: t.self,
      summary: `${headline}${details ? ` (${details})` : ""}${t.abortedAt !== null ? "; lost the master role again" : ""}`,
      reason: `${t.membershipAt === null ? `${old} was still a member` : `${old} left the membership`}; ${t.electionReason}`,
      phases,
    },
  };
}

/** One step of the daemon, as the tracker sees it. */
export type StepObservation = { event: CoreEvent; actions: readonly CoreAction[]; decisions: ReadonlyArray<{ reason: string }>; view: NodeView; wall: number };

const reportRunning = (msg: unknown): string[] | null => {
  const m = msg as { kind?: unknown; running?: unknown } | null;
  return m && m.kind === "report" && Array.isArray(m.running) ? m.running.filter((v): v is string => typeof v === "string") : null;
};

/** Pure: follows the daemon's steps and keeps the record of the current (or last) takeover. */
export class FailoverTracker {
  private lastKnownMaster: NodeId | null = null;
  private readonly lastSeen = new Map<NodeId, number>();
  /** When the last known master left the membership (cleared when it is back). */
  private masterGoneAt: number | null = null;
  private lastSeenBeforeGone: number | null = null;
  private readonly running = new Map<NodeId, string[]>();
  private specs = new Map<string, VmSpec>();
  takeover: Takeover | null = null;
  /** Bumped whenever a new takeover starts (the effect writes one row per generation). */
  generation = 0;

  constructor(
    private readonly self: NodeId,
    private readonly dbWanted: boolean,
  ) {}

  observe({ event, actions, decisions, view, wall }: StepObservation): void {
    this.onEvent(event, wall);
    this.onView(view, decisions, wall);
    const t = this.active();
    if (!t) return;
    for (const a of actions) {
      if (a.type === "AssignClusterIp" && t.ipIssuedAt === null) t.ipIssuedAt = wall;
      if (a.type === "PromoteDatabase" && t.dbIssuedAt === null) t.dbIssuedAt = wall;
    }
  }

  /** The takeover still being followed (not aborted). */
  /**
   * The promotion reports when the database became writable; its action completes later (after
   * repointing the replicas), and that later time is not what clients wait for.
   */
  dbWritable(wall: number): void {
    const t = this.active();
    if (t && t.db === null && t.dbIssuedAt !== null) t.db = { at: Math.max(wall, t.dbIssuedAt), ok: true };
  }

  private active(): Takeover | null {
    return this.takeover && this.takeover.abortedAt === null ? this.takeover : null;
  }

  private onEvent(e: CoreEvent, wall: number) {
    const t = this.active();
    switch (e.type) {
      case "cpg-message": {
        this.lastSeen.set(e.from, wall);
        const running = reportRunning(e.msg);
        if (running) this.running.set(e.from, running);
        return;
      }
      case "cpg-membership":
      case "quorum": {
        // An empty list is this node losing corosync or quorum, not the master leaving.
        const m = this.lastKnownMaster;
        if (m === null || m === this.self || e.members.length === 0) return;
        if (e.members.includes(m)) {
          this.masterGoneAt = null;
        } else if (this.masterGoneAt === null) {
          this.masterGoneAt = wall;
          this.lastSeenBeforeGone = this.lastSeen.get(m) ?? null;
        }
        return;
      }
      case "vm-inventory":
        this.specs = new Map(e.vms.map((v) => [v.id, v]));
        return;
      case "action-result": {
        if (!t) return;
        const outcome: Outcome = { at: wall, ok: e.ok, ...(e.error ? { error: e.error } : {}) };
        if (e.action.type === "AssignClusterIp" && t.ip === null && t.ipIssuedAt !== null) t.ip = outcome;
        if (e.action.type === "PromoteDatabase" && t.db === null && t.dbIssuedAt !== null) t.db = outcome;
        if (e.action.type === "StartVm" && !e.ok && t.vms.includes(e.action.vm)) t.vmFailed[e.action.vm] = e.error ?? "start failed";
        return;
      }
    }
  }

  private onView(view: NodeView, decisions: ReadonlyArray<{ reason: string }>, wall: number) {
    const t = this.active();
    if (t && view.master !== null && view.master !== this.self) t.abortedAt = wall;
    if (view.isMaster && view.master === this.self && this.lastKnownMaster !== null && this.lastKnownMaster !== this.self) {
      const old = this.lastKnownMaster;
      const gone = this.masterGoneAt;
      this.generation++;
      this.takeover = {
        self: this.self,
        oldMaster: old,
        term: view.cpg.term,
        membershipAt: gone,
        lastSeenAt: gone === null ? null : this.lastSeenBeforeGone,
        electedAt: wall,
        electionReason: decisions.map((d) => d.reason).join("; ") || `n${this.self} is master`,
        ipIssuedAt: null,
        ip: null,
        dbWanted: this.dbWanted,
        dbIssuedAt: null,
        db: null,
        vms: view.vms
          .filter((v) => v.owner === old)
          .map((v) => v.vm)
          .filter((vm) => {
            const spec = this.specs.get(vm);
            return spec !== undefined && spec.ha && spec.storage === "shared" && spec.desired !== "stopped";
          }),
        vmStarted: {},
        vmFailed: {},
        vmNotes: {},
        abortedAt: null,
      };
    }
    if (view.master !== null) {
      if (view.master !== this.lastKnownMaster) this.masterGoneAt = null;
      this.lastKnownMaster = view.master;
    }
    const cur = this.active();
    if (!cur) return;
    for (const v of view.vms) {
      if (!cur.vms.includes(v.vm) || cur.vmStarted[v.vm]) continue;
      if (v.owner !== null && v.owner !== cur.oldMaster && this.running.get(v.owner)?.includes(v.vm)) cur.vmStarted[v.vm] = { at: wall, node: v.owner };
      else if (v.note) cur.vmNotes[v.vm] = v.note;
    }
  }
}

export type FailoverIncidentsOptions = {
  self: NodeId;
  /** Where incidents go: the local (primary) database. Null: nothing is recorded. */
  connect: (() => Promise<Connection>) | null;
  database: string;
  log: (level: "info" | "warn", msg: string, extra?: object) => void;
  /** How long to wait for the VM restarts before recording them as pending. */
  vmTimeoutMs?: number;
};

/** The effect: follows the steps and writes the takeover's incident row (insert, then one update). */
export class FailoverIncidents {
  readonly tracker: FailoverTracker;
  private readonly vmTimeoutMs: number;
  /** Per takeover generation: the row's id once inserted, and whether the final version is written. */
  private written: { generation: number; id: number | null; final: boolean } = { generation: 0, id: null, final: false };
  private busy = false;
  private retryAfter = 0;

  constructor(private readonly o: FailoverIncidentsOptions) {
    this.tracker = new FailoverTracker(o.self, o.connect !== null);
    this.vmTimeoutMs = o.vmTimeoutMs ?? 120_000;
  }

  observe(step: StepObservation) {
    this.tracker.observe(step);
    this.flush(step.wall);
  }

  private flush(now: number) {
    const t = this.tracker.takeover;
    if (!t || !this.o.connect || this.busy || now < this.retryAfter) return;
    if (this.written.generation !== this.tracker.generation) this.written = { generation: this.tracker.generation, id: null, final: false };
    if (this.written.final) return;
    // The row goes into the database this takeover promoted: wait until it is writable. A failed
    // promotion is recorded by DbEffects (as db-promotion-failed) instead.
    if (!t.db?.ok) return;
    const { row, settled } = assembleIncident(t, now, this.vmTimeoutMs);
    if (this.written.id !== null && !settled) return;
    const target = this.written;
    this.busy = true;
    this.write(target.id, row).then(
      (id) => {
        target.id = id;
        target.final = settled;
        this.o.log("info", settled ? `failover incident recorded: ${row.summary}` : `failover incident opened: ${row.summary}`, { phases: row.phases });
      },
      (err: Error) => {
        this.retryAfter = Date.now() + 2000;
        this.o.log("warn", `cannot record the failover incident (retrying): ${err.message}`);
      },
    ).finally(() => (this.busy = false));
  }

  private async write(id: number | null, row: FailoverIncidentRow): Promise<number> {
    const conn = await this.o.connect!();
    try {
      const db = `\`${this.o.database}\``;
      const values = [row.severity, row.summary.slice(0, 512), row.reason.slice(0, 2048), JSON.stringify(row.phases)];
      if (id !== null) {
        await conn.query(`UPDATE ${db}.incidents SET severity = ?, summary = ?, reason = ?, phases = ? WHERE id = ?`, [...values, id]);
        return id;
      }
      const [res] = await conn.query(`INSERT INTO ${db}.incidents (actor, kind, nodeid, severity, summary, reason, phases) VALUES (?, ?, ?, ?, ?, ?, ?)`, [
        `n${this.o.self}`,
        row.kind,
        row.nodeid,
        ...values,
      ]);
      return (res as { insertId: number }).insertId;
    } finally {
      await conn.end().catch(() => undefined);
    }
  }
}

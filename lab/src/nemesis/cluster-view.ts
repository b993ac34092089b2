// What every node's agent says, sampled throughout a nemesis run: its status file (the daemon's live
// view, /run/corolistener/status.json inside the node), read from the root namespace through
// /proc/<namespace holder>/root, so sampling spawns nothing. A view older than FRESH_MS (the daemon
// rewrites it at least every second) or of a dead daemon counts as no view.
import { readFileSync } from "node:fs";
import type { Lab } from "../lab.ts";

const FRESH_MS = 3000;

export type NodeViewSample = {
  id: number;
  master: number | null;
  isMaster: boolean;
  quorate: boolean | null;
  /** Status of every node as this node sees it (leader, member, full failure, ...). */
  statuses: Record<number, string>;
};

/** views: only the nodes whose daemon wrote a fresh view. */
export type ViewSample = { t: number; views: NodeViewSample[] };

type StatusDoc = {
  pid: number;
  writtenAt: number;
  view: { master: number | null; isMaster: boolean; quorum: { quorate: boolean | null }; nodes: Array<{ nodeid: number; status: string }> };
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Node `id`'s fresh view, or null (no daemon, a stale file, a paused daemon). */
export function readView(lab: Lab, id: number, now = Date.now()): NodeViewSample | null {
  try {
    const doc = JSON.parse(readFileSync(`/proc/${lab.anchorPid(id)}/root/run/corolistener/status.json`, "utf8")) as StatusDoc;
    if (now - doc.writtenAt > FRESH_MS || !alive(doc.pid)) return null;
    return {
      id,
      master: doc.view.master,
      isMaster: doc.view.isMaster,
      quorate: doc.view.quorum?.quorate ?? null,
      statuses: Object.fromEntries(doc.view.nodes.map((n) => [n.nodeid, n.status])),
    };
  } catch {
    return null; // absent, or replaced while read
  }
}

export class ClusterViewSampler {
  readonly samples: ViewSample[] = [];
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly lab: Lab, private readonly intervalMs = 250) {}

  sample(): ViewSample {
    const t = Date.now();
    const views = this.lab.topo.nodes.map((n) => readView(this.lab, n.id, t)).filter((v): v is NodeViewSample => v !== null);
    const s = { t, views };
    this.samples.push(s);
    return s;
  }

  start() {
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * The single master of a sample, or null: exactly one node holds the cluster IP, its own fresh view
 * says it is the master and is quorate, and no fresh view names another master.
 */
export function singleMaster(s: ViewSample, ipHolders: number[] | undefined): number | null {
  if (!ipHolders || ipHolders.length !== 1) return null;
  const m = ipHolders[0]!;
  const own = s.views.find((v) => v.id === m);
  if (!own || !own.isMaster || own.master !== m || own.quorate !== true) return null;
  return s.views.every((v) => v.master === null || v.master === m) ? m : null;
}

/** Every node has a fresh view naming `master`, and sees every node as leader or member (or unstable). */
export function allAgree(s: ViewSample, nodes: number[], master: number): boolean {
  if (s.views.length !== nodes.length) return false;
  const good = new Set(["leader", "member", "network_unstable"]);
  return s.views.every((v) => v.master === master && nodes.every((id) => good.has(v.statuses[id] ?? "")));
}

// The daemon's live view for `corolistener -l`, written atomically and only when it changed.
import { mkdirSync, renameSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { NodeView } from "../core/types.ts";
import type { DbHealthDoc } from "./db/health.ts";

/** `db`: the database watch's last reading of every node (absent without a database section). */
export type StatusDoc = { pid: number; writtenAt: number; view: NodeView; db?: DbHealthDoc };

export class StatusFile {
  private last = "";
  private lastWrite = 0;
  constructor(private readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }

  /** Writes when the view changed (ignoring the clock) or at least every second, so readers see it is live. */
  update(view: NodeView, db?: DbHealthDoc) {
    const key = JSON.stringify({ ...view, now: 0, lease: { ...view.lease, ageMs: 0, ipSafeInMs: 0 }, db: db?.nodes });
    if (key === this.last && Date.now() - this.lastWrite < 1000) return;
    this.last = key;
    this.lastWrite = Date.now();
    const doc: StatusDoc = { pid: process.pid, writtenAt: this.lastWrite, view, ...(db ? { db } : {}) };
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, JSON.stringify(doc));
    renameSync(tmp, this.path);
  }

  remove() {
    rmSync(this.path, { force: true });
  }
}

/** The daemon's view if it is running and wrote recently; null otherwise. */
export function readLiveStatus(path: string, maxAgeMs = 5000): StatusDoc | null {
  try {
    const doc = JSON.parse(readFileSync(path, "utf8")) as StatusDoc;
    if (Date.now() - doc.writtenAt > maxAgeMs) return null;
    process.kill(doc.pid, 0);
    return doc;
  } catch {
    return null;
  }
}

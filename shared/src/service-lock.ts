// The panel's service lock and "relocated" marker files (the VMmanager convention): the master holds
// the lock while it serves the panel; the marker tells a starting panel it moved here from another node.
import { rm, readFile } from "node:fs/promises";
import { writeFileAtomic } from "./fs/atomic-write.ts";

export type LockFiles = { serviceLockFile: string; relocatedMarkerFile: string };

export async function takeServiceLock(files: LockFiles, info: { nodeid: number; reason: "restarted" | "moved" }) {
  if (info.reason === "moved") await writeFileAtomic(files.relocatedMarkerFile, JSON.stringify({ from: "failover", at: new Date().toISOString() }));
  await writeFileAtomic(files.serviceLockFile, JSON.stringify({ nodeid: info.nodeid, pid: process.pid }));
}

export async function dropServiceLock(files: LockFiles) {
  await rm(files.serviceLockFile, { force: true });
}

/** Read by the panel at start: true (and the marker removed) when it moved here, false when restarted. */
export async function consumeRelocatedMarker(files: Pick<LockFiles, "relocatedMarkerFile">): Promise<boolean> {
  const moved = await readFile(files.relocatedMarkerFile, "utf8").then(() => true, () => false);
  if (moved) await rm(files.relocatedMarkerFile, { force: true });
  return moved;
}

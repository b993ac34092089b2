// The master keeps the DB's `vms` table and the VM records on the shared storage in step (the same
// pattern as node-sync.ts for nodes <-> corosync.conf):
//  - VMs defined on the shared storage (`corolistener vm define`) are inserted into the DB, and their
//    owner (`nodeid`) and state are refreshed every pass, so the panel lists them;
//  - an admin's change in the panel (ha, restart_priority in the DB) is written into the VM's record
//    on the shared storage, which is what every agent's core acts on;
//  - a change made outside the panel (the record rewritten with the CLI) is copied into the DB, so
//    the DB never reverts it;
//  - a VM created in the panel (`definition_state` 'pending', no record yet) gets its record written
//    (the same record `corolistener vm define` writes, but never over an existing file), then is
//    marked 'defined'; a definition the
//    record schema refuses, or a name already taken on the storage by another definition, is marked
//    'failed' with the reason. The row is never deleted by the agent.
// Other VMs only in the DB (no record) are left alone: the record is the definition the agents start.
// A node requested in the panel is only a hint: the core's placement has no "initial owner" input,
// so the master places a new VM like any other.
import { VmRecordSchema, type VmRecord } from "../cluster-metadata.ts";
import { assertWritable, rows, type SqlConn } from "./state.ts";

/** What the panel may edit on a VM. */
export type VmWanted = { ha: boolean; restartPriority: number };
/** A VM as the shared storage has it, with its current owner. */
export type StorageVm = VmWanted & {
  name: string;
  ramMb: number;
  vcpus: number;
  diskLocation: string;
  storage: "network" | "local";
  ip: string | null;
  owner: number | null;
  desired: "running" | "stopped";
};
export type DefinitionState = "pending" | "defined" | "failed";
export type DbVm = VmWanted & {
  nodeid: number | null;
  state: string;
  definitionState: DefinitionState;
  /** The definition as the panel stored it (used while it is pending). */
  ramMb: number;
  vcpus: number;
  diskLocation: string;
  storage: "network" | "local";
  ip: string | null;
};

const key = (w: VmWanted) => `${w.ha}/${w.restartPriority}`;

export type VmSyncPlan = {
  /** On the storage, not in the DB. */
  insert: StorageVm[];
  /** Changed outside the panel: the DB takes the storage's values. */
  copyToDb: StorageVm[];
  /** Edited in the panel: the storage record takes the DB's values. */
  writeToStorage: Array<{ name: string } & VmWanted>;
  /** Owner or state to refresh in the DB. */
  live: Array<{ name: string; nodeid: number | null; state: "running" | "stopped" }>;
  /** Created in the panel: write this record to the storage, then mark the row defined. */
  define: VmRecord[];
  /** Pending rows whose identical record is already on the storage (written by an earlier pass). */
  markDefined: string[];
  /** Pending rows that can never be defined as they are: mark them failed with the reason. */
  fail: Array<{ name: string; reason: string }>;
};

/** The DB's state for a VM: running when it has an owner and should run. */
export const liveStateOf = (v: StorageVm): "running" | "stopped" => (v.owner !== null && v.desired === "running" ? "running" : "stopped");

/**
 * Pure decision of one pass. `applied`: per VM, the ha/prio values last known to be the same in the
 * DB and on the storage (read, not changed). A DB row that differs from `applied` is an admin's edit;
 * a storage record that differs is a change made outside the panel. The caller records a VM's new
 * applied value (`appliedAfter`) only once its write succeeded.
 */
export function vmSyncDecisions(storage: StorageVm[], db: Map<string, DbVm>, applied: ReadonlyMap<string, string>): VmSyncPlan & { appliedAfter: Map<string, string> } {
  const plan: VmSyncPlan = { insert: [], copyToDb: [], writeToStorage: [], live: [], define: [], markDefined: [], fail: [] };
  const appliedAfter = new Map<string, string>();
  const onStorageNames = new Set(storage.map((v) => v.name));
  for (const [name, row] of db) {
    if (row.definitionState !== "pending" || onStorageNames.has(name)) continue;
    const r = recordOfRow(name, row);
    if (r.ok) plan.define.push(r.record);
    else plan.fail.push({ name, reason: r.reason });
  }
  for (const v of storage) {
    const row = db.get(v.name);
    const onStorage = key(v);
    if (!row) {
      plan.insert.push(v);
      appliedAfter.set(v.name, onStorage);
      continue;
    }
    // A failed panel definition keeps its name until an admin removes the row; a record of that
    // name (defined with the CLI) is not synced into someone else's row.
    if (row.definitionState === "failed") continue;
    if (row.definitionState === "pending") {
      // Our own write from an earlier pass (the row's update was lost), or the same VM defined with
      // the CLI: either way the record is what the admin asked for.
      if (sameDefinition(v, row)) plan.markDefined.push(v.name);
      else {
        plan.fail.push({ name: v.name, reason: `a VM named ${v.name} is already defined on the shared storage with a different definition (${summary(v)}); remove this row or choose another name` });
        continue;
      }
    }
    // First sight (a new master): what the agents run with is what was applied. A row that differs
    // is an admin's edit not applied yet (made just now, or before the old master could).
    const known = applied.get(v.name) ?? onStorage;
    if (key(row) !== known) {
      if (key(row) !== onStorage) plan.writeToStorage.push({ name: v.name, ha: row.ha, restartPriority: row.restartPriority });
      appliedAfter.set(v.name, key(row));
    } else if (onStorage !== known) {
      plan.copyToDb.push(v);
      appliedAfter.set(v.name, onStorage);
    } else if (!applied.has(v.name)) {
      appliedAfter.set(v.name, onStorage);
    }
    const state = liveStateOf(v);
    if (row.nodeid !== v.owner || row.state !== state) plan.live.push({ name: v.name, nodeid: v.owner, state });
  }
  return { ...plan, appliedAfter };
}

/** Pure: the record `corolistener vm define` would write for a panel row, or why there is none. */
export function recordOfRow(name: string, row: DbVm): { ok: true; record: VmRecord } | { ok: false; reason: string } {
  const r = VmRecordSchema.safeParse({
    definition: { name, ramMb: row.ramMb, vcpus: row.vcpus, disk: { kind: row.storage, path: row.diskLocation }, ...(row.ip ? { ip: row.ip } : {}), ha: row.ha },
    restartPriority: row.restartPriority,
  });
  if (r.success) return { ok: true, record: r.data };
  const issues = r.error.issues.map((i) => `${i.path.join(".") || "(record)"}: ${i.message}`).join("; ");
  return { ok: false, reason: `the shared storage refuses this definition: ${issues}` };
}

/** Same VM? HA and restart priority are left out: they are editable and synced like any VM's. */
const sameDefinition = (v: StorageVm, row: DbVm) =>
  v.ramMb === row.ramMb && v.vcpus === row.vcpus && v.diskLocation === row.diskLocation && v.storage === row.storage && v.ip === row.ip;

const summary = (v: StorageVm) => `${v.ramMb} MB, ${v.vcpus} vCPU, ${v.storage}:${v.diskLocation}${v.ip ? `, ${v.ip}` : ""}${v.ha ? ", HA" : ""}`;

/** Pure: a shared-storage record as the sync sees it. */
export function storageVmOf(r: VmRecord, owner: number | null): StorageVm {
  const d = r.definition;
  return {
    name: d.name,
    ramMb: d.ramMb,
    vcpus: d.vcpus,
    diskLocation: d.disk.path,
    storage: d.disk.kind,
    ip: d.ip ?? null,
    ha: d.ha ?? false,
    restartPriority: r.restartPriority,
    owner,
    desired: r.desired,
  };
}

/** What the sync needs from the shared storage (ClusterMetadata). */
export type VmStore = {
  readRecords(): Promise<VmRecord[]>;
  owner(vm: string): Promise<{ node: number | null } | null>;
  setHaSettings(vm: string, wanted: VmWanted): Promise<void>;
  /** Writes a new record, the one `corolistener vm define` writes; EEXIST if the name is taken (ClusterMetadata.createVm). */
  createVm(record: VmRecord): Promise<void>;
};

/** What one pass did, for the log. */
export type VmSyncResult = {
  written: Array<{ name: string } & VmWanted>;
  defined: string[];
  failed: Array<{ name: string; reason: string }>;
};

export class VmSync {
  private readonly applied = new Map<string, string>();
  constructor(
    private readonly connect: () => Promise<SqlConn>,
    private readonly database: string,
    private readonly store: VmStore,
  ) {}

  /** One pass on the master. Returns the VMs whose record it changed (for the log). */
  async pass(): Promise<VmSyncResult> {
    const records = await this.store.readRecords();
    const storage: StorageVm[] = [];
    for (const r of records) storage.push(storageVmOf(r, (await this.store.owner(r.definition.name))?.node ?? null));
    const c = await this.connect();
    try {
      await assertWritable(c, "vm sync"); // the master's DB may still be read-only while it is promoted
      const t = `\`${this.database}\`.vms`;
      const nodesTable = `\`${this.database}\`.nodes`;
      const db = new Map<string, DbVm>();
      for (const r of await rows(c, `SELECT name, ha, restart_priority, nodeid, state, definition_state, ram_mb, vcpus, disk_location, storage, ip FROM ${t}`)) {
        db.set(String(r["name"]), {
          ha: Boolean(Number(r["ha"])),
          restartPriority: Number(r["restart_priority"]),
          nodeid: r["nodeid"] === null ? null : Number(r["nodeid"]),
          state: String(r["state"]),
          definitionState: r["definition_state"] === "pending" || r["definition_state"] === "failed" ? r["definition_state"] : "defined",
          ramMb: Number(r["ram_mb"]),
          vcpus: Number(r["vcpus"]),
          diskLocation: String(r["disk_location"]),
          storage: r["storage"] === "local" ? "local" : "network",
          ip: r["ip"] === null ? null : String(r["ip"]),
        });
      }
      const plan = vmSyncDecisions(storage, db, this.applied);
      const commit = (name: string) => plan.appliedAfter.has(name) && this.applied.set(name, plan.appliedAfter.get(name)!);
      // An owner the DB does not know yet (node-sync inserts nodes) is stored as "not placed".
      const ownerSql = `(SELECT nodeid FROM ${nodesTable} WHERE nodeid = ?)`;
      for (const v of plan.insert) {
        await rows(c, `INSERT INTO ${t} (name, nodeid, ram_mb, vcpus, disk_location, storage, ha, restart_priority, state, ip) VALUES (?, ${ownerSql}, ?, ?, ?, ?, ?, ?, ?, ?)`, [
          // The DB refuses HA for a local-disk VM (it cannot run elsewhere); so does the core.
          v.name, v.owner, v.ramMb, v.vcpus, v.diskLocation, v.storage, v.ha && v.storage === "network", v.restartPriority, liveStateOf(v), v.ip,
        ]);
        commit(v.name);
      }
      for (const v of plan.copyToDb) {
        await rows(c, `UPDATE ${t} SET ha = ?, restart_priority = ? WHERE name = ?`, [v.ha && v.storage === "network", v.restartPriority, v.name]);
        commit(v.name);
      }
      for (const w of plan.writeToStorage) {
        await this.store.setHaSettings(w.name, { ha: w.ha, restartPriority: w.restartPriority });
        commit(w.name);
      }
      for (const name of plan.appliedAfter.keys()) commit(name); // every write went through
      for (const l of plan.live) await rows(c, `UPDATE ${t} SET nodeid = ${ownerSql}, state = ? WHERE name = ?`, [l.nodeid, l.state, l.name]);
      // Panel-created VMs. Only a row still pending is changed (an admin may have removed it).
      const setDefinition = (name: string, state: DefinitionState, error: string | null) =>
        rows(c, `UPDATE ${t} SET definition_state = ?, definition_error = ? WHERE name = ? AND definition_state = 'pending'`, [state, error?.slice(0, 1024) ?? null, name]);
      const defined: string[] = [...plan.markDefined];
      const failed = [...plan.fail];
      for (const name of plan.markDefined) await setDefinition(name, "defined", null);
      for (const f of plan.fail) await setDefinition(f.name, "failed", f.reason);
      for (const record of plan.define) {
        const name = record.definition.name;
        try {
          await this.store.createVm(record);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EEXIST") {
            // Defined meanwhile (the CLI), or a record file the agents cannot read: not ours to replace.
            const reason = `a VM named ${name} already exists on the shared storage (defined outside the panel, or an unreadable record); remove this row or choose another name`;
            await setDefinition(name, "failed", reason);
            failed.push({ name, reason });
            continue;
          }
          // The storage could not be written (unmounted, full...): the row stays pending and the next
          // pass tries again; the reason shows in the panel meanwhile.
          await setDefinition(name, "pending", `not written to the shared storage yet (retrying): ${(err as Error).message}`);
          continue;
        }
        await setDefinition(name, "defined", null);
        defined.push(name);
      }
      return { written: plan.writeToStorage, defined, failed };
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** A new master starts from the shared storage again. */
  reset() {
    this.applied.clear();
  }
}

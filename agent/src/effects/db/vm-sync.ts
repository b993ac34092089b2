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
//    marked 'defined'; a definition the record schema refuses, or a name already taken on the
//    storage by another definition, is marked 'failed' with the reason. The row is never deleted by
//    the agent.
// Other VMs only in the DB (no record) are left alone: the record is the definition the agents start.
//
// A node requested in the panel (`requested_nodeid`) is where the VM starts if that node can take it
// right now, by the master's view: requestedNodeVerdict() in core/placement.ts (a good member,
// 'member' or 'leader'; not in maintenance; enough free RAM by placement's rule; a reserve node is
// accepted since the admin named it). Then the master writes the VM's ownership record (that node,
// epoch 1, compare-and-set: a fresh VM has none) BEFORE its record. Every agent reads the records
// before the owners (ClusterMetadata.read), so no core ever sees the VM without its owner, and the
// master's placement never chooses another node first. If the node cannot take it, no owner is
// written: placement chooses like for a CLI-defined VM, and the row, marked 'defined', keeps a note
// in `definition_error` ("n3 could not take it (in maintenance): placed by the cluster"), which
// the panel shows as a note, not as an error.
//
// Crash safety: the agent may die between the owner and the record. The next pass (this master or
// the next) finds an ownership record for a pending row without a record and writes the record; it
// never writes a second owner (whatever owner is there stays: the core handles it like any owner,
// with its proofs, if that node is gone meanwhile). Until then the core ignores the lone owner
// record: it places and starts only VMs that have a record (the VM table is built from records;
// local-vms starts nothing without a spec), so an owner without a VM only shows in `corolistener -l`.
// An ownership record whose VM has no record and no pending row (the row was deleted by hand, a
// record removed by hand) is logged once per master as a warning, never removed (only the core
// changes owners, epochs only grow).
import { VmRecordSchema, type VmRecord } from "../cluster-metadata.ts";
import { ramOwnedByNode, requestedNodeVerdict, type RequestedNodeFacts } from "../../core/placement.ts";
import type { NodeView, Ownership } from "../../core/types.ts";
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
  /** The node the admin asked for in the panel (a pending row's start node if it can take it). */
  requestedNodeid: number | null;
};

/** What the master's core sees (its NodeView): nodes with status, maintenance, reserve and RAM; VM owners. */
export type ClusterFacts = {
  nodes: readonly RequestedNodeFacts[];
  owners: ReadonlyArray<{ vm: string; owner: number | null }>;
};
/** Pure: the facts a pass needs from the core's view. */
export const clusterFactsOf = (view: Pick<NodeView, "nodes" | "vms">): ClusterFacts => ({ nodes: view.nodes, owners: view.vms });
const NO_FACTS: ClusterFacts = { nodes: [], owners: [] };

/** An ownership record as stored (owners/<vm>.json). */
export type OwnerRecord = { node: number | null; epoch: number };

/** A panel VM to define: its owner (written first, epoch 1) when the requested node takes it, else a note. */
export type DefineStep = { record: VmRecord; owner: number | null; note: string | null };

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
  /**
   * Created in the panel: write the owner (if any, epoch 1), then this record, then mark the row
   * defined with the note.
   */
  define: DefineStep[];
  /** Pending rows whose identical record is already on the storage (written by an earlier pass). */
  markDefined: string[];
  /** Pending rows that can never be defined as they are: mark them failed with the reason. */
  fail: Array<{ name: string; reason: string }>;
  /** Ownership records without a VM record and without a pending row: logged, never removed. */
  orphanOwners: Array<{ name: string } & OwnerRecord>;
};

/** The DB's state for a VM: running when it has an owner and should run. */
export const liveStateOf = (v: StorageVm): "running" | "stopped" => (v.owner !== null && v.desired === "running" ? "running" : "stopped");

/**
 * Pure decision of one pass. `applied`: per VM, the ha/prio values last known to be the same in the
 * DB and on the storage (read, not changed). A DB row that differs from `applied` is an admin's edit;
 * a storage record that differs is a change made outside the panel. The caller records a VM's new
 * applied value (`appliedAfter`) only once its write succeeded. `cluster`: the master's view, for
 * requested nodes; `owners`: every ownership record on the storage (read after the VM records).
 */
export function vmSyncDecisions(
  storage: StorageVm[],
  db: Map<string, DbVm>,
  applied: ReadonlyMap<string, string>,
  cluster: ClusterFacts = NO_FACTS,
  owners: ReadonlyMap<string, OwnerRecord> = new Map(),
): VmSyncPlan & { appliedAfter: Map<string, string> } {
  const plan: VmSyncPlan = { insert: [], copyToDb: [], writeToStorage: [], live: [], define: [], markDefined: [], fail: [], orphanOwners: [] };
  const appliedAfter = new Map<string, string>();
  const onStorageNames = new Set(storage.map((v) => v.name));
  // RAM per node as placement counts it; each VM given to a requested node in this pass adds to it.
  const used = ramOwnedByNode(cluster.owners, storage.map((v) => ({ id: v.name, ramMb: v.ramMb, desired: v.desired })));
  for (const [name, row] of [...db].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (row.definitionState !== "pending" || onStorageNames.has(name)) continue;
    const r = recordOfRow(name, row);
    if (!r.ok) {
      plan.fail.push({ name, reason: r.reason });
      continue;
    }
    const step = defineStep(name, row, r.record, cluster, used, owners.get(name));
    if (step.owner !== null) used.set(step.owner, (used.get(step.owner) ?? 0) + row.ramMb);
    plan.define.push(step);
  }
  for (const [name, o] of owners) {
    if (!onStorageNames.has(name) && db.get(name)?.definitionState !== "pending") plan.orphanOwners.push({ name, ...o });
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

/**
 * Pure: how a pending row without a record is defined. An ownership record already there (our own
 * write from a pass that died before the VM record, or a leftover) is kept as it is: no second
 * owner is written, only the record. Otherwise the requested node gets the VM (owner written first)
 * if it can take it now; if not, placement chooses and the note says why.
 */
export function defineStep(name: string, row: DbVm, record: VmRecord, cluster: ClusterFacts, used: ReadonlyMap<number, number>, existing: OwnerRecord | undefined): DefineStep {
  const req = row.requestedNodeid;
  if (existing !== undefined) {
    const who = existing.node === null ? "no node" : `n${existing.node}`;
    const note = existing.node !== null && existing.node === req ? null : `an ownership record was already on the shared storage (${who}, epoch ${existing.epoch}): the cluster keeps it${req !== null ? ` (n${req} was requested)` : ""}`;
    return { record, owner: null, note };
  }
  if (req === null) return { record, owner: null, note: null };
  const v = requestedNodeVerdict({ id: name, ramMb: row.ramMb }, req, cluster.nodes, used);
  return v.ok ? { record, owner: req, note: null } : { record, owner: null, note: `n${req} could not take it (${v.why}): placed by the cluster` };
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
  /** Every ownership record (read after the VM records). */
  owners(): Promise<Ownership[]>;
  /** Compare-and-set by epoch (ClusterMetadata.setOwner): a fresh VM's owner at epoch 1. */
  setOwner(o: Ownership): Promise<void>;
  setHaSettings(vm: string, wanted: VmWanted): Promise<void>;
  /** Writes a new record, the one `corolistener vm define` writes; EEXIST if the name is taken (ClusterMetadata.createVm). */
  createVm(record: VmRecord): Promise<void>;
};

/** What one pass did, for the log. */
export type VmSyncResult = {
  written: Array<{ name: string } & VmWanted>;
  /** Panel VMs now defined: `owner` = the requested node given the VM (else placement chooses); `note` as stored in the row. */
  defined: Array<{ name: string; owner: number | null; note: string | null }>;
  failed: Array<{ name: string; reason: string }>;
  /** Things to log as warnings (ownership records without a VM). */
  warnings: string[];
};

export class VmSync {
  private readonly applied = new Map<string, string>();
  /** Orphan ownership records already logged by this master. */
  private readonly orphansLogged = new Set<string>();
  constructor(
    private readonly connect: () => Promise<SqlConn>,
    private readonly database: string,
    private readonly store: VmStore,
  ) {}

  /**
   * One pass on the master. `cluster`: the facts of the master's core view (clusterFactsOf), taken
   * when the pass starts; a requested node is judged by them. Returns what it changed (for the log).
   */
  async pass(cluster: ClusterFacts = NO_FACTS): Promise<VmSyncResult> {
    const records = await this.store.readRecords();
    // Owners after records: an owner written before its record (below) is always seen with it.
    const ownerRecords = new Map((await this.store.owners()).map((o) => [o.vm, { node: o.node, epoch: o.epoch }]));
    const storage = records.map((r) => storageVmOf(r, ownerRecords.get(r.definition.name)?.node ?? null));
    const c = await this.connect();
    try {
      await assertWritable(c, "vm sync"); // the master's DB may still be read-only while it is promoted
      const t = `\`${this.database}\`.vms`;
      const nodesTable = `\`${this.database}\`.nodes`;
      const db = new Map<string, DbVm>();
      for (const r of await rows(c, `SELECT name, ha, restart_priority, nodeid, state, definition_state, ram_mb, vcpus, disk_location, storage, ip, requested_nodeid FROM ${t}`)) {
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
          requestedNodeid: r["requested_nodeid"] === null || r["requested_nodeid"] === undefined ? null : Number(r["requested_nodeid"]),
        });
      }
      const plan = vmSyncDecisions(storage, db, this.applied, cluster, ownerRecords);
      const warnings: string[] = [];
      for (const o of plan.orphanOwners) {
        if (this.orphansLogged.has(o.name)) continue;
        this.orphansLogged.add(o.name);
        warnings.push(`the shared storage has an ownership record for ${o.name} (${o.node === null ? "no node" : `n${o.node}`}, epoch ${o.epoch}) but no VM record and no pending panel row: the cluster ignores it; left in place`);
      }
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
      const defined: VmSyncResult["defined"] = plan.markDefined.map((name) => ({ name, owner: null, note: null }));
      const failed = [...plan.fail];
      for (const name of plan.markDefined) await setDefinition(name, "defined", null);
      for (const f of plan.fail) await setDefinition(f.name, "failed", f.reason);
      for (const { record, owner, note } of plan.define) {
        const name = record.definition.name;
        if (owner !== null) {
          // First the owner, then the record: no core ever sees this VM without its owner. If we die
          // in between, the next pass finds the owner and writes only the record (defineStep).
          try {
            await this.store.setOwner({ vm: name, node: owner, epoch: 1 });
          } catch (err) {
            // Written meanwhile by someone else, or the storage failed: the next pass looks again.
            await setDefinition(name, "pending", `n${owner}'s ownership record not written yet (retrying): ${(err as Error).message}`);
            continue;
          }
        }
        try {
          await this.store.createVm(record);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EEXIST") {
            // Defined meanwhile (the CLI), or a record file the agents cannot read: not ours to replace.
            const reason = `a VM named ${name} already exists on the shared storage (defined outside the panel, or an unreadable record); remove this row or choose another name`;
            await setDefinition(name, "failed", reason);
            failed.push({ name, reason });
            // No core placed it before our owner was written (cores learn records only from the
            // inventory read, which does not run during this pass), so that VM starts on n<owner>.
            if (owner !== null) warnings.push(`the ownership record written for the panel's ${name} (n${owner}, epoch 1) now applies to the VM of that name defined outside the panel`);
            continue;
          }
          // The storage could not be written (unmounted, full...): the row stays pending and the next
          // pass tries again (an owner already written is kept); the reason shows in the panel meanwhile.
          await setDefinition(name, "pending", `not written to the shared storage yet (retrying): ${(err as Error).message}`);
          continue;
        }
        await setDefinition(name, "defined", note);
        defined.push({ name, owner, note });
      }
      return { written: plan.writeToStorage, defined, failed, warnings };
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** A new master starts from the shared storage again. */
  reset() {
    this.applied.clear();
    this.orphansLogged.clear();
  }
}

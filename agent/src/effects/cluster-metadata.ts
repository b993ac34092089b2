// Cluster metadata on the shared storage: VM definitions and VM ownership (vm, node, epoch).
// Only the master changes ownership, always with a higher epoch; a node starts a VM only while the
// record names it with the epoch it was told (a fencing token that outlives any stale master).
import { link, mkdir, open, readdir, readFile, rm } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { writeFileAtomic } from "@ha/shared";
import { VmDefinitionSchema, type VmDefinition } from "./vm/driver.ts";
import type { Ownership, VmSpec } from "../core/types.ts";

export const VmRecordSchema = z.object({
  definition: VmDefinitionSchema,
  restartPriority: z.number().int().default(0),
  desired: z.enum(["running", "stopped"]).default("running"),
});
export type VmRecord = z.infer<typeof VmRecordSchema>;

const CapacitySchema = z.object({ nodeid: z.number().int().positive(), ramMb: z.number().int().nonnegative(), vcpus: z.number().int().nonnegative() });
export type Capacity = z.infer<typeof CapacitySchema>;

const OwnershipSchema = z.object({ vm: z.string(), node: z.number().int().positive().nullable(), epoch: z.number().int().nonnegative() });

/** The core's view of a VM record (pure). */
export function vmSpecOf(r: VmRecord): VmSpec {
  const d = r.definition;
  return { id: d.name, ramMb: d.ramMb, ha: d.ha ?? false, storage: d.disk.kind === "network" ? "shared" : "local", restartPriority: r.restartPriority, desired: r.desired };
}

export type Inventory = { vms: VmSpec[]; owners: Ownership[]; definitions: Map<string, VmDefinition>; invalid: string[] };

export class ClusterMetadata {
  private readonly vmsDir: string;
  private readonly ownersDir: string;
  private readonly capacityDir: string;
  constructor(storageDir: string) {
    this.vmsDir = join(storageDir, "cluster", "vms");
    this.ownersDir = join(storageDir, "cluster", "owners");
    this.capacityDir = join(storageDir, "cluster", "capacity");
  }

  /** Each node publishes what it can give VMs, so the master's placement respects RAM. */
  async writeCapacity(c: Capacity): Promise<void> {
    await mkdir(this.capacityDir, { recursive: true });
    await writeFileAtomic(join(this.capacityDir, `node-${c.nodeid}.json`), JSON.stringify(CapacitySchema.parse(c)));
  }

  async readCapacities(): Promise<Map<number, Capacity>> {
    const { items } = await this.readJsonDir(this.capacityDir, CapacitySchema);
    return new Map(items.map((c) => [c.nodeid, c]));
  }

  private async readJsonDir<T>(dir: string, schema: z.ZodType<T>): Promise<{ items: T[]; invalid: string[] }> {
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".json"));
    const items: T[] = [];
    const invalid: string[] = [];
    for (const name of names) {
      const r = schema.safeParse(await readFile(join(dir, name), "utf8").then(JSON.parse).catch(() => null));
      if (r.success) items.push(r.data);
      else invalid.push(join(dir, name));
    }
    return { items, invalid };
  }

  async read(): Promise<Inventory> {
    const vms = await this.readJsonDir(this.vmsDir, VmRecordSchema);
    const owners = await this.readJsonDir(this.ownersDir, OwnershipSchema);
    return {
      vms: vms.items.map(vmSpecOf),
      owners: owners.items,
      definitions: new Map(vms.items.map((r) => [r.definition.name, r.definition])),
      invalid: [...vms.invalid, ...owners.invalid],
    };
  }

  async defineVm(record: z.input<typeof VmRecordSchema>): Promise<void> {
    const r = VmRecordSchema.parse(record);
    await mkdir(this.vmsDir, { recursive: true });
    await writeFileAtomic(join(this.vmsDir, `${r.definition.name}.json`), JSON.stringify(r, null, 2));
  }

  /**
   * Like defineVm, but never replaces an existing record (not even an unreadable one): the file
   * appears complete or not at all (written aside, then hard-linked into place, which fails with
   * EEXIST when the name is taken). The master uses it for VMs created in the panel.
   */
  async createVm(record: z.input<typeof VmRecordSchema>): Promise<void> {
    const r = VmRecordSchema.parse(record);
    await mkdir(this.vmsDir, { recursive: true });
    const file = join(this.vmsDir, `${r.definition.name}.json`);
    const tmp = join(this.vmsDir, `.${r.definition.name}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    try {
      const h = await open(tmp, "wx", 0o644);
      try {
        await h.writeFile(JSON.stringify(r, null, 2));
        await h.sync();
      } finally {
        await h.close();
      }
      await link(tmp, file);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** The valid VM records as stored (the master's DB sync compares them with the panel's edits). */
  async readRecords(): Promise<VmRecord[]> {
    return (await this.readJsonDir(this.vmsDir, VmRecordSchema)).items;
  }

  /** The panel's edits, applied by the master (effects/db/vm-sync.ts): HA flag and restart priority. */
  async setHaSettings(vm: string, wanted: { ha: boolean; restartPriority: number }): Promise<void> {
    const file = join(this.vmsDir, `${vm}.json`);
    const r = VmRecordSchema.parse(JSON.parse(await readFile(file, "utf8")));
    const next: VmRecord = { ...r, definition: { ...r.definition, ha: wanted.ha }, restartPriority: wanted.restartPriority };
    await writeFileAtomic(file, JSON.stringify(next, null, 2));
  }

  /** One VM's definition (a start reads only its own record, not the whole inventory). */
  async definition(vm: string): Promise<VmDefinition | null> {
    const r = VmRecordSchema.safeParse(await readFile(join(this.vmsDir, `${vm}.json`), "utf8").then(JSON.parse).catch(() => null));
    return r.success ? r.data.definition : null;
  }

  async owner(vm: string): Promise<Ownership | null> {
    const r = OwnershipSchema.safeParse(await readFile(join(this.ownersDir, `${vm}.json`), "utf8").then(JSON.parse).catch(() => null));
    return r.success ? r.data : null;
  }

  /** Every valid ownership record (the master's DB sync: a panel VM's owner written before its record). */
  async owners(): Promise<Ownership[]> {
    return (await this.readJsonDir(this.ownersDir, OwnershipSchema)).items;
  }

  private writes = new Map<string, Promise<unknown>>();

  /** Compare-and-set by epoch: a record is only ever replaced by a newer one. Serialised per VM. */
  setOwner(o: Ownership): Promise<void> {
    const p = (this.writes.get(o.vm) ?? Promise.resolve()).catch(() => undefined).then(() => this.casOwner(o));
    this.writes.set(o.vm, p);
    return p;
  }

  private async casOwner(o: Ownership): Promise<void> {
    const current = await this.owner(o.vm);
    if (current && current.epoch >= o.epoch) {
      if (current.epoch === o.epoch && current.node === o.node) return;
      throw new Error(`ownership of ${o.vm}: epoch ${o.epoch} is not newer than the recorded ${current.epoch} (n${current.node})`);
    }
    await mkdir(this.ownersDir, { recursive: true });
    await writeFileAtomic(join(this.ownersDir, `${o.vm}.json`), JSON.stringify(o));
  }

  /**
   * The fencing-token check before a start. The cluster agrees on an owner over CPG and the master
   * writes the record right after, so a record with an older epoch may be that write still on its
   * way: wait up to `waitMs` for it instead of failing (and retrying only after vmRetryMs). A record
   * naming anyone else at the same or a newer epoch fails at once.
   */
  async assertOwned(vm: string, node: number, epoch: number, waitMs = 2000): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const o = await this.owner(vm);
      if (o && o.node === node && o.epoch === epoch) return;
      const stillOnItsWay = !o || o.epoch < epoch;
      if (!stillOnItsWay || Date.now() >= deadline) {
        throw new Error(`vm ${vm}: not starting: the ownership record says ${o ? `${o.node === null ? "no owner" : `n${o.node}`} epoch ${o.epoch}` : "nothing"}, not n${node} epoch ${epoch}`);
      }
      await sleep(50);
    }
  }

}

// The VM driver interface: what the daemon needs from a hypervisor to run HA VMs on this node.
// Two implementations: `libvirt` (production KVM via virsh) and `process` (the lab: a VM is a process).
import { z } from "zod";

export type VmState = "running" | "stopped" | "absent";

export const VmDefinitionSchema = z
  .object({
    // Used in file names, command lines and XML, so only a safe identifier is accepted.
    name: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,62}$/, "must be a letter followed by up to 62 letters, digits, '_', '.' or '-'"),
    ramMb: z.number().int().positive().max(16 * 1024 * 1024),
    vcpus: z.number().int().min(1).max(4096),
    disk: z
      .object({
        /** 'network': on shared storage, recoverable elsewhere; 'local': tied to this node. */
        kind: z.enum(["network", "local"]),
        /** A file or block device path, or a network URI (rbd://, iscsi://, nfs://) for libvirt. */
        path: z.string().min(1).max(4096),
      })
      .strict(),
    /** The VM's own address (the lab's process driver puts it on the node's bridge). */
    ip: z.ipv4().optional(),
    ha: z.boolean().optional(),
  })
  .strict();
export type VmDefinition = z.infer<typeof VmDefinitionSchema>;

export interface StopOptions {
  /** Graceful shutdown gets this long before the VM is forced off. */
  timeoutMs: number;
  /** Skip the graceful part: power off at once. */
  force?: boolean;
}

export interface VmDriver {
  readonly kind: "libvirt" | "process";
  /** Creates or replaces the VM's definition on this node (a running VM keeps running). */
  define(def: VmDefinition): Promise<void>;
  /** Removes a stopped VM's definition; a no-op when absent, an error while it runs. */
  undefine(name: string): Promise<void>;
  /** Starts a defined VM; a no-op when it already runs here. Fails if its disk is in use elsewhere. */
  start(name: string): Promise<void>;
  /** Graceful stop, forced after timeoutMs; resolves only once the VM is really off. No-op when stopped. */
  stop(name: string, opts: StopOptions): Promise<void>;
  state(name: string): Promise<VmState>;
  /** Every VM defined (or running) on this node. */
  list(): Promise<Array<{ name: string; state: VmState }>>;
  /** Capacity of this node for VMs. */
  resources(): Promise<{ ramMb: number; vcpus: number }>;
  /**
   * Optional: gets ready for fast starts (the process driver builds its VM program), called once
   * when the daemon starts; resolves with a line for the log.
   */
  prepare?(): Promise<string>;
}

/** Validates a definition, reporting every problem with its field: "vm web1: invalid definition: ramMb: ...". */
export function parseVmDefinition(input: unknown): VmDefinition {
  const r = VmDefinitionSchema.safeParse(input);
  if (r.success) return r.data;
  const name = typeof (input as { name?: unknown })?.name === "string" ? (input as { name: string }).name : "?";
  const issues = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
  throw new Error(`vm ${name}: invalid definition: ${issues}`);
}

/** Same rule as the schema, for names that arrive alone (start/stop/state). */
export function checkVmName(name: string): string {
  const r = VmDefinitionSchema.shape.name.safeParse(name);
  if (!r.success) throw new Error(`vm ${JSON.stringify(name)}: invalid name: ${r.error.issues[0]?.message ?? "bad name"}`);
  return name;
}

/** Wraps a failure as "vm web1: start failed: <cause>", keeping messages that already say so. */
export function vmError(name: string, op: string, err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  const prefix = `vm ${name}: ${op} failed: `;
  return new Error(msg.startsWith(`vm ${name}: `) ? msg : prefix + msg, { cause: err });
}

/** Runs `fn` and rewrites any error with `vmError`. */
export async function withVmError<T>(name: string, op: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw vmError(name, op, err);
  }
}

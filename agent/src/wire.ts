// The CPG wire format: one JSON envelope per message, on channels. `core` carries the HA core's own
// messages (validated again inside the core); `conf`/`conf-ack` carry corosync.conf distribution.
import { z } from "zod";

/** What an admin can ask of the cluster from any node (`corolistener set-node`, `corolistener elect`). */
export const AdminRequestSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("elect") }),
  z.object({
    kind: z.literal("set-node"),
    nodeid: z.number().int().positive(),
    prio: z.number().int().min(0).max(1_000_000).optional(),
    replication: z.boolean().optional(),
    /** Maintenance mode: the master drains the node and never places VMs on it. */
    maintenance: z.boolean().optional(),
  }),
  // `corolistener node add|remove` (and the installer): the master changes the nodelist.
  z.object({
    kind: z.literal("add-node"),
    nodeid: z.number().int().min(1).max(0xffff),
    addr: z.string().min(1).max(255),
    prio: z.number().int().min(0).max(1_000_000),
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,63}$/).optional(),
  }),
  z.object({ kind: z.literal("remove-node"), nodeid: z.number().int().positive() }),
]);
export type AdminRequest = z.infer<typeof AdminRequestSchema>;

const Envelope = z.discriminatedUnion("ch", [
  z.object({ ch: z.literal("admin"), request: AdminRequestSchema }),
  z.object({ ch: z.literal("core"), msg: z.unknown() }),
  z.object({ ch: z.literal("conf"), version: z.number().int().positive(), text: z.string().max(1_000_000) }),
  z.object({ ch: z.literal("conf-ack"), version: z.number().int().positive() }),
]);
export type Envelope = z.infer<typeof Envelope>;

export const encodeEnvelope = (e: Envelope): Buffer => Buffer.from(JSON.stringify(e));

/** null for anything that is not a well-formed envelope (a node that lies must not break us). */
export function decodeEnvelope(data: Buffer): Envelope | null {
  try {
    const r = Envelope.safeParse(JSON.parse(data.toString("utf8")));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

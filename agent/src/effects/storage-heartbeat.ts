// Storage heartbeat: each node writes its own file on the shared storage; every node reads all of them.
// Staleness is judged by the reader (how long since the seq changed), never by comparing clocks.
import { join } from "node:path";
import { z } from "zod";
import { StorageIoThread } from "./storage-io-thread.ts";

import type { Heartbeat } from "../core/types.ts";

/** What a heartbeat file must hold; anything else (a lying node, a torn write) is skipped. */
export const HeartbeatSchema = z.object({
  nodeid: z.number().int().positive(),
  incarnation: z.number().int().nonnegative(),
  seq: z.number().int().nonnegative(),
  selfStatus: z.enum(["starting", "member", "excluded", "network_isolation", "storage_isolation"]),
  runningVms: z.array(z.string().max(256)).max(10_000),
}) satisfies z.ZodType<Heartbeat>;

export class StorageHeartbeat {
  private readonly dir: string;
  /** Its own thread: the write time must measure the storage, not the agent's other file I/O. */
  private readonly io = new StorageIoThread();
  constructor(storageDir: string, private readonly timeoutMs = 2000) {
    this.dir = join(storageDir, "heartbeats");
  }

  /** Replaces this node's heartbeat file (atomic, durable); rejects after timeoutMs (a hung NFS mount). */
  async write(hb: Heartbeat): Promise<void> {
    await this.io.writeAtomic(this.dir, `node-${hb.nodeid}.json`, JSON.stringify(hb), this.timeoutMs, "heartbeat write");
  }

  /** All valid heartbeats; a file that is malformed (a node that lies or a torn write) is skipped. */
  async readAll(): Promise<{ heartbeats: Heartbeat[]; invalid: string[] }> {
    const files = await this.io.readAll(this.dir, /^node-\d+\.json$/, this.timeoutMs, "heartbeat read");
    const heartbeats: Heartbeat[] = [];
    const invalid: string[] = [];
    for (const [name, text] of files) {
      const parsed = HeartbeatSchema.safeParse(parseJson(text));
      if (parsed.success && name === `node-${parsed.data.nodeid}.json`) heartbeats.push(parsed.data);
      else invalid.push(name);
    }
    return { heartbeats, invalid };
  }

  close(): Promise<void> {
    return this.io.close();
  }
}

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

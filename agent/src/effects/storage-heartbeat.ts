// Storage heartbeat: each node writes its own file on the shared storage; every node reads all of them.
// Staleness is judged by the reader (how long since the seq changed), never by comparing clocks.
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "@ha/shared";

import type { Heartbeat } from "../core/types.ts";

/** What a heartbeat file must hold; anything else (a lying node, a torn write) is skipped. */
export const HeartbeatSchema = z.object({
  nodeid: z.number().int().positive(),
  incarnation: z.number().int().nonnegative(),
  seq: z.number().int().nonnegative(),
  selfStatus: z.enum(["starting", "member", "excluded", "network_isolation", "storage_isolation"]),
  runningVms: z.array(z.string().max(256)).max(10_000),
}) satisfies z.ZodType<Heartbeat>;

/** Rejects when `p` does not settle in time: a hung NFS mount must count as a failed write. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms))),
  ]);
}

export class StorageHeartbeat {
  private readonly dir: string;
  constructor(storageDir: string, private readonly timeoutMs = 2000) {
    this.dir = join(storageDir, "heartbeats");
  }

  async write(hb: Heartbeat): Promise<void> {
    await within(
      (async () => {
        await mkdir(this.dir, { recursive: true });
        await writeFileAtomic(join(this.dir, `node-${hb.nodeid}.json`), JSON.stringify(hb));
      })(),
      this.timeoutMs,
      "heartbeat write",
    );
  }

  /** All valid heartbeats; a file that is malformed (a node that lies or a torn write) is skipped. */
  async readAll(): Promise<{ heartbeats: Heartbeat[]; invalid: string[] }> {
    return within(
      (async () => {
        const names = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => /^node-\d+\.json$/.test(n));
        const heartbeats: Heartbeat[] = [];
        const invalid: string[] = [];
        // In parallel: on network storage each file costs a round trip.
        const texts = await Promise.all(names.map((name) => readFile(join(this.dir, name), "utf8").then(JSON.parse).catch(() => null)));
        names.forEach((name, i) => {
          const parsed = HeartbeatSchema.safeParse(texts[i]);
          if (parsed.success && name === `node-${parsed.data.nodeid}.json`) heartbeats.push(parsed.data);
          else invalid.push(name);
        });
        return { heartbeats, invalid };
      })(),
      this.timeoutMs,
      "heartbeat read",
    );
  }
}

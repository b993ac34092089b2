// Requests from the local CLI to the local daemon: JSON files dropped next to the status file
// (root-only, no network listener). The daemon takes them once a second.
import { mkdir, readdir, readFile, rm, writeFile, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import { AdminRequestSchema, type AdminRequest } from "../wire.ts";

export class AdminInbox {
  private readonly dir: string;
  constructor(statusFile: string) {
    this.dir = join(dirname(statusFile), "requests");
  }

  /** CLI side: queue a request atomically (tmp + rename, so the daemon never reads half a file). */
  async put(request: AdminRequest): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const name = `${Date.now()}-${process.pid}`;
    await writeFile(join(this.dir, `.${name}.tmp`), JSON.stringify(AdminRequestSchema.parse(request)));
    await rename(join(this.dir, `.${name}.tmp`), join(this.dir, `${name}.json`));
  }

  /** Daemon side: every queued request, oldest first, each removed once read; invalid ones dropped. */
  async take(): Promise<AdminRequest[]> {
    const names = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => n.endsWith(".json")).sort();
    const out: AdminRequest[] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      const r = AdminRequestSchema.safeParse(await readFile(path, "utf8").then(JSON.parse).catch(() => null));
      await rm(path, { force: true });
      if (r.success) out.push(r.data);
    }
    return out;
  }
}

import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode, applied exactly (not masked by umask). Default: keep the target's mode, else 0o666 & ~umask. */
  mode?: number;
}

/**
 * Replace `path` so readers see either the old or the new content, also across a crash:
 * write a temp file in the same directory, fsync it, rename it over the target, fsync the directory.
 * On failure the temp file is removed, the old file is untouched, and an Error naming `path` is thrown
 * (the original error is its `cause`).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  // Same directory, so rename() stays on one filesystem and is atomic; random suffix avoids collisions.
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let file: FileHandle | undefined;
  try {
    const mode = options.mode ?? (await existingMode(path));
    file = await open(tmp, 'wx', mode ?? 0o666);
    await file.writeFile(data);
    if (mode !== undefined) await file.chmod(mode);
    await file.sync();
    await file.close();
    file = undefined;
    await rename(tmp, path);
    await syncDir(dir); // makes the rename itself durable
  } catch (err) {
    await file?.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`atomic write of ${path} failed: ${reason}`, { cause: err });
  }
}

async function existingMode(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const COROSYNC = '/usr/sbin/corosync';
/** Why corosync tests are skipped here, or undefined when `corosync -t` can be used. */
export const corosyncSkipReason = existsSync(COROSYNC) ? undefined : `${COROSYNC} not installed; skipping corosync -t checks`;
if (corosyncSkipReason) console.log(`# ${corosyncSkipReason}`);

const made: string[] = [];
process.on('exit', () => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A fresh temp directory, removed when the test process exits. */
export function tmp(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Run `corosync -t` (parse + validate config, then exit) on `text`. */
export function corosyncTest(text: string, dir = tmp('corosync-t-')): { ok: boolean; output: string } {
  const file = join(dir, 'corosync.conf');
  writeFileSync(file, text);
  const res = spawnSync(COROSYNC, ['-t', '-c', file], { encoding: 'utf8', timeout: 20_000 });
  return { ok: res.status === 0, output: `${res.stdout}${res.stderr}`.trim() };
}

/** A knet authkey so crypto-enabled configs pass `corosync -t`. */
export function makeAuthkey(dir: string): string {
  const file = join(dir, 'authkey');
  writeFileSync(file, Buffer.alloc(256, 7), { mode: 0o400 });
  return file;
}

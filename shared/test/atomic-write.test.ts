import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeFileAtomic } from '../src/index.ts';
import { tmp } from './helpers/corosync.ts';

const modeOf = (path: string): number => statSync(path).mode & 0o777;

describe('writeFileAtomic', () => {
  it('creates a file with exactly the requested mode and leaves nothing else behind', async () => {
    const dir = tmp('atomic-');
    const target = join(dir, 'corosync.conf');
    await writeFileAtomic(target, 'totem {\n}\n', { mode: 0o600 });
    assert.equal(readFileSync(target, 'utf8'), 'totem {\n}\n');
    assert.equal(modeOf(target), 0o600);
    assert.deepEqual(readdirSync(dir), ['corosync.conf']);
  });

  it("replaces an existing file and keeps its mode when none is given", async () => {
    const dir = tmp('atomic-');
    const target = join(dir, 'f');
    writeFileSync(target, 'old');
    chmodSync(target, 0o640);
    await writeFileAtomic(target, Buffer.from('new'));
    assert.equal(readFileSync(target, 'utf8'), 'new');
    assert.equal(modeOf(target), 0o640);
    assert.deepEqual(readdirSync(dir), ['f']);
  });

  it('fails on rename over a directory: target intact, temp file removed', async () => {
    const dir = tmp('atomic-');
    const target = join(dir, 'conf');
    mkdirSync(target);
    writeFileSync(join(target, 'inside'), 'old content');
    await assert.rejects(writeFileAtomic(target, 'new'), (err: Error) => {
      assert.match(err.message, new RegExp(`atomic write of ${target} failed: EISDIR`));
      assert.ok(err.cause);
      return true;
    });
    assert.equal(readFileSync(join(target, 'inside'), 'utf8'), 'old content');
    assert.deepEqual(readdirSync(dir), ['conf']);
  });

  it('fails mid-write (file size limit): old content intact, temp file removed', { skip: existsSync('/bin/bash') ? false : 'needs /bin/bash for ulimit' }, () => {
    const dir = tmp('atomic-');
    const target = join(dir, 'conf');
    writeFileSync(target, 'old content');
    // In a child limited to 8 KiB per file, writing 1 MiB fails with EFBIG after a partial write.
    const script = `import { writeFileAtomic } from ${JSON.stringify(join(import.meta.dirname, '../src/fs/atomic-write.ts'))};
      await writeFileAtomic(${JSON.stringify(target)}, 'x'.repeat(1 << 20)).then(() => console.log('no error'), (e) => console.log(e.message));`;
    const res = spawnSync('/bin/bash', ['-c', 'trap "" XFSZ; ulimit -f 8; exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, script], { encoding: 'utf8' });
    assert.match(res.stdout, /atomic write of .* failed: EFBIG/, res.stderr);
    assert.equal(readFileSync(target, 'utf8'), 'old content');
    assert.deepEqual(readdirSync(dir), ['conf']);
  });

  it('fails in a non-writable directory: old content intact', { skip: process.getuid?.() === 0 ? 'running as root: directory permissions are not enforced' : false }, async () => {
    const dir = tmp('atomic-');
    const target = join(dir, 'conf');
    writeFileSync(target, 'old content');
    chmodSync(dir, 0o555);
    try {
      await assert.rejects(writeFileAtomic(target, 'new'), /atomic write of .* failed: EACCES/);
      assert.equal(readFileSync(target, 'utf8'), 'old content');
      assert.deepEqual(readdirSync(dir), ['conf']);
    } finally {
      chmodSync(dir, 0o755);
    }
  });

  it('fails when the directory does not exist', async () => {
    const target = join(tmp('atomic-'), 'missing', 'conf');
    await assert.rejects(writeFileAtomic(target, 'x'), /atomic write of .*missing\/conf failed: ENOENT/);
    assert.equal(existsSync(target), false);
  });
});

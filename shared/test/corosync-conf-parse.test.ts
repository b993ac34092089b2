import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CorosyncConfError, parseCorosyncConf, positionOf, writeCorosyncConf, type ConfSection, type ConfValue } from '../src/index.ts';
import { corosyncSkipReason, corosyncTest } from './helpers/corosync.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const fixtureNames = readdirSync(FIXTURES).filter((f) => f.endsWith('.conf'));
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

const sec = (parent: ConfSection, name: string, nth = 0): ConfSection => {
  const found = parent.entries.filter((e): e is ConfSection => e.kind === 'section' && e.name === name)[nth];
  assert.ok(found, `section ${name}[${nth}] in ${parent.name || 'root'}`);
  return found;
};
const val = (parent: ConfSection, key: string): ConfValue | undefined =>
  parent.entries.find((e): e is ConfValue => e.kind === 'value' && e.key === key);

describe('parseCorosyncConf', () => {
  it('reads the Debian default file, dropping comments and keeping order', () => {
    const root = parseCorosyncConf(fixture('debian-default.conf'));
    assert.deepEqual(root.entries.map((e) => (e.kind === 'section' ? e.name : e.key)), ['totem', 'logging', 'quorum', 'nodelist']);
    const totem = sec(root, 'totem');
    assert.deepEqual(totem.entries, [
      { kind: 'value', key: 'version', value: '2' },
      { kind: 'value', key: 'cluster_name', value: 'debian' },
      { kind: 'value', key: 'crypto_cipher', value: 'none' },
      { kind: 'value', key: 'crypto_hash', value: 'none' },
    ]);
    assert.equal(val(sec(sec(root, 'logging'), 'logger_subsys'), 'subsys')?.value, 'QUORUM');
    assert.equal(val(sec(sec(root, 'nodelist'), 'node'), 'ring0_addr')?.value, '127.0.0.1');
  });

  it('keeps repeated sections and keys, IPv6 values and unknown keys', () => {
    const nodes = sec(parseCorosyncConf(fixture('ipv6.conf')), 'nodelist').entries;
    assert.equal(nodes.length, 3);
    const third = nodes[2] as ConfSection;
    assert.equal(val(third, 'ring1_addr')?.value, '::ffff:192.0.2.33');
    const hv3 = sec(sec(parseCorosyncConf(fixture('three-node-knet.conf')), 'nodelist'), 'node', 2);
    assert.equal(val(hv3, 'x-rack')?.value, 'r2/u14');
    const interfaces = sec(parseCorosyncConf(fixture('two-links.conf')), 'totem').entries.filter((e) => e.kind === 'section');
    assert.equal(interfaces.length, 2);
  });

  it('handles odd spacing, tabs, CRLF, `name{`, `name: {`, empty values and a missing final newline', () => {
    const root = parseCorosyncConf(fixture('odd-spacing.conf'));
    const totem = sec(root, 'totem');
    assert.equal(val(totem, 'version')?.value, '2');
    assert.equal(val(totem, 'cluster_name')?.value, 'odd  cluster'); // inner spaces kept, edges trimmed
    assert.equal(val(totem, 'crypto_hash')?.value, 'none');
    assert.equal(val(totem, 'secauth')?.value, '');
    assert.equal(val(totem, 'description')?.value, 'a: b: c # not a comment } brace');
    assert.equal(val(sec(root, 'quorum'), 'provider')?.value, 'corosync_votequorum');
    const node2 = sec(sec(root, 'nodelist'), 'node', 1);
    assert.deepEqual(node2.entries.map((e) => e.kind === 'value' && [e.key, e.value]), [
      ['nodeid', '2'],
      ['ring0_addr', '10.0.0.2'],
      ['prio', '-3'],
    ]);
  });

  it('records 1-based positions of values and section names', () => {
    const root = parseCorosyncConf(fixture('odd-spacing.conf'));
    const totem = sec(root, 'totem');
    assert.deepEqual(positionOf(totem), { line: 1, column: 1 });
    assert.deepEqual(positionOf(val(totem, 'cluster_name')!), { line: 3, column: 19 });
    assert.deepEqual(positionOf(val(totem, 'version')!), { line: 2, column: 11 });
    assert.deepEqual(positionOf(sec(sec(root, 'nodelist'), 'node', 1)), { line: 17, column: 2 });
  });

  it('parses an empty or comment-only file to an empty root', () => {
    assert.deepEqual(parseCorosyncConf(''), { kind: 'section', name: '', entries: [] });
    assert.deepEqual(parseCorosyncConf('# nothing\n\n   \n'), { kind: 'section', name: '', entries: [] });
  });
});

describe('writeCorosyncConf', () => {
  for (const name of fixtureNames) {
    it(`round-trips ${name}`, () => {
      const parsed = parseCorosyncConf(fixture(name));
      const written = writeCorosyncConf(parsed);
      assert.deepEqual(parseCorosyncConf(written), parsed);
      assert.equal(writeCorosyncConf(parseCorosyncConf(written)), written, 'canonical output is stable');
    });
  }

  it('uses tabs, `key: value` and blank lines between top-level sections', () => {
    const out = writeCorosyncConf(parseCorosyncConf('a {\n x: 1\n b {\n  y:\n }\n}\nc {\n}\n'));
    assert.equal(out, 'a {\n\tx: 1\n\tb {\n\t\ty:\n\t}\n}\n\nc {\n}\n');
  });

  it('refuses values and names that would not read back the same', () => {
    const bad: ConfSection[] = [
      { kind: 'section', name: '', entries: [{ kind: 'value', key: 'k', value: 'a{b' }] },
      { kind: 'section', name: '', entries: [{ kind: 'value', key: 'k', value: 'line\nbreak' }] },
      { kind: 'section', name: '', entries: [{ kind: 'value', key: 'k', value: ' padded' }] },
      { kind: 'section', name: '', entries: [{ kind: 'value', key: 'a:b', value: 'x' }] },
      { kind: 'section', name: '', entries: [{ kind: 'value', key: '', value: 'x' }] },
      { kind: 'section', name: '', entries: [{ kind: 'section', name: 'has space', entries: [] }] },
    ];
    for (const root of bad) assert.throws(() => writeCorosyncConf(root), CorosyncConfError);
  });
});

// Each malformed input with where we report it, and whether corosync 3.1.7 also rejects it.
const malformed: Array<{ name: string; text: string; line: number; column: number; message: RegExp; corosyncRejects: boolean }> = [
  { name: 'stray }', text: 'totem {\n\tversion: 2\n}\n}\n', line: 4, column: 1, message: /unexpected '}'/, corosyncRejects: true },
  { name: 'unclosed section reports where it was opened', text: 'totem {\n\tversion: 2\n}\nnodelist {\n\tnode {\n\t\tnodeid: 1\n}\n', line: 4, column: 1, message: /'nodelist' is never closed/, corosyncRejects: true },
  { name: 'unclosed nested section', text: 'a {\n  b {\n    c: 1\n', line: 2, column: 3, message: /section 'a > b' is never closed/, corosyncRejects: true },
  { name: '`key = value` (not corosync 3 syntax)', text: 'totem {\n\tversion = 2\n}\n', line: 2, column: 2, message: /expected 'key: value'/, corosyncRejects: true },
  { name: 'bare word', text: 'totem {\n\t  version\n}\n', line: 2, column: 4, message: /expected 'key: value'/, corosyncRejects: true },
  { name: 'garbage after {', text: 'totem { version: 2\n}\n', line: 1, column: 9, message: /after '\{'/, corosyncRejects: true },
  { name: 'one-line section', text: 'totem {}\n', line: 1, column: 8, message: /after '\{'/, corosyncRejects: true },
  { name: 'missing section name', text: '  {\n}\n', line: 1, column: 3, message: /missing section name/, corosyncRejects: true },
  { name: 'text before }', text: 'totem {\n\tversion: 2 }\n\tx }\n}\n', line: 3, column: 2, message: /around '\}'/, corosyncRejects: true },
  { name: '}}', text: 'a {\n b {\n c: 1\n }}\n', line: 4, column: 3, message: /around '\}'/, corosyncRejects: true },
  { name: 'value containing {', text: 'totem {\n\tcluster_name: a{\n}\n', line: 2, column: 15, message: /invalid character " " in section name "cluster_name: a"/, corosyncRejects: true },
  { name: 'key with a space', text: 'totem {\n\tversion: 2\n\tfoo bar: 1\n}\n', line: 3, column: 5, message: /invalid character " " in key "foo bar"/, corosyncRejects: true },
  // corosync itself quirkily stores ` : 2` under the key ":"; we refuse it.
  { name: 'empty key', text: 'totem {\n\t: 2\n}\n', line: 2, column: 2, message: /empty key/, corosyncRejects: false },
  { name: 'overlong line', text: `totem {\n\tcluster_name: ${'x'.repeat(500)}\n}\n`, line: 2, column: 1, message: /longer than 510 bytes/, corosyncRejects: true },
];

describe('parseCorosyncConf errors', () => {
  for (const c of malformed) {
    it(`${c.name} -> ${c.line}:${c.column}`, () => {
      const err = (() => {
        try {
          parseCorosyncConf(c.text);
        } catch (e) {
          return e;
        }
        assert.fail('expected CorosyncConfError');
      })();
      assert.ok(err instanceof CorosyncConfError);
      assert.equal(err.line, c.line);
      assert.equal(err.column, c.column);
      assert.match(err.message, c.message);
      assert.ok(err.message.includes(`${c.line}:${c.column}`), err.message);
    });
  }

  it('agrees with `corosync -t` on every malformed input', { skip: corosyncSkipReason }, () => {
    for (const c of malformed) {
      const { ok, output } = corosyncTest(c.text);
      // Rejections must come from corosync's parser/cmap, not from later semantic checks.
      if (c.corosyncRejects) assert.match(output, /parser error|Can't store key/, `${c.name}: ${output}`);
      else assert.doesNotMatch(output, /parser error/, `${c.name}: ${output}`);
      if (c.corosyncRejects) assert.equal(ok, false);
    }
  });
});

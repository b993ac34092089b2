import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  addNode,
  buildCorosyncConf,
  bumpConfigVersion,
  childSections,
  CorosyncConfError,
  parseCorosyncConf,
  readClusterConfig,
  removeNode,
  setConfigVersion,
  setKey,
  setNodeAttribute,
  U64_MAX,
  writeCorosyncConf,
  type ConfSection,
} from '../src/index.ts';
import { corosyncSkipReason, corosyncTest, makeAuthkey, tmp } from './helpers/corosync.ts';

const fixture = (name: string): ConfSection => parseCorosyncConf(readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8'));

function confError(fn: () => unknown): CorosyncConfError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CorosyncConfError, String(err));
    return err;
  }
  assert.fail('expected CorosyncConfError');
}

describe('readClusterConfig', () => {
  it('reads the 3-node knet fixture with prio/replication defaults', () => {
    assert.deepEqual(readClusterConfig(fixture('three-node-knet.conf')), {
      clusterName: 'hv-prod',
      configVersion: 42n,
      transport: 'knet',
      tokenMs: 3000,
      crypto: { cipher: 'aes256', hash: 'sha256' },
      twoNode: false,
      nodes: [
        { nodeid: 1, name: 'hv1', ring0Addr: '10.10.0.11', ringAddrs: ['10.10.0.11'], prio: 100, replication: true },
        { nodeid: 2, name: 'hv2', ring0Addr: '10.10.0.12', ringAddrs: ['10.10.0.12'], prio: 50, replication: true },
        { nodeid: 3, name: 'hv3', ring0Addr: '10.10.0.13', ringAddrs: ['10.10.0.13'], prio: 0, replication: false },
      ],
    });
  });

  it('reads links, IPv6, two_node, defaults and u64 config_version', () => {
    const dual = readClusterConfig(fixture('two-links.conf'));
    assert.deepEqual(dual.nodes.map((n) => n.ringAddrs), [['192.168.10.1', '172.16.0.1'], ['192.168.10.2', '172.16.0.2']]);
    assert.equal(dual.twoNode, true);
    assert.deepEqual(readClusterConfig(fixture('ipv6.conf')).nodes[1]!.ringAddrs, ['fd00:10::2', '2001:db8::2']);
    const big = readClusterConfig(fixture('config-version-max.conf'));
    assert.equal(big.configVersion, 18446744073709551614n);
    assert.equal(big.transport, 'knet');
    assert.equal(big.nodes[0]!.nodeid, 65535);
    assert.equal(big.nodes[0]!.name, undefined);
    const debian = readClusterConfig(fixture('debian-default.conf'));
    assert.equal(debian.configVersion, 0n);
    assert.deepEqual(debian.crypto, { cipher: 'none', hash: 'none' });
    assert.equal(readClusterConfig(fixture('odd-spacing.conf')).nodes[1]!.prio, -3);
  });

  const base = (nodes: string, totem = 'cluster_name: c'): string =>
    `totem {\n\tversion: 2\n\t${totem}\n}\nnodelist {\n${nodes}}\n`;
  const node = (body: string): string => `\tnode {\n${body.split(';').map((l) => `\t\t${l.trim()}\n`).join('')}\t}\n`;

  const invalid: Array<{ name: string; text: string; line?: number; column?: number; message: RegExp }> = [
    { name: 'missing totem', text: 'nodelist {\n}\n', message: /missing 'totem' section/ },
    { name: 'no nodelist', text: 'totem {\n\tcluster_name: c\n}\n', message: /exactly one 'nodelist'/ },
    { name: 'empty nodelist', text: base(''), line: 5, column: 1, message: /nodelist must contain at least one node/ },
    { name: 'nodeid 0', text: base(node('nodeid: 0; ring0_addr: a')), line: 7, column: 11, message: /node #1 \(nodeid 0\): nodeid must be a positive integer.*got "0"/ },
    { name: 'nodeid text', text: base(node('name: n1; nodeid: one; ring0_addr: a')), line: 8, column: 11, message: /node #1 \(nodeid one, name n1\): nodeid must be a positive integer/ },
    { name: 'nodeid too big for knet', text: base(node('nodeid: 65536; ring0_addr: a')), line: 7, column: 11, message: /nodeid must be below 65536 with the knet transport/ },
    { name: 'missing nodeid', text: base(node('ring0_addr: a')), line: 6, column: 2, message: /node #1: nodeid is missing/ },
    { name: 'missing ring0_addr', text: base(node('nodeid: 1')), line: 6, column: 2, message: /ring0_addr is missing/ },
    { name: 'duplicate nodeid', text: base(node('nodeid: 1; ring0_addr: a') + node('name: b; nodeid: 1; ring0_addr: b')), line: 12, column: 11, message: /node #2 \(nodeid 1, name b\): nodeid is already used by node #1/ },
    { name: 'duplicate ring0_addr', text: base(node('nodeid: 1; ring0_addr: fd00::1') + node('nodeid: 2; ring0_addr: fd00::1')), line: 12, column: 15, message: /node #2 \(nodeid 2\): ring0_addr is already used by node #1/ },
    { name: 'prio not an integer', text: base(node('nodeid: 1; ring0_addr: a; prio: 1.5')), line: 9, column: 9, message: /node #1 \(nodeid 1\): prio must be an integer \(got "1.5"\)/ },
    { name: 'replication not on/off', text: base(node('nodeid: 1; ring0_addr: a; replication: yes')), line: 9, column: 16, message: /replication must be "on" or "off" \(got "yes"\)/ },
    { name: 'config_version negative', text: base(node('nodeid: 1; ring0_addr: a'), 'cluster_name: c\n\tconfig_version: -1'), line: 4, column: 18, message: /totem.config_version must be an unsigned 64-bit integer/ },
    { name: 'config_version 2^64', text: base(node('nodeid: 1; ring0_addr: a'), 'cluster_name: c\n\tconfig_version: 18446744073709551616'), line: 4, column: 18, message: /at most 18446744073709551615/ },
    { name: 'missing cluster_name', text: base(node('nodeid: 1; ring0_addr: a'), 'token: 1000'), line: 1, column: 1, message: /totem.cluster_name is missing/ },
    { name: 'bad cipher', text: base(node('nodeid: 1; ring0_addr: a'), 'cluster_name: c\n\tcrypto_cipher: 3des'), line: 4, column: 17, message: /crypto_cipher must be none, aes256/ },
    { name: 'cipher without hash', text: base(node('nodeid: 1; ring0_addr: a'), 'cluster_name: c\n\tcrypto_cipher: aes256\n\tcrypto_hash: none'), line: 5, column: 15, message: /totem.crypto_hash must not be none when crypto_cipher is set/ },
    { name: 'unknown transport', text: base(node('nodeid: 1; ring0_addr: a'), 'cluster_name: c\n\ttransport: tcp'), line: 4, column: 13, message: /totem.transport must be knet, udp or udpu \(got "tcp"\)/ },
    { name: 'link gap', text: base(node('nodeid: 1; ring0_addr: a; ring2_addr: b')), line: 9, column: 15, message: /ring2_addr is set but ring1_addr is missing/ },
    { name: 'different link counts', text: base(node('nodeid: 1; ring0_addr: a; ring1_addr: b') + node('nodeid: 2; ring0_addr: c')), line: 11, column: 2, message: /node #2 \(nodeid 2\) has 1 link\(s\) but node #1 has 2/ },
  ];
  for (const c of invalid) {
    it(`rejects ${c.name}`, () => {
      const err = confError(() => readClusterConfig(parseCorosyncConf(c.text)));
      assert.match(err.message, c.message);
      assert.equal(err.line, c.line);
      assert.equal(err.column, c.column);
      if (c.line) assert.ok(err.message.includes(`${c.line}:${c.column}`), err.message);
    });
  }
});

describe('editing helpers', () => {
  it('bump/set config_version without touching the input', () => {
    const root = fixture('three-node-knet.conf');
    const before = writeCorosyncConf(root);
    const bumped = bumpConfigVersion(root);
    assert.equal(readClusterConfig(bumped).configVersion, 43n);
    assert.equal(writeCorosyncConf(root), before);
    // Untouched sections are shared, not copied.
    assert.equal(childSections(bumped, 'nodelist')[0], childSections(root, 'nodelist')[0]);
    assert.equal(readClusterConfig(setConfigVersion(fixture('debian-default.conf'), 5n)).configVersion, 5n);
    const max = bumpConfigVersion(fixture('config-version-max.conf'));
    assert.equal(readClusterConfig(max).configVersion, U64_MAX);
    assert.throws(() => bumpConfigVersion(max), /maximum/);
    assert.throws(() => setConfigVersion(root, -1n), CorosyncConfError);
  });

  it('setNodeAttribute changes one node and validates the result', () => {
    const root = fixture('three-node-knet.conf');
    const edited = setNodeAttribute(setNodeAttribute(root, 3, 'prio', 7), 2, 'replication', 'off');
    const nodes = readClusterConfig(edited).nodes;
    assert.deepEqual(nodes.map((n) => [n.prio, n.replication]), [[100, true], [50, false], [7, false]]);
    // New keys go at the end of the node; unknown keys survive.
    assert.match(writeCorosyncConf(edited), /\t\tx-rack: r2\/u14\n\t\tprio: 7\n\t}/);
    assert.equal(readClusterConfig(root).nodes[2]!.prio, 0);
    assert.match(confError(() => setNodeAttribute(root, 1, 'prio', 'high')).message, /nodeid 1, name hv1\): prio must be an integer/);
    assert.match(confError(() => setNodeAttribute(root, 9, 'prio', 1)).message, /no node with nodeid 9/);
    assert.throws(() => setNodeAttribute(root, 1, 'bad key', 1), CorosyncConfError);
  });

  it('addNode / removeNode', () => {
    const root = fixture('three-node-knet.conf');
    const added = addNode(root, { nodeid: 4, name: 'hv4', ring0Addr: '10.10.0.14', prio: 5, replication: true });
    assert.deepEqual(readClusterConfig(added).nodes.at(-1), { nodeid: 4, name: 'hv4', ring0Addr: '10.10.0.14', ringAddrs: ['10.10.0.14'], prio: 5, replication: true });
    assert.equal(readClusterConfig(root).nodes.length, 3);
    assert.match(confError(() => addNode(root, { nodeid: 2, ring0Addr: '10.9.9.9' })).message, /nodeid is already used by node #2/);
    assert.match(confError(() => addNode(root, { nodeid: 9, ring0Addr: '10.10.0.11' })).message, /ring0_addr is already used by node #1/);

    const removed = removeNode(added, 2);
    assert.deepEqual(readClusterConfig(removed).nodes.map((n) => n.nodeid), [1, 3, 4]);
    assert.match(confError(() => removeNode(root, 42)).message, /no node with nodeid 42/);
    assert.deepEqual(parseCorosyncConf(writeCorosyncConf(removed)), removed);
  });
});

describe('buildCorosyncConf', () => {
  const nodes = [
    { nodeid: 1, name: 'hv1', ring0Addr: '127.0.0.1', prio: 10, replication: true },
    { nodeid: 2, name: 'hv2', ring0Addr: '192.0.2.202' },
  ];

  it('builds the expected layout', () => {
    const text = writeCorosyncConf(buildCorosyncConf({ clusterName: 'hv', nodes, tokenMs: 3000, twoNode: true, configVersion: 9n }));
    assert.equal(
      text,
      `totem {
	version: 2
	cluster_name: hv
	transport: knet
	config_version: 9
	token: 3000
	crypto_cipher: aes256
	crypto_hash: sha256
	interface {
		linknumber: 0
	}
}

logging {
	to_logfile: yes
	logfile: /var/log/corosync/corosync.log
	to_syslog: no
	timestamp: on
}

quorum {
	provider: corosync_votequorum
	two_node: 1
}

nodelist {
	node {
		name: hv1
		nodeid: 1
		ring0_addr: 127.0.0.1
		prio: 10
		replication: on
	}
	node {
		name: hv2
		nodeid: 2
		ring0_addr: 192.0.2.202
		prio: 0
		replication: off
	}
}
`,
    );
  });

  it('applies defaults and options', () => {
    const cfg = readClusterConfig(buildCorosyncConf({ clusterName: 'x', nodes: [...nodes, { nodeid: 3, ring0Addr: '192.0.2.203' }], twoNode: true, crypto: false }));
    assert.equal(cfg.configVersion, 1n);
    assert.equal(cfg.twoNode, false, 'two_node only with exactly 2 nodes');
    assert.deepEqual(cfg.crypto, { cipher: 'none', hash: 'none' });
    assert.throws(() => buildCorosyncConf({ clusterName: 'x', nodes, transport: 'udpu' }), /crypto requires the knet transport/);
    assert.throws(() => buildCorosyncConf({ clusterName: 'x', nodes: [nodes[0]!, { ...nodes[1]!, nodeid: 1 }] }), /already used/);
    assert.throws(() => buildCorosyncConf({ clusterName: 'x', nodes: [] }), /at least one node/);
  });

  it('is accepted by `corosync -t` (crypto, two links, prio/replication)', { skip: corosyncSkipReason }, () => {
    const dir = tmp('corosync-build-');
    const root = buildCorosyncConf({
      clusterName: 'hv',
      tokenMs: 3000,
      configVersion: U64_MAX,
      logFile: join(dir, 'corosync.log'),
      nodes: [
        { nodeid: 1, name: 'hv1', ring0Addr: '127.0.0.1', ringAddrs: ['127.0.0.1', '127.0.0.2'], prio: 10, replication: true },
        { nodeid: 2, name: 'hv2', ring0Addr: '192.0.2.202', ringAddrs: ['192.0.2.202', '198.51.100.2'] },
      ],
    });
    // crypto needs a key; point totem.keyfile at a throwaway one.
    const withKey = { ...root, entries: root.entries.map((e) => (e.kind === 'section' && e.name === 'totem' ? setKey(e, 'keyfile', makeAuthkey(dir)) : e)) };
    const { ok, output } = corosyncTest(writeCorosyncConf(withKey), dir);
    assert.ok(ok, output);
  });

  it('every fixture, written back by us, is accepted by `corosync -t`', { skip: corosyncSkipReason }, () => {
    for (const name of ['debian-default.conf', 'three-node-knet.conf', 'two-links.conf', 'ipv6.conf', 'config-version-max.conf', 'comments-blank.conf', 'odd-spacing.conf']) {
      const dir = tmp('corosync-fixture-');
      // corosync -t needs the local host in the nodelist, a keyfile for crypto, and a writable log file.
      let root = fixture(name);
      const first = readClusterConfig(root).nodes[0]!;
      first.ringAddrs.forEach((addr, link) => {
        root = setNodeAttribute(root, first.nodeid, `ring${link}_addr`, addr.includes(':') ? '::1' : `127.0.0.${link + 1}`);
      });
      root = {
        ...root,
        entries: root.entries.map((e) => {
          if (e.kind !== 'section') return e;
          if (e.name === 'totem') return setKey(e, 'keyfile', makeAuthkey(dir));
          if (e.name === 'logging') return setKey(e, 'logfile', join(dir, 'corosync.log'));
          return e;
        }),
      };
      const { ok, output } = corosyncTest(writeCorosyncConf(root), dir);
      assert.ok(ok, `${name}: ${output}`);
    }
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CorosyncError, check, csErrorName, isConnectionLost } from '../../../src/corosync/errors.ts';
import {
  CMAP_VALUETYPE,
  cmapValueToString,
  configFromCmap,
  decodeCmapValue,
  decodeVotequorumFlags,
  parseNodelist,
} from '../../../src/corosync/parse.ts';

describe('cs_error_t names', () => {
  test('known and unknown codes', () => {
    assert.equal(csErrorName(1), 'CS_OK');
    assert.equal(csErrorName(6), 'CS_ERR_TRY_AGAIN');
    assert.equal(csErrorName(30), 'CS_ERR_TOO_MANY_GROUPS');
    assert.equal(csErrorName(100), 'CS_ERR_SECURITY');
    assert.equal(csErrorName(29), 'CS_ERR_UNKNOWN(29)');
  });

  test('CorosyncError carries call and error name', () => {
    const err = new CorosyncError('cpg_join', 6);
    assert.equal(err.message, 'cpg_join failed: CS_ERR_TRY_AGAIN');
    assert.equal(err.call, 'cpg_join');
    assert.equal(err.code, 6);
    assert.equal(err.errorName, 'CS_ERR_TRY_AGAIN');
    assert.ok(err instanceof Error);
  });

  test('check throws unless CS_OK', () => {
    assert.doesNotThrow(() => check('quorum_initialize', 1));
    assert.throws(() => check('quorum_initialize', 2), /^CorosyncError: quorum_initialize failed: CS_ERR_LIBRARY$/);
  });

  test('connection-lost classification', () => {
    assert.equal(isConnectionLost(2), true);
    assert.equal(isConnectionLost(9), true);
    assert.equal(isConnectionLost(6), false);
  });
});

describe('votequorum flags', () => {
  test('decodes bits in order', () => {
    assert.deepEqual(decodeVotequorumFlags(0), []);
    assert.deepEqual(decodeVotequorumFlags(2), ['QUORATE']);
    assert.deepEqual(decodeVotequorumFlags(1 | 2 | 4), ['TWONODE', 'QUORATE', 'WAIT_FOR_ALL']);
    assert.deepEqual(decodeVotequorumFlags(8 | 16 | 32), ['LAST_MAN_STANDING', 'AUTO_TIE_BREAKER', 'ALLOW_DOWNSCALE']);
    assert.deepEqual(decodeVotequorumFlags(64 | 128 | 256 | 512), [
      'QDEVICE_REGISTERED',
      'QDEVICE_ALIVE',
      'QDEVICE_CAST_VOTE',
      'QDEVICE_MASTER_WINS',
    ]);
  });

  test('keeps unknown bits visible', () => {
    assert.deepEqual(decodeVotequorumFlags(2 | 0x1000), ['QUORATE', 'UNKNOWN_0x1000']);
  });
});

describe('cmap values', () => {
  test('decodes typed values', () => {
    const u32 = Buffer.alloc(4);
    u32.writeUInt32LE(1000);
    assert.equal(decodeCmapValue(CMAP_VALUETYPE.UINT32, u32), 1000);
    const u64 = Buffer.alloc(8);
    u64.writeBigUInt64LE(2n ** 63n + 5n);
    assert.equal(decodeCmapValue(CMAP_VALUETYPE.UINT64, u64), 2n ** 63n + 5n);
    assert.equal(decodeCmapValue(CMAP_VALUETYPE.UINT8, Buffer.from([200])), 200);
    assert.equal(decodeCmapValue(CMAP_VALUETYPE.INT8, Buffer.from([0xff])), -1);
    assert.equal(decodeCmapValue(CMAP_VALUETYPE.STRING, Buffer.from('n1\0')), 'n1');
    assert.equal(decodeCmapValue(CMAP_VALUETYPE.STRING, Buffer.from('noterm')), 'noterm');
    assert.deepEqual(decodeCmapValue(CMAP_VALUETYPE.BINARY, Buffer.from([1, 2])), Buffer.from([1, 2]));
  });

  test('stringifies like corosync-cmapctl', () => {
    assert.equal(cmapValueToString(5), '5');
    assert.equal(cmapValueToString(7n), '7');
    assert.equal(cmapValueToString('on'), 'on');
    assert.equal(cmapValueToString(Buffer.from([0xab])), 'ab');
  });
});

describe('parseNodelist', () => {
  const pairs = {
    'nodelist.local_node_pos': '0',
    'nodelist.node.0.name': 'n1',
    'nodelist.node.0.nodeid': '1',
    'nodelist.node.0.prio': '100',
    'nodelist.node.0.replication': 'on',
    'nodelist.node.0.ring0_addr': '10.0.0.1',
    'nodelist.node.1.nodeid': '3',
    'nodelist.node.1.ring0_addr': '10.0.0.3',
    'nodelist.node.1.replication': 'off',
    'nodelist.node.2.name': 'n2',
    'nodelist.node.2.nodeid': '2',
    'nodelist.node.2.prio': 'high',
    'nodelist.node.2.replication': 'ON',
  };

  test('builds entries sorted by nodeid with defaults', () => {
    const nodes = parseNodelist(pairs);
    assert.deepEqual(
      nodes.map((n) => [n.nodeid, n.name, n.ring0Addr, n.prio, n.replication]),
      [
        [1, 'n1', '10.0.0.1', 100, true],
        [2, 'n2', undefined, 0, true],
        [3, undefined, '10.0.0.3', 0, false],
      ],
    );
  });

  test('raw keeps every per-node key, including unknown ones', () => {
    const [n1] = parseNodelist(pairs);
    assert.deepEqual(n1!.raw, { name: 'n1', nodeid: '1', prio: '100', replication: 'on', ring0_addr: '10.0.0.1' });
    assert.ok(!('name' in parseNodelist(pairs)[2]!));
  });

  test('skips nodes without a usable nodeid and ignores other keys', () => {
    assert.deepEqual(parseNodelist({ 'nodelist.node.0.name': 'x', 'nodelist.node.1.nodeid': 'abc', 'totem.token': '1' }), []);
  });

  test('prio accepts negative integers, rejects garbage', () => {
    const [a, b] = parseNodelist({
      'nodelist.node.0.nodeid': '1',
      'nodelist.node.0.prio': '-5',
      'nodelist.node.1.nodeid': '2',
      'nodelist.node.1.prio': '10x',
    });
    assert.equal(a!.prio, -5);
    assert.equal(b!.prio, 0);
  });
});

describe('configFromCmap', () => {
  test('combines nodelist and totem keys', () => {
    const cfg = configFromCmap(
      new Map<string, string | number | bigint>([
        ['nodelist.node.0.nodeid', 1],
        ['nodelist.node.0.prio', '100'],
        ['totem.config_version', 3n],
        ['totem.cluster_name', 't'],
        ['totem.token', 1000],
        ['runtime.config.totem.token', 1650],
        ['runtime.config.totem.consensus', 1980],
      ]),
    );
    assert.equal(cfg.configVersion, 3n);
    assert.equal(cfg.clusterName, 't');
    assert.equal(cfg.tokenMs, 1650);
    assert.equal(cfg.consensusMs, 1980);
    assert.deepEqual(cfg.nodes.map((n) => [n.nodeid, n.prio]), [[1, 100]]);
  });

  test('missing keys fall back to defaults', () => {
    const cfg = configFromCmap(new Map([['totem.token', 3000]]));
    assert.deepEqual(cfg, { nodes: [], configVersion: 0n, tokenMs: 3000 });
  });
});

describe('koffi setup', () => {
  test('sync stack is large enough for the 1 MiB dispatch buffers of libcpg/libcmap', async () => {
    const { koffi } = await import('../../../src/corosync/ffi.ts');
    assert.ok((koffi.config().sync_stack_size ?? 0) >= 2 * 1024 * 1024);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createNodeCore } from '../../../src/core/node-core.ts';
import type { CoreAction, NodeConfig, VmSpec } from '../../../src/core/types.ts';
import { Harness } from './harness.ts';

// n1 is the natural master (prio 100), then n2 (50), then n3 (40).
const NODES: NodeConfig[] = [
  { nodeid: 1, prio: 100, addr: '10.0.0.1', ramMb: 16384 },
  { nodeid: 2, prio: 50, addr: '10.0.0.2', ramMb: 16384 },
  { nodeid: 3, prio: 40, addr: '10.0.0.3', ramMb: 16384 },
];
const VMS: VmSpec[] = [
  { id: 'vm1', ramMb: 2048, ha: true, storage: 'shared', restartPriority: 1 },
  { id: 'vm2', ramMb: 2048, ha: true, storage: 'shared', restartPriority: 1 },
  { id: 'vm3', ramMb: 2048, ha: true, storage: 'shared', restartPriority: 2 },
  { id: 'vm4', ramMb: 1024, ha: true, storage: 'local', restartPriority: 0 },
  { id: 'vm5', ramMb: 1024, ha: false, storage: 'shared', restartPriority: 0 },
];
const OWNERS = { vm1: 1, vm2: 2, vm3: 3, vm4: 3, vm5: 3 };

// These scenarios are timed for the short lease (leaseMs 1000, what an operator gets by setting
// `ha.leaseMs` for the fastest master failover); the default lease, which outlasts a corosync
// membership transition, has its own tests in transition.test.ts.
const SHORT_LEASE = { leaseMs: 1000 };

function cluster(settings: Parameters<typeof createNodeCore>[1] = {}, nodes = NODES): Harness {
  return new Harness({ nodes, vms: VMS, owners: OWNERS, settings: { ...SHORT_LEASE, ...settings } });
}

/** A started, converged 3-node cluster: master n1 with IP and panel, every VM on its owner. */
function converged(settings: Parameters<typeof createNodeCore>[1] = {}): Harness {
  const h = cluster(settings);
  h.start();
  h.run(3000);
  assert.equal(h.masterOf(1), 1);
  assert.deepEqual([...h.ip], [1]);
  assert.deepEqual([...h.panel], [1]);
  assert.deepEqual(h.running(), { 1: ['vm1'], 2: ['vm2'], 3: ['vm3', 'vm4', 'vm5'] });
  return h;
}

const types = (actions: CoreAction[]): string[] => actions.map((a) => (a.type === 'StopVm' || a.type === 'StartVm' ? `${a.type} ${a.vm}` : a.type));
const sent = (actions: CoreAction[]): string[] => actions.flatMap((a) => (a.type === 'SendCpg' ? [a.msg.kind] : []));

describe('node core: startup and election', () => {
  it('elects the highest prio, assigns IP and panel once, starts every VM on its owner', () => {
    const h = converged();
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 1);
    assert.equal(h.actionsOf(1, 'AssignClusterIp').length, 1);
    assert.deepEqual(h.actionsOf(1, 'StartPanel').map((a) => (a.type === 'StartPanel' ? a.kind : '')), ['moved']);
    assert.equal(h.actionsOf(1, 'PromoteDatabase').length, 1);
    assert.deepEqual(h.actionsOf(2, 'FollowDatabase').map((a) => (a.type === 'FollowDatabase' ? a.master : 0)), [1]);
  });

  it('every action and decision carries a reason', () => {
    const h = converged();
    for (const l of h.actions) assert.ok(l.action.reason.length > 0, `${l.action.type} without reason`);
    for (const d of h.decisions) assert.ok(d.reason.length > 0, `${d.kind} without reason`);
  });

  it('view() shows quorum, master and why each node is or is not master', () => {
    const h = converged();
    const v = h.core(2).view();
    assert.deepEqual(v.quorum, { quorate: true, have: 3, need: 2, members: [1, 2, 3] });
    assert.equal(v.master, 1);
    assert.deepEqual(v.nodes.map((n) => [n.nodeid, n.status, n.isMaster]), [[1, 'leader', true], [2, 'member', false], [3, 'member', false]]);
    assert.match(v.nodes[1]!.reason, /n2 not master: prio 50 < 100 of n1/);
    assert.match(v.nodes[2]!.reason, /n3 not master: prio 40 < 100 of n1/);
    assert.equal(v.vms.find((x) => x.vm === 'vm2')?.local, 'running');
  });

  it('a single node of three never becomes master', () => {
    const h = cluster();
    h.start([1]);
    h.run(5000);
    assert.equal(h.masterOf(1), null);
    assert.equal(h.ip.size, 0);
    assert.ok(h.decisions.some((d) => /no master: 1 of 3 nodes in this view, need 2/.test(d.reason)));
  });
});

describe('node core: quorum loss', () => {
  it('the isolated master releases IP, stops panel and VMs in the same step', () => {
    const h = converged();
    h.testIpUp.set(1, false); // lost the control network and the test IP: network isolation
    h.run(1000);
    const r = h.deliver(1, { type: 'quorum', quorate: false, members: [1] })!;
    assert.deepEqual(types(r.actions).filter((t) => t !== 'SendCpg'), ['DemoteDatabase', 'ReleaseClusterIp', 'StopPanel', 'StopVm vm1']);
    assert.ok(r.decisions.some((d) => d.reason === 'quorum lost: 1 of 3 votes, need 2'));
    assert.ok(r.actions.every((a) => a.reason.length > 0));
    assert.match(r.actions.find((a) => a.type === 'ReleaseClusterIp')!.reason, /quorum lost: 1 of 3 votes, need 2/);
  });

  it('an isolated member stops its VMs in the same step', () => {
    const h = converged();
    h.testIpUp.set(3, false);
    h.run(1000);
    const r = h.deliver(3, { type: 'quorum', quorate: false, members: [3] })!;
    assert.deepEqual(types(r.actions).filter((t) => t.startsWith('StopVm')).sort(), ['StopVm vm3', 'StopVm vm4', 'StopVm vm5']);
    assert.equal(h.core(3).role().selfStatus, 'network_isolation');
  });

  it('network isolation: the majority restarts HA VMs elsewhere once the heartbeat shows them stopped', () => {
    const h = converged();
    h.testIpUp.set(3, false);
    h.run(1000);
    const cutAt = h.now;
    h.partition([[1, 2], [3]]);
    h.run(4000);
    // Fast path: well before storage + fence timeouts (10 s).
    assert.deepEqual(h.running()[3], []);
    const all = Object.values(h.running()).flat();
    assert.ok(all.includes('vm3'), 'vm3 restarted elsewhere');
    assert.ok(!all.includes('vm4') && !all.includes('vm5'));
    const started = h.actions.find((l) => l.action.type === 'StartVm' && l.action.vm === 'vm3' && l.node !== 3)!;
    assert.ok(started.at - cutAt < 4000, `restarted after ${started.at - cutAt} ms`);
    assert.ok(h.decisions.some((d) => d.node === 1 && /vm4 unrecoverable: its disk is local to failed n3/.test(d.reason)));
    assert.ok(h.decisions.some((d) => d.node === 1 && /vm5 stays down with n3: not HA-enabled/.test(d.reason)));
    assert.equal(h.core(1).view().nodes[2]!.status, 'network_isolation');
  });
});

describe('node core: lease', () => {
  it('a master resumed after SIGSTOP releases IP and panel in its very first step', () => {
    const h = converged();
    h.pause(1);
    h.run(1500); // > leaseMs, < leaseMs + releaseBudgetMs (its watchdog would fire after that)
    const r = h.resume(1)!;
    assert.deepEqual(types(r.actions).slice(0, 3), ['DemoteDatabase', 'ReleaseClusterIp', 'StopPanel']);
    assert.match(r.actions[0]!.reason, /lease expired: last renewal \d+ ms ago > leaseMs 1000/);
    // Nobody else took over (n1 stayed in the CPG view), so n1 renews and takes them back.
    h.run(1000);
    assert.deepEqual([...h.ip], [1]);
    assert.equal(h.actionsOf(1, 'StartPanel').length, 2);
    assert.equal((h.actionsOf(1, 'StartPanel')[1] as Extract<CoreAction, { type: 'StartPanel' }>).kind, 'restarted');
  });

  it('the lease is checked before anything else, whatever the first event is', () => {
    const h = converged();
    h.pause(1);
    h.run(1500);
    const r = h.resume(1, { type: 'cpg-message', from: 2, msg: { v: 1, kind: 'elect', reason: 'x' } })!;
    assert.deepEqual(types(r.actions).slice(0, 3), ['DemoteDatabase', 'ReleaseClusterIp', 'StopPanel']);
  });

  it('the watchdog deadline of an IP holder is bound to its lease', () => {
    const h = converged();
    const r = h.deliver(1, { type: 'tick' })!;
    const limit = h.now + 1000 + 1000; // renewal at most `now` ago + lease + release budget
    assert.ok(r.watchdogDeadline <= limit, `deadline ${r.watchdogDeadline} > ${limit}`);
    const member = h.deliver(2, { type: 'tick' })!;
    assert.ok(member.watchdogDeadline > limit);
  });

  it('a panel slow to stop after a cut does not fire the watchdog once the IP is released; `released` still waits for it', () => {
    const h = converged();
    h.hold.set(1, new Set(['StopPanel']));
    h.partition([[1], [2, 3]]);
    h.run(1500); // n1's lease (1000 ms) expired: it released the IP, its panel is still stopping
    assert.ok(!h.ip.has(1));
    assert.equal(h.held.length, 1);
    const r = h.deliver(1, { type: 'tick' })!;
    assert.ok(r.watchdogDeadline >= h.now + 5000 - 100, `deadline ${r.watchdogDeadline - h.now} ms ahead: bound to the panel`);
    assert.ok(!r.actions.some((a) => a.type === 'Fence'));
    h.partition([[1, 2, 3]]);
    h.run(300);
    assert.equal(h.actionsOf(1).filter((a) => a.type === 'SendCpg' && a.msg.kind === 'released').length, 0, 'released sent before the panel stopped');
    h.finish(1, 'StopPanel');
    h.run(300);
    assert.equal(h.actionsOf(1).filter((a) => a.type === 'SendCpg' && a.msg.kind === 'released').length, 1);
  });

  it('a new master waits for the old master lease when the old master vanished', () => {
    const h = converged();
    const crashAt = h.now;
    h.crash(1); // the partition forms at once here (real corosync takes token + consensus)
    h.run(4000);
    assert.deepEqual([...h.ip], [2]);
    const assign = h.actions.find((l) => l.node === 2 && l.action.type === 'AssignClusterIp')!;
    assert.ok(assign.at - crashAt >= 1000 + 1000 + 200 - 300, `assigned ${assign.at - crashAt} ms after the crash`);
  });
});

describe('node core: no needless failback', () => {
  it('a higher-prio newcomer does not claim and does not take over', () => {
    const h = cluster();
    h.start([2, 3]);
    h.run(3000);
    assert.equal(h.masterOf(2), 2);
    h.boot(1);
    h.partition([[1, 2, 3]]);
    h.run(3000);
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 2);
    for (const t of ['AssignClusterIp', 'StartPanel', 'PromoteDatabase'] as const) assert.equal(h.actionsOf(1, t).length, 0, `n1 ${t}`);
    assert.deepEqual([...h.ip], [2]);
    assert.match(h.core(1).view().nodes[0]!.reason, /n1 not master: n2 is established and failback is off/);
  });

  it('with failback on, the better node takes over and the IP moves without overlap', () => {
    const h = cluster({ failback: true });
    h.start([2, 3]);
    h.boot(1);
    h.partition([[2, 3], [1]]); // n1 runs for a while before its link comes up
    h.run(3000);
    h.partition([[1, 2, 3]]);
    const joinedAt = h.now;
    h.run(3000);
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 1);
    assert.deepEqual([...h.ip], [1]);
    assert.deepEqual([...h.panel], [1]);
    // The old master confirmed its release, so the handover did not wait a full lease.
    assert.ok(h.decisions.some((d) => d.node === 1 && /n2 confirmed it released/.test(d.reason)));
    const assign = h.actions.find((l) => l.node === 1 && l.action.type === 'AssignClusterIp')!;
    assert.ok(assign.at - joinedAt <= 200, `handover took ${assign.at - joinedAt} ms`);
  });

  it('a prio change does not move the master; an explicit elect request does', () => {
    const h = converged();
    const raised = NODES.map((n) => (n.nodeid === 3 ? { ...n, prio: 200 } : n));
    h.deliver(1, { type: 'desired-config', nodes: raised });
    const dist = h.actionsOf(1, 'DistributeConfig');
    assert.equal(dist.length, 1);
    assert.equal((dist[0] as Extract<CoreAction, { type: 'DistributeConfig' }>).version, 2);
    h.deliver(2, { type: 'desired-config', nodes: raised }); // non-masters ignore the DB
    assert.equal(h.actionsOf(2, 'DistributeConfig').length, 0);
    for (const id of [1, 2, 3]) h.post(id, { type: 'config', version: 2, nodes: raised });
    h.pump();
    h.run(2000);
    assert.equal(h.masterOf(2), 1, 'no re-election on a prio change');
    h.deliver(2, { type: 'admin', request: { kind: 'elect' } });
    h.pump();
    h.run(2000);
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 3);
    assert.deepEqual([...h.ip], [3]);
  });

  it('with failback on, a prio change moves the master', () => {
    const h = converged({ failback: true });
    const raised = NODES.map((n) => (n.nodeid === 2 ? { ...n, prio: 300 } : n));
    for (const id of [1, 2, 3]) h.post(id, { type: 'config', version: 2, nodes: raised });
    h.pump();
    h.run(2000);
    assert.equal(h.masterOf(3), 2);
    assert.deepEqual([...h.ip], [2]);
  });
});

describe('node core: storage and exclusion', () => {
  it('excluded (test IP and storage fine) keeps its VMs and the majority does not relocate them', () => {
    const h = converged();
    h.partition([[1, 2], [3]]);
    h.run(15_000); // longer than storage + fence timeouts
    assert.equal(h.core(3).role().selfStatus, 'excluded');
    assert.deepEqual(h.running()[3], ['vm3', 'vm4', 'vm5']);
    assert.equal(h.actionsOf(3, 'StopVm').length, 0);
    assert.equal(h.core(1).view().nodes[2]!.status, 'excluded');
    assert.ok(!h.actions.some((l) => l.action.type === 'SendCpg' && l.action.msg.kind === 'assign'));
    assert.deepEqual([...h.ip], [1], 'the excluded node never had the IP; the majority keeps it');
  });

  it('storage isolation: the node stops its VMs and the master restarts the HA ones elsewhere', () => {
    const h = converged();
    h.storageUp.set(3, false);
    h.run(8000);
    assert.equal(h.core(3).role().selfStatus, 'storage_isolation');
    assert.deepEqual(h.running()[3], []);
    const elsewhere = [...(h.running()[1] ?? []), ...(h.running()[2] ?? [])];
    assert.ok(elsewhere.includes('vm3'));
    assert.ok(!elsewhere.includes('vm4') && !elsewhere.includes('vm5'));
    assert.equal(h.core(1).view().nodes[2]!.status, 'storage_isolation');
    assert.equal(h.metadata.get('vm3')!.epoch, 2);
  });

  it('full failure: VMs move only after the heartbeat is stale for storage + fence timeouts', () => {
    const h = converged();
    const crashAt = h.now;
    h.crash(3);
    h.run(15_000);
    const started = h.actions.find((l) => l.at > crashAt && l.action.type === 'StartVm' && l.action.vm === 'vm3')!;
    assert.ok(started.at - crashAt >= 10_000, `restarted after ${started.at - crashAt} ms`);
    assert.equal(h.core(1).view().nodes[2]!.status, 'full_failure');
  });

  it('a VM that fits nowhere stays down with a reason and is placed when capacity appears', () => {
    const small: NodeConfig[] = NODES.map((n) => ({ ...n, ramMb: n.nodeid === 3 ? 16384 : 3000 }));
    const h = cluster({}, small);
    h.start();
    h.run(3000);
    h.storageUp.set(3, false);
    h.run(8000);
    assert.ok(h.decisions.some((d) => d.node === 1 && /vm3 stays down: needs 2048 MB, most free is 952 MB/.test(d.reason)));
    assert.ok(!Object.values(h.running()).flat().includes('vm3'));
    // n3's storage comes back: it is a good member again and its own VM restarts there.
    h.storageUp.set(3, true);
    h.run(3000);
    assert.ok(h.running()[3]!.includes('vm3'));
  });
});

describe('node core: hostile or broken input', () => {
  it('invalid CPG messages are ignored with a reason and change nothing', () => {
    const h = converged();
    const before = h.core(2).role();
    const garbage: unknown[] = [
      null,
      'x',
      { v: 2, kind: 'renew' },
      { v: 1, kind: 'nope' },
      { v: 1, kind: 'assign', term: 'high', vm: 'vm1' },
      { v: 1, kind: 'report', prio: 1, status: 'god', running: [], configVersion: 1, nodeCount: 3, failback: false },
    ];
    for (const msg of garbage) {
      const r = h.deliver(2, { type: 'cpg-message', from: 3, msg })!;
      assert.deepEqual(r.actions.filter((a) => a.type !== 'WriteHeartbeat' && a.type !== 'ReadHeartbeats' && a.type !== 'ProbeTestIp'), []);
      assert.ok(r.decisions.some((d) => d.kind === 'ignored' && /message from n3 ignored: /.test(d.reason)));
    }
    assert.deepEqual(h.core(2).role(), before);
  });

  it('well-formed lies from a non-master are ignored', () => {
    const h = converged();
    const term = h.core(2).role().term;
    const lies = [
      { v: 1, kind: 'assign', term, vm: 'vm1', from: 1, fromEpoch: 1, to: 3, epoch: 2, reason: 'trust me' },
      { v: 1, kind: 'vm-table', term, vms: [], owners: [] },
      { v: 1, kind: 'renew', term, sentAt: 0 },
    ];
    for (const msg of lies) h.post(2, { type: 'cpg-message', from: 3, msg });
    h.pump();
    h.run(2000);
    assert.ok(h.decisions.some((d) => d.node === 2 && /assign vm1 -> n3 .*ignored: n3 is not the master/.test(d.reason)));
    assert.ok(h.decisions.some((d) => d.node === 2 && /vm-table from n3 .*not the master/.test(d.reason)));
    assert.deepEqual(h.running(), { 1: ['vm1'], 2: ['vm2'], 3: ['vm3', 'vm4', 'vm5'] });
    assert.equal(h.masterOf(2), 1);
  });

  it('messages from outside the view are ignored', () => {
    const h = converged();
    const r = h.deliver(2, { type: 'cpg-message', from: 9, msg: { v: 1, kind: 'elect', reason: 'x' } })!;
    assert.ok(r.decisions.some((d) => /elect from n9, which is not in the view/.test(d.reason)));
    assert.equal(h.masterOf(2), 1);
  });

  it('is deterministic: same events, same output', () => {
    const a = converged();
    const b = converged();
    assert.deepEqual(
      a.actions.map((l) => [l.at, l.node, l.action]),
      b.actions.map((l) => [l.at, l.node, l.action]),
    );
  });
});

describe('node core: messages it emits', () => {
  it('only valid messages are sent', () => {
    const h = converged();
    h.partition([[1, 2], [3]]);
    h.run(3000);
    const kinds = new Set(h.actions.flatMap((l) => sent([l.action])));
    for (const k of ['hello', 'renew', 'report', 'vm-table', 'start']) assert.ok(kinds.has(k), `never sent ${k}`);
  });
});

describe('node core: startup grace (a cluster that boots together elects its best node)', () => {
  /** corosync runs on all three nodes, but only the agents of n2 and n3 have started. */
  function bootWithoutN1(settings: Parameters<typeof createNodeCore>[1] = {}): Harness {
    const h = cluster(settings);
    h.boot(2);
    h.boot(3);
    h.partition([[1, 2, 3]]);
    return h;
  }

  it('does not elect a fresh master while a quorate node has no agent yet; elects the best once it joins', () => {
    const h = bootWithoutN1();
    h.run(300);
    for (const id of [2, 3]) assert.equal(h.masterOf(id), null);
    assert.ok(h.decisions.some((d) => d.node === 2 && /waiting up to 5s for n1's agent to join/.test(d.reason)), 'the deferral is explained');
    assert.equal(h.ip.size, 0);
    h.startAgent(1); // ~300 ms after the others, as on the lab
    h.run(3000);
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 1);
    assert.deepEqual([...h.ip], [1]);
    for (const t of ['AssignClusterIp', 'StartPanel', 'PromoteDatabase'] as const) assert.equal(h.actionsOf(2, t).length, 0, `n2 ${t}`);
    assert.ok(!h.decisions.some((d) => /master n2/.test(d.reason)), 'n2 was never master');
  });

  it('an agent that never starts: the grace expires and the others elect without it', () => {
    const h = bootWithoutN1();
    h.run(4900);
    for (const id of [2, 3]) assert.equal(h.masterOf(id), null);
    h.run(1000);
    for (const id of [2, 3]) assert.equal(h.masterOf(id), 2);
    const elected = h.decisions.find((d) => d.node === 2 && d.kind === 'election' && /master n2/.test(d.reason))!;
    assert.ok(elected.at >= 5000 && elected.at <= 5200, `elected at ${elected.at} ms`);
    assert.ok(h.decisions.some((d) => d.node === 2 && /startup grace over/.test(d.reason)));
    h.run(3000);
    assert.deepEqual([...h.ip], [2]);
  });

  it('startupGraceMs: 0 turns it off (first view elects at once)', () => {
    const h = bootWithoutN1({ startupGraceMs: 0 });
    h.run(300);
    assert.equal(h.masterOf(2), 2);
  });

  it('never delays a failover: the established master lost (its corosync still up) is replaced at once', () => {
    const h = converged(); // 3 s after start: everyone is still within 5 s of its start, but saw a master
    const lostAt = h.now;
    h.crashAgent(1); // n1 stays in the corosync quorum, its agent is gone from the CPG group
    assert.equal(h.masterOf(2), 2);
    const d = h.decisions.find((x) => x.node === 2 && x.kind === 'election' && /master n2/.test(x.reason))!;
    assert.equal(d.at, lostAt);
    assert.ok(!h.decisions.some((x) => x.at >= lostAt && /waiting up to/.test(x.reason)));
  });

  it('a newcomer after an established master is elected does not trigger a wait or a failback', () => {
    const h = bootWithoutN1();
    h.run(6000); // grace expired: n2 elected
    assert.equal(h.masterOf(2), 2);
    h.startAgent(1);
    h.run(2000);
    for (const id of [1, 2, 3]) assert.equal(h.masterOf(id), 2);
    assert.deepEqual([...h.ip], [2]);
  });
});

describe('node core: DemoteDatabase', () => {
  it('at startup the database is made read-only first, before the IP/panel release', () => {
    const h = cluster();
    h.start();
    for (const id of [1, 2, 3]) {
      const first = h.actionsOf(id).slice(0, 3).map((a) => a.type);
      assert.deepEqual(first, ['DemoteDatabase', 'ReleaseClusterIp', 'StopPanel'], `n${id}`);
      assert.match(h.actionsOf(id, 'DemoteDatabase')[0]!.reason, /startup: not master yet/);
    }
  });

  it('a master that loses the election demotes before releasing anything, then follows the new master', () => {
    const h = converged();
    const since = h.now;
    const raised = NODES.map((n) => (n.nodeid === 3 ? { ...n, prio: 200 } : n));
    h.deliver(1, { type: 'desired-config', nodes: raised });
    h.pump();
    for (const id of [1, 2, 3]) h.deliver(id, { type: 'config', version: 2, nodes: raised });
    h.pump();
    h.deliver(2, { type: 'admin', request: { kind: 'elect' } });
    h.pump();
    h.run(2000);
    assert.equal(h.masterOf(1), 3);
    const mine = types(h.actionsOf(1, undefined, since)).filter((t) => ['DemoteDatabase', 'ReleaseClusterIp', 'StopPanel', 'FollowDatabase', 'PromoteDatabase'].includes(t));
    assert.deepEqual(mine, ['DemoteDatabase', 'ReleaseClusterIp', 'StopPanel', 'FollowDatabase']);
    assert.match(h.actionsOf(1, 'DemoteDatabase', since)[0]!.reason, /n3 is master now/);
    assert.deepEqual(h.actionsOf(3, 'PromoteDatabase', since).length, 1);
  });

  it('lease expiry demotes; the master that re-takes its lease promotes again', () => {
    const h = converged();
    h.pause(1);
    h.run(1500);
    const r = h.resume(1)!;
    assert.match(r.actions[0]!.reason, /lease expired/);
    assert.equal(r.actions[0]!.type, 'DemoteDatabase');
    h.run(1000);
    assert.equal(h.actionsOf(1, 'PromoteDatabase').length, 2);
  });

  it('quorum loss demotes in the same step', () => {
    const h = converged();
    const r = h.deliver(1, { type: 'quorum', quorate: false, members: [1] })!;
    assert.equal(r.actions[0]!.type, 'DemoteDatabase');
    assert.match(r.actions[0]!.reason, /quorum lost/);
  });

  it('a non-master never demotes again after startup (FollowDatabase unchanged)', () => {
    const h = converged();
    assert.equal(h.actionsOf(2, 'DemoteDatabase').length, 1);
    assert.deepEqual(h.actionsOf(2, 'FollowDatabase').map((a) => (a.type === 'FollowDatabase' ? a.master : 0)), [1]);
  });
});

it("leftoversReleased: the daemon cleaned up before the first step, so no startup release race", () => {
  const clean = createNodeCore(1, {}, { incarnation: 1, leftoversReleased: true });
  const r = clean.step({ type: "tick", now: 1000 });
  assert.ok(!r.actions.some((a) => a.type === "ReleaseClusterIp" || a.type === "StopPanel"));
  assert.ok(r.actions.some((a) => a.type === "DemoteDatabase"), "the database is still demoted first");
  assert.ok(r.watchdogDeadline > 1000 + 200, "no startedAt + leaseMarginMs deadline");
  const plain = createNodeCore(1, {}, { incarnation: 1 });
  const p = plain.step({ type: "tick", now: 1000 });
  assert.ok(p.actions.some((a) => a.type === "ReleaseClusterIp"));
  assert.ok(p.watchdogDeadline <= 1000 + 200);
});

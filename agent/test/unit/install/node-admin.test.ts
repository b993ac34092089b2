import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { buildCorosyncConf, writeCorosyncConf, parseCorosyncConf, readClusterConfig } from "@ha/shared";
import { refuseAddNode, refuseRemoveNode, estimateClockOffset, refuseClockOffset, votesNeeded, type ClusterFacts } from "../../../src/node-admin.ts";
import { renderDistributedConfig } from "../../../src/effects/config-sync.ts";
import { preflightRefusals, agentConfigFor, renderAgentUnit, renderFileSyncUnit, memberArgv, packageCommand, REQUIRED_PACKAGES, installPaths } from "../../../src/install/plan.ts";
import { decodeEnvelope, encodeEnvelope } from "../../../src/wire.ts";

const facts = (over: Partial<ClusterFacts> = {}): ClusterFacts => ({
  nodes: [1, 2, 3].map((id) => ({ nodeid: id, addr: `10.0.0.${10 + id}`, name: `n${id}` })),
  quorate: true,
  members: [1, 2, 3],
  master: 1,
  owners: [],
  ...over,
});
const add = { nodeid: 4, addr: "10.0.0.14", prio: 5, name: "n4" };

test("votes needed is a strict majority of the configured nodes", () => {
  assert.deepEqual([1, 2, 3, 4, 5].map(votesNeeded), [1, 2, 2, 3, 3]);
});

test("adding a node: accepted on a quorate cluster with a free id and address", () => {
  assert.equal(refuseAddNode(facts(), add), null);
});

test("adding a node: duplicate id, address or name, and no quorum are refused with the reason", () => {
  assert.match(refuseAddNode(facts(), { ...add, nodeid: 2 })!, /nodeid 2 is already used by n2 \(n2\) at 10\.0\.0\.12/);
  assert.match(refuseAddNode(facts(), { ...add, addr: "10.0.0.13" })!, /address 10\.0\.0\.13 is already used by n3/);
  assert.match(refuseAddNode(facts(), { ...add, name: "n1" })!, /name n1 is already used/);
  assert.match(refuseAddNode(facts({ quorate: false, members: [3] }), add)!, /no quorum/);
  // 2 of 3 online is quorate, but 2 of 4 would not be until the new node joins.
  assert.match(refuseAddNode(facts({ members: [1, 2] }), add)!, /would lose quorum until it joins: 2 members online, 3 needed out of 4/);
});

test("removing a node: refused while it owns VMs, for the master, without quorum after, or when too few nodes remain", () => {
  assert.equal(refuseRemoveNode(facts(), 3), null);
  assert.match(refuseRemoveNode(facts({ owners: [{ vm: "web2", node: 3 }, { vm: "web1", node: 3 }, { vm: "db", node: 2 }] }), 3)!, /still owns VMs \(web1, web2\): drain it first \(corolistener maintenance 3 on\)/);
  assert.match(refuseRemoveNode(facts(), 1)!, /n1 is the master/);
  assert.match(refuseRemoveNode(facts(), 9)!, /n9 is not in corosync.conf/);
  // 5 nodes, 3 online: removing an online one leaves 2 of 4 (3 needed).
  const five = facts({ nodes: [1, 2, 3, 4, 5].map((id) => ({ nodeid: id, addr: `10.0.0.${10 + id}` })), members: [1, 2, 3] });
  assert.match(refuseRemoveNode(five, 3)!, /would lose quorum: 2 other members online, 3 needed out of 4/);
  assert.equal(refuseRemoveNode(five, 5), null); // an offline one: 3 of 4
  assert.match(refuseRemoveNode(facts({ nodes: facts().nodes.slice(0, 2), members: [1, 2] }), 2)!, /at least two nodes/);
});

test("clock offset: the quickest round trip wins; more than 1 s is refused", () => {
  const est = estimateClockOffset([
    { sentMs: 0, remoteMs: 900, receivedMs: 400 },
    { sentMs: 1000, remoteMs: 2530, receivedMs: 1040 },
  ]);
  assert.equal(est.offsetMs, 1510);
  assert.equal(est.uncertaintyMs, 20);
  assert.match(refuseClockOffset(1510, "root@m")!, /clock is 1510 ms behind root@m \(at most 1000 ms allowed\)/);
  assert.match(refuseClockOffset(-1200, "m")!, /ahead of m/);
  assert.equal(refuseClockOffset(-999, "m"), null);
});

const conf = (crypto: boolean, ids = [1, 2, 3]) =>
  writeCorosyncConf(
    buildCorosyncConf({ clusterName: "c", crypto, configVersion: 7n, nodes: ids.map((id) => ({ nodeid: id, name: `n${id}`, ring0Addr: `10.0.0.${10 + id}`, prio: id * 10, replication: true })) }),
  );

test("distributed config: adds and removes nodes, bumps the version, keeps crypto", () => {
  const current = conf(true);
  const nodes = [1, 2, 3].map((id) => ({ nodeid: id, prio: id * 10, addr: `10.0.0.${10 + id}`, replication: true }));
  const added = readClusterConfig(parseCorosyncConf(renderDistributedConfig(current, 8, [...nodes, { nodeid: 4, prio: 5, addr: "10.0.0.14", replication: true }], new Map([[4, "n4"]]))));
  assert.equal(added.configVersion, 8n);
  assert.deepEqual(added.nodes.map((n) => [n.nodeid, n.name, n.ring0Addr, n.prio]), [[1, "n1", "10.0.0.11", 10], [2, "n2", "10.0.0.12", 20], [3, "n3", "10.0.0.13", 30], [4, "n4", "10.0.0.14", 5]]);
  assert.equal(added.crypto.cipher, "aes256");
  const removed = readClusterConfig(parseCorosyncConf(renderDistributedConfig(current, 8, nodes.filter((n) => n.nodeid !== 2))));
  assert.deepEqual(removed.nodes.map((n) => n.nodeid), [1, 3]);
  assert.throws(() => renderDistributedConfig(current, 8, [...nodes, { nodeid: 5, prio: 0 }]), /cannot add n5 to corosync.conf: no address/);
});

test("wire: add-node and remove-node requests round-trip; bad ones are dropped", () => {
  const env = { ch: "admin" as const, request: { kind: "add-node" as const, nodeid: 4, addr: "10.0.0.14", prio: 5, name: "n4" } };
  assert.deepEqual(decodeEnvelope(encodeEnvelope(env)), env);
  assert.equal(decodeEnvelope(Buffer.from(JSON.stringify({ ch: "admin", request: { kind: "add-node", nodeid: 70000, addr: "x", prio: 0 } }))), null);
  assert.equal(decodeEnvelope(Buffer.from(JSON.stringify({ ch: "admin", request: { kind: "add-node", nodeid: 4, addr: "x", prio: 0, name: "a b" } }))), null);
});

test("installer preflight: every reason is listed at once", () => {
  const ok = { options: add, facts: facts(), corosyncConf: conf(true), authkey: "a2V5", clockOffsetMs: 20, memberName: "root@m" };
  assert.deepEqual(preflightRefusals(ok), []);
  const bad = preflightRefusals({ ...ok, options: { ...add, nodeid: 2 }, corosyncConf: conf(false), authkey: null, clockOffsetMs: 1500 });
  assert.equal(bad.length, 4);
  assert.match(bad.join("\n"), /clock is 1500 ms behind/);
  assert.match(bad.join("\n"), /nodeid 2 is already used/);
  assert.match(bad.join("\n"), /no knet crypto/);
  assert.match(bad.join("\n"), /no \/etc\/corosync\/authkey/);
});

test("installer plan: member commands, packages, paths under --root", () => {
  assert.deepEqual(memberArgv({ member: "root@10.0.0.11" }, ["date", "+%s%3N"]), ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "root@10.0.0.11", "date", "+%s%3N"]);
  assert.deepEqual(memberArgv({ memberExec: "nsenter -t 42 -m --" }, ["corolistener", "node", "join-info"]), ["nsenter", "-t", "42", "-m", "--", "corolistener", "node", "join-info"]);
  assert.throws(() => memberArgv({ member: "m" }, ["node", "add", "--name", "x;rm -rf /"]), /refusing to pass/);
  assert.deepEqual(packageCommand("alma", REQUIRED_PACKAGES.filter((p) => p.binary === "chronyd")), ["dnf", "install", "-y", "chrony"]);
  assert.equal(packageCommand("debian", []), null);
  const p = installPaths({ root: "/tmp/r", agentConfig: "/etc/corolistener/config.json" });
  assert.equal(p.unit, "/tmp/r/etc/systemd/system/corolistener.service");
  assert.equal(p.agentConfig, "/tmp/r/etc/corolistener/config.json");
  assert.equal(p.corosyncConf, "/etc/corosync/corosync.conf");
});

test("the systemd units in deploy/ are the installer's default renderings", () => {
  const file = readFileSync(new URL("../../../../deploy/systemd/corolistener.service", import.meta.url), "utf8");
  assert.equal(file, renderAgentUnit());
  assert.match(file, /^Restart=always$/m);
  assert.match(file, /^After=corosync\.service/m);
  assert.doesNotMatch(file, /^WatchdogSec=/m); // the agent has no sd_notify
  const fileSync = readFileSync(new URL("../../../../deploy/systemd/nodereplication.service", import.meta.url), "utf8");
  assert.equal(fileSync, renderFileSyncUnit());
  assert.match(fileSync, /^ExecStart=\/opt\/corolistener\/nodereplication serve --config \/etc\/corolistener\/config\.json$/m);
  assert.ok(renderAgentUnit({ agentConfig: "/etc/x.json" }).includes("daemon --config /etc/x.json"));
});

test("installer edges: join-info from the member is validated; --root needs --no-start", async () => {
  const { parseJoinInfo } = await import("../../../src/install/plan.ts");
  const { parseInstallOptions } = await import("../../../src/install/installer.ts");
  const good = { memberNodeId: 1, clusterName: "c", configVersion: "7", corosyncConf: conf(true), authkey: "a2V5", agentConfig: {}, facts: facts() };
  assert.equal(parseJoinInfo(JSON.stringify(good)).facts.members.length, 3);
  assert.throws(() => parseJoinInfo("corolistener: the corolistener daemon is not running"), /join-info is not JSON/);
  assert.throws(() => parseJoinInfo(JSON.stringify({ ...good, facts: { ...good.facts, quorate: "yes" } })), /join-info is malformed: facts.quorate/);
  const base = { nodeid: "4", addr: "10.0.0.14", member: "root@10.0.0.11", agentSource: "/src" };
  assert.equal(parseInstallOptions(base).prio, 0);
  assert.throws(() => parseInstallOptions({ ...base, root: "/tmp/x" }), /--root other than \/ stages files only: add --no-start/);
  assert.equal(parseInstallOptions({ ...base, root: "/tmp/x", start: false }).root, "/tmp/x");
  assert.throws(() => parseInstallOptions({ ...base, memberExec: "nsenter" }), /exactly one of --member/);
  assert.throws(() => parseInstallOptions({ ...base, addr: "10.0.0" }), /--addr: must be this node's IPv4/);
});

test("the new node's agent settings: the member's, with its own name and file-sync listen address", () => {
  const member = { nodeName: "n1", clusterIp: "10.0.0.100", fileSync: { secret: "same-on-every-node", port: 873, listenAddress: "10.0.0.11", hostsAllow: "10.0.0.0/24" } };
  assert.deepEqual(agentConfigFor(member, "n4", "10.0.0.14"), { nodeName: "n4", clusterIp: "10.0.0.100", fileSync: { secret: "same-on-every-node", port: 873, listenAddress: "10.0.0.14", hostsAllow: "10.0.0.0/24" } });
  assert.deepEqual(agentConfigFor({ nodeName: "n1" }, "n4", "10.0.0.14"), { nodeName: "n4" });
  assert.equal(member.fileSync.listenAddress, "10.0.0.11"); // the member's object is untouched
});

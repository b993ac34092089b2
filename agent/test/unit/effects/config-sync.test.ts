import { test } from "node:test";
import assert from "node:assert/strict";
import { buildCorosyncConf, writeCorosyncConf, parseCorosyncConf, readClusterConfig } from "@ha/shared";
import { renderDistributedConfig, refuseReceivedConfig } from "../../../src/effects/config-sync.ts";
import { decodeEnvelope, encodeEnvelope } from "../../../src/wire.ts";
import { parseAgentConfig } from "../../../src/config.ts";

const conf = (version: bigint) =>
  writeCorosyncConf(
    buildCorosyncConf({
      clusterName: "c",
      crypto: false,
      configVersion: version,
      nodes: [
        { nodeid: 1, ring0Addr: "10.0.0.1", prio: 10 },
        { nodeid: 2, ring0Addr: "10.0.0.2", prio: 20 },
      ],
    }),
  );

test("the master's distributed file carries the new prios and version, everything else kept", () => {
  // The list is the whole desired nodelist (a node left out would be removed: see node-admin.test.ts).
  const text = renderDistributedConfig(conf(4n), 5, [{ nodeid: 1, prio: 99, replication: true }, { nodeid: 2, prio: 20 }]);
  const cfg = readClusterConfig(parseCorosyncConf(text));
  assert.equal(cfg.configVersion, 5n);
  assert.deepEqual(cfg.nodes.map((n) => [n.nodeid, n.prio, n.replication]), [[1, 99, true], [2, 20, false]]);
  assert.equal(cfg.clusterName, "c");
});

test("a received file is refused when stale, foreign or malformed, with the reason", () => {
  assert.equal(refuseReceivedConfig(conf(5n), 4n, 1), null);
  assert.match(refuseReceivedConfig(conf(4n), 4n, 1)!, /not newer than ours \(4\)/);
  assert.match(refuseReceivedConfig(conf(5n), 4n, 9)!, /does not list this node \(9\)/);
  assert.match(refuseReceivedConfig("totem {\n", 4n, 1)!, /not a valid corosync.conf: .*1:/);
});

test("CPG envelopes: round trip, and garbage from a lying node is dropped", () => {
  const e = { ch: "conf-ack" as const, version: 3 };
  assert.deepEqual(decodeEnvelope(encodeEnvelope(e)), e);
  assert.equal(decodeEnvelope(Buffer.from("not json")), null);
  assert.equal(decodeEnvelope(Buffer.from(JSON.stringify({ ch: "conf", version: -1, text: "" }))), null);
  assert.equal(decodeEnvelope(Buffer.from(JSON.stringify({ ch: "evil" }))), null);
});

test("agent config: defaults, and clear errors naming the field", () => {
  const c = parseAgentConfig("{}");
  assert.equal(c.clusterIpDevice, "vmbr0");
  assert.equal(c.logFile, "/usr/local/mgr5/var/corolistener.log");
  assert.equal(c.serviceLockFile, "/tmp/.lock.vmmgr.service");
  assert.throws(() => parseAgentConfig('{"clusterIp":"300.1.1.1"}', "x.json"), /x.json: clusterIp: /);
  assert.throws(() => parseAgentConfig('{"ha":{"leaseMs":-1}}'), /ha.leaseMs/);
  assert.throws(() => parseAgentConfig("{oops"), /not valid JSON/);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { labTopology, findNode, partitionRuleset } from "../../src/topology.ts";
import { classifyCmdline, parseProcessKind } from "../../src/processes.ts";
import { parseQuorumtool } from "../../src/lab.ts";

test("topology: names, addresses and prios for N nodes", () => {
  const t = labTopology("lab", 3);
  assert.equal(t.switchNs, "lab-sw");
  assert.deepEqual(
    t.nodes.map((n) => [n.name, n.ns, n.ctlAddr, n.dataAddr, n.prio]),
    [
      ["n1", "lab-n1", "172.31.224.11", "172.31.225.11", 30],
      ["n2", "lab-n2", "172.31.224.12", "172.31.225.12", 20],
      ["n3", "lab-n3", "172.31.224.13", "172.31.225.13", 10],
    ],
  );
  assert.equal(labTopology("lab", 16).nodes.length, 16);
});

test("topology: rejects bad sizes and names with clear messages", () => {
  assert.throws(() => labTopology("lab", 0), /1 to 16 nodes, not 0/);
  assert.throws(() => labTopology("lab", 17), /1 to 16 nodes, not 17/);
  assert.throws(() => labTopology("Bad-Name", 3), /lab name/);
  assert.throws(() => findNode(labTopology("lab", 3), "n9"), /no node "n9" in lab lab/);
  assert.equal(findNode(labTopology("lab", 3), "n2").id, 2);
  assert.equal(findNode(labTopology("lab", 3), 3).id, 3);
});

test("partition ruleset drops only traffic between different groups", () => {
  const t = labTopology("lab", 5);
  const rules = partitionRuleset(t, [[1, 2], [3, 4, 5]]);
  assert.match(rules, /iifname "c1" oifname "c3" drop/);
  assert.match(rules, /iifname "c5" oifname "c2" drop/);
  assert.doesNotMatch(rules, /iifname "c1" oifname "c2"/);
  assert.doesNotMatch(rules, /iifname "c3" oifname "c4"/);
  assert.equal(rules.match(/drop/g)?.length, 12); // 2*3 pairs, both directions
  assert.doesNotMatch(partitionRuleset(t, []), /drop/);
});

test("process classification by command line", () => {
  assert.equal(classifyCmdline("corosync -f"), "corosync");
  assert.equal(classifyCmdline("/usr/sbin/mariadbd --datadir=/x"), "mariadb");
  assert.equal(classifyCmdline("node --import tsx /w/agent/src/cli/corolistener.ts daemon --config x"), "agent");
  assert.equal(classifyCmdline("sleep infinity"), "anchor");
  assert.equal(classifyCmdline("bash"), "other");
  assert.equal(parseProcessKind("all"), "all");
  assert.throws(() => parseProcessKind("nginx"), /unknown process "nginx"/);
});

test("parses corosync-quorumtool output", () => {
  const out = `Quorum information
------------------
Date:             Mon Nov 23 03:50:00 2026
Quorum provider:  corosync_votequorum
Nodes:            2
Node ID:          1
Ring ID:          1.10
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      2
Quorum:           2
Flags:            Quorate

Membership information
----------------------
    Nodeid      Votes Name
         1          1 172.31.224.11 (local)
         2          1 172.31.224.12
`;
  assert.deepEqual(parseQuorumtool(out), { quorate: true, members: [1, 2] });
  assert.deepEqual(parseQuorumtool(out.replace("Quorate:          Yes", "Quorate:          No")).quorate, false);
});

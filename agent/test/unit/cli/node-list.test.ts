import { test } from "node:test";
import assert from "node:assert/strict";
import { renderNodeList } from "../../../src/cli/node-list.ts";
import { nodeListFromCorosync } from "../../../src/cli/corolistener-lib.ts";

test("renders the classic right-aligned node list", () => {
  const out = renderNodeList([
    { id: 7, ip: "172.31.224.72", status: "joined", master: true, prio: 100 },
    { id: 12, ip: "172.31.224.9", status: "left", master: false, prio: 5 },
  ]);
  assert.equal(
    out,
    [
      "  Id               Ip    Status    Master/Slave    Priority",
      "   7    172.31.224.72    joined               M         100",
      "  12     172.31.224.9      left               S           5",
      "",
    ].join("\n"),
  );
});

const node = (nodeid: number, prio: number) => ({ nodeid, prio, replication: false, ring0Addr: `10.0.0.${nodeid}`, raw: {} });

test("corosync-only view: master is the highest prio quorate member, ties to the lowest nodeid", () => {
  const base = { connected: true, cpgMembers: [], nodes: [node(1, 10), node(2, 50), node(3, 50)] };
  const rows = nodeListFromCorosync({ ...base, quorate: true, members: [1, 2, 3] });
  assert.deepEqual(rows.map((r) => [r.id, r.status, r.master]), [[1, "joined", false], [2, "joined", true], [3, "joined", false]]);
  const without2 = nodeListFromCorosync({ ...base, quorate: true, members: [1, 3] });
  assert.equal(without2.find((r) => r.master)?.id, 3);
  assert.equal(without2.find((r) => r.id === 2)?.status, "left");
  assert.equal(nodeListFromCorosync({ ...base, quorate: false, members: [1] }).some((r) => r.master), false);
});

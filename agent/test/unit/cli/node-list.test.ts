import { test } from "node:test";
import assert from "node:assert/strict";
import { renderNodeList } from "../../../src/cli/node-list.ts";
import { nodeListFromCorosync, nodeListFromView } from "../../../src/cli/corolistener-lib.ts";

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

test("-l: a node whose database keeps it from being master is listed below the table with the reason, and in the rows (JSON)", () => {
  const view = {
    nodes: [
      { nodeid: 1, addr: "10.0.0.1", status: "leader", isMaster: true, prio: 100, reason: "", dbEligible: true },
      { nodeid: 2, addr: "10.0.0.2", status: "member", isMaster: false, prio: 50, reason: "", dbEligible: false, dbReason: "database diverged: being re-cloned from n1" },
      { nodeid: 3, addr: "10.0.0.3", status: "member", isMaster: false, prio: 10, reason: "" },
    ],
  } as unknown as Parameters<typeof nodeListFromView>[0];
  const db = {
    checkedAt: 0,
    nodes: [
      { nodeid: 1, reachable: true, role: "primary" as const, replication: "none" as const, gtid: "0-1-42" },
      { nodeid: 2, reachable: true, role: "replica" as const, replication: "error" as const, source: "10.0.0.1", error: "IO error 1236: diverged", gtid: "0-2-40" },
    ],
  };
  const rows = nodeListFromView(view, db);
  assert.deepEqual(rows.map((r) => [r.id, r.dbEligible, r.dbReason]), [[1, true, undefined], [2, false, "database diverged: being re-cloned from n1"], [3, undefined, undefined]]);
  assert.equal("dbEligible" in rows[2]!, false, "no verdict: the JSON row is unchanged");
  assert.equal(
    renderNodeList(rows),
    [
      "  Id          Ip    Status    Master/Slave    Priority    Database",
      "   1    10.0.0.1    leader               M         100    primary",
      "   2    10.0.0.2    member               S          50    replica error: IO error 1236: diverged",
      "   3    10.0.0.3    member               S          10    -",
      "",
      "Not eligible as master:",
      "  n2: database diverged: being re-cloned from n1",
      "",
    ].join("\n"),
  );
});

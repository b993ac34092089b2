// Issue 2 on a real lab: quorum and membership through our bindings, faults, reconnect, CPG order.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { Lab, REPO_ROOT, run, sleep } from "../../src/index.ts";
import { Probe } from "../../src/probe.ts";

type ListJson = { localNodeId: number; quorate: boolean; members: number[]; nodes: Array<{ id: number; status: string; master: boolean; prio: number; ip: string }> };

async function list(lab: Lab, node: number): Promise<ListJson> {
  const r = await lab.exec(node, ["./corolistener", "-l", "--json"], { timeoutMs: 15_000 });
  assert.equal(r.code, 0, `corolistener -l on n${node} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ListJson;
}

/** Polls `corolistener -l --json` on a node until the predicate holds. */
async function waitList(lab: Lab, node: number, pred: (l: ListJson) => boolean, timeoutMs = 20_000): Promise<ListJson> {
  const deadline = Date.now() + timeoutMs;
  let last: ListJson | undefined;
  while (Date.now() < deadline) {
    last = await list(lab, node);
    if (pred(last)) return last;
    await sleep(250);
  }
  throw new Error(`n${node}: condition not reached in ${timeoutMs} ms; last view: ${JSON.stringify(last)}`);
}

const masterOf = (l: ListJson) => l.nodes.find((n) => n.master)?.id;

describe("3-node lab", { timeout: 240_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.up({ name: "t3", nodes: 3 });
  });
  after(async () => {
    await lab?.down();
  });

  it("every node's bindings report quorate, members [1,2,3] and the same master", async () => {
    const views = await Promise.all([1, 2, 3].map((n) => list(lab, n)));
    views.forEach((v, i) => {
      assert.equal(v.localNodeId, i + 1);
      assert.equal(v.quorate, true);
      assert.deepEqual(v.members, [1, 2, 3]);
      assert.equal(masterOf(v), 1, "n1 has the highest prio");
      assert.deepEqual(v.nodes.map((n) => n.status), ["joined", "joined", "joined"]);
    });
  });

  it("cut n3: n3 alone and not quorate, n1-n2 quorate with [1,2]; heal: all back", async () => {
    await lab.cut(3);
    const v3 = await waitList(lab, 3, (l) => !l.quorate && l.members.join() === "3");
    assert.equal(masterOf(v3), undefined, "a node without quorum sees no master");
    for (const n of [1, 2]) {
      const v = await waitList(lab, n, (l) => l.quorate && l.members.join() === "1,2");
      assert.equal(masterOf(v), 1);
      assert.equal(v.nodes.find((x) => x.id === 3)?.status, "left");
    }
    await lab.heal();
    for (const n of [1, 2, 3]) await waitList(lab, n, (l) => l.quorate && l.members.join() === "1,2,3");
  });

  it("kill corosync: the bindings notice, reconnect after a restart and report the right state", async () => {
    const probe = new Probe(lab, 2, ["--no-group"]);
    try {
      await probe.waitFor((l) => l.type === "quorum" && (l as { quorate?: boolean }).quorate === true, 15_000);
      const mark = probe.lines.length;
      lab.kill(2, "corosync");
      await probe.waitFor((l) => l.type === "disconnected", 10_000, mark);
      await sleep(1000);
      assert.ok(probe.alive, "the process survives losing corosync");
      await lab.start(2, "corosync");
      await probe.waitFor((l) => l.type === "connected", 20_000, mark);
      const q = await probe.waitFor((l) => l.type === "quorum" && (l as { members?: number[] }).members?.join() === "1,2,3", 20_000, mark);
      assert.equal((q as { quorate?: boolean }).quorate, true);
      await probe.waitFor((l) => l.type === "config", 5_000, mark);
    } finally {
      probe.stop();
    }
  });

  it("CPG: 3 nodes each send 100 messages at once; all nodes receive all 300 in the same order", async () => {
    const probes = [1, 2, 3].map((n) => new Probe(lab, n, ["--group", "order-test"]));
    try {
      await Promise.all(probes.map((p) => p.waitFor((l) => l.type === "cpg-membership" && (l as { members?: unknown[] }).members?.length === 3, 20_000)));
      probes.forEach((p, i) => p.send({ cmd: "sendMany", count: 100, prefix: `n${i + 1}-` }));
      const received = async (p: Probe) => {
        const deadline = Date.now() + 30_000;
        for (;;) {
          const msgs = p.lines.filter((l) => l.type === "cpg-message").map((l) => `${(l as { nodeid?: number }).nodeid}:${(l as { data?: string }).data}`);
          if (msgs.length >= 300) return msgs;
          if (Date.now() > deadline) throw new Error(`n${p.node} got only ${msgs.length} of 300 messages`);
          await sleep(100);
        }
      };
      const seqs = await Promise.all(probes.map(received));
      assert.equal(seqs[0]!.length, 300);
      assert.deepEqual(seqs[1], seqs[0], "n2 saw the same order as n1");
      assert.deepEqual(seqs[2], seqs[0], "n3 saw the same order as n1");
      for (const n of [1, 2, 3]) {
        const own = seqs[0]!.filter((m) => m.startsWith(`${n}:`)).map((m) => Number(m.split("-")[1]));
        assert.deepEqual(own, [...Array(100).keys()], `n${n}'s messages arrive in the order it sent them`);
      }
    } finally {
      probes.forEach((p) => p.stop());
    }
  });
});

describe("5-node lab partitioned 2|3", { timeout: 180_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.up({ name: "t5", nodes: 5 });
  });
  after(async () => {
    await lab?.down();
  });

  it("only the 3-side is quorate and each side's corolistener -l agrees on its view", async () => {
    await lab.partition([[1, 2], [3, 4, 5]]);
    const minority = await Promise.all([1, 2].map((n) => waitList(lab, n, (l) => !l.quorate && l.members.join() === "1,2")));
    const majority = await Promise.all([3, 4, 5].map((n) => waitList(lab, n, (l) => l.quorate && l.members.join() === "3,4,5")));
    const rows = (l: ListJson) => JSON.stringify(l.nodes);
    assert.equal(rows(minority[0]!), rows(minority[1]!));
    assert.ok(majority.every((v) => rows(v) === rows(majority[0]!)));
    assert.ok(minority.every((v) => masterOf(v) === undefined), "no master without quorum");
    assert.ok(majority.every((v) => masterOf(v) === 3), "n3 has the highest prio on the quorate side");
    await lab.heal();
    for (const n of [1, 2, 3, 4, 5]) await waitList(lab, n, (l) => l.quorate && l.members.length === 5);
  });
});

describe("corolistener -l outside a cluster", () => {
  it("exits non-zero with a clear message", async () => {
    // A fresh network + mount namespace with nothing running: no corosync to talk to.
    const r = await run(
      "unshare",
      ["-m", "-n", "--propagation", "private", "sh", "-c", "mount -t tmpfs none /run && mount -t tmpfs none /dev/shm && exec ./corolistener -l"],
      { timeoutMs: 30_000, cwd: REPO_ROOT },
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot connect to corosync: is corosync running on this node\?/);
  });
});

// Issue 3 on a real lab with agents: election, cluster IP and panel, failover on corosync kill and on a
// paused master, partition, flapping, exclusion and storage isolation. A checker samples every node's
// interfaces throughout and fails the suite if two nodes ever hold the cluster IP at once.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseCorosyncConf, readClusterConfig } from "@ha/shared";
import { Lab, Probe, HTTP_WATCH, ClusterIpChecker, sleep, waitUntil } from "../../src/index.ts";

type Row = { id: number; status: string; master: boolean; prio: number };
type View = { source: string; quorate: boolean; master: number | null; nodes: Row[] };

async function view(lab: Lab, node: number): Promise<View | null> {
  const r = await lab.exec(node, ["./corolistener", "-l", "--json"], { timeoutMs: 15_000 });
  return r.code === 0 ? (JSON.parse(r.stdout) as View) : null;
}

/** Waits until `node`'s daemon reports `master` as master and `node`'s statuses satisfy `pred`. */
const waitView = (lab: Lab, node: number, what: string, pred: (v: View) => boolean, timeoutMs = 30_000) =>
  waitUntil(`n${node}: ${what}`, async () => {
    const v = await view(lab, node);
    return v && v.source === "daemon" && pred(v) ? v : null;
  }, timeoutMs);

const statusOf = (v: View, id: number) => v.nodes.find((n) => n.id === id)?.status;

/** The panel as seen from inside node `from`, through the cluster IP. */
function panelWatch(lab: Lab, from: number) {
  return new Probe(lab, from, [`http://${lab.topo.clusterIp}:1500/api/health`, "50"], HTTP_WATCH);
}
const servedBy = (w: Probe, node: number, from = 0) =>
  w.waitFor((l) => l.type === "http" && String(l.state).startsWith("200") && String(l.state).includes(`"node":"n${node}"`), 30_000, from);

async function restartNode(lab: Lab, id: number) {
  for (const kind of ["corosync", "agent"] as const) if (lab.processes(id, kind).length === 0) await lab.start(id, kind);
}

describe("HA on a 3-node lab", { timeout: 600_000 }, () => {
  let lab: Lab;
  let checker: ClusterIpChecker;
  let watch: Probe;
  before(async () => {
    lab = await Lab.up({ name: "h3", nodes: 3, agents: true });
    checker = new ClusterIpChecker(lab).start();
    watch = panelWatch(lab, 3);
  });
  after(async () => {
    watch?.stop();
    const result = checker?.stop();
    await lab?.down();
    assert.deepEqual(result?.violations ?? [], [], "two nodes held the cluster IP at once");
  });

  it("the highest-prio node holds the cluster IP and serves the panel; -l shows M on it", async () => {
    await servedBy(watch, 1);
    assert.deepEqual(await checker.holders(), [1]);
    for (const n of [1, 2, 3]) {
      const v = await waitView(lab, n, "n1 leader, others member", (v) => v.master === 1 && statusOf(v, 2) === "member" && statusOf(v, 3) === "member");
      assert.equal(v.nodes.find((r) => r.master)?.id, 1);
      assert.equal(statusOf(v, 1), "leader");
    }
    const table = await lab.exec(2, ["./corolistener", "-l"]);
    assert.match(table.stdout, /^\s+1\s+172\.31\.224\.11\s+leader\s+M\s+30$/m);
  });

  it("kill the master's corosync: n2 takes the IP and the panel; n1, back, holds nothing", async () => {
    const mark = watch.lines.length;
    lab.kill(1, "corosync");
    await servedBy(watch, 2, mark);
    assert.deepEqual(await checker.holders(), [2]);
    await lab.start(1, "corosync");
    await waitView(lab, 1, "n1 back as a member under n2", (v) => v.master === 2 && statusOf(v, 1) === "member", 45_000);
    await sleep(2000);
    assert.deepEqual(await checker.holders(), [2], "no failback by default and no second holder");
  });

  it("SIGSTOP the whole master: the next node takes over; the old master, resumed, holds nothing", async () => {
    const mark = watch.lines.length;
    lab.pause(2, "all");
    await servedBy(watch, 1, mark);
    await sleep(1000);
    lab.resume(2, "all");
    await sleep(3000);
    const holders = await checker.holders();
    assert.deepEqual(holders, [1]);
    await restartNode(lab, 2); // its watchdog may have reset it while it was paused
    await waitView(lab, 2, "n2 back as a member under n1", (v) => v.master === 1 && statusOf(v, 2) === "member", 45_000);
    assert.deepEqual(await checker.holders(), [1]);
  });

  it("flap n3's link 4 times for 5 s: network unstable, no failover", async () => {
    for (let i = 0; i < 4; i++) {
      await lab.cut(3);
      await sleep(5000);
      await lab.heal(3);
      await waitView(lab, 1, "n3 rejoined", (v) => ["member", "network unstable"].includes(statusOf(v, 3) ?? ""), 30_000);
      await sleep(3000);
    }
    const v = await waitView(lab, 1, "n3 network unstable", (v) => statusOf(v, 3) === "network unstable", 20_000);
    assert.equal(v.master, 1, "the master never moved");
    assert.deepEqual(await checker.holders(), [1]);
  });

  it("cut n3's control link while the test IP answers: excluded, no relocation", async () => {
    await lab.cut(3);
    await waitView(lab, 1, "n3 excluded", (v) => statusOf(v, 3) === "excluded", 30_000);
    await waitView(lab, 3, "n3 sees itself excluded", (v) => statusOf(v, 3) === "excluded", 30_000);
    await lab.heal(3);
    await waitView(lab, 1, "n3 back", (v) => ["member", "network unstable"].includes(statusOf(v, 3) ?? ""), 30_000);
  });

  it("set-node raises n3's prio: the master distributes corosync.conf to every node, no re-election; elect moves it", async () => {
    const r = await lab.exec(2, ["./corolistener", "set-node", "3", "--prio", "99", "-c", "/etc/corosync/corolistener.json"]);
    assert.equal(r.code, 0, r.stderr);
    const confOf = (id: number) => readClusterConfig(parseCorosyncConf(readFileSync(join(lab.nodeDir(id), "etc-corosync", "corosync.conf"), "utf8")));
    await waitUntil("corosync.conf with n3 prio 99 on every node", async () =>
      [1, 2, 3].every((id) => {
        const c = confOf(id);
        return c.configVersion >= 2n && c.nodes.find((n) => n.nodeid === 3)?.prio === 99;
      }),
    );
    const v = await waitView(lab, 1, "corosync reloaded: n3 has prio 99", (v) => v.nodes.find((n) => n.id === 3)?.prio === 99);
    assert.equal(v.master, 1, "a prio change alone does not move the master (no failback)");
    const mark = watch.lines.length;
    const e = await lab.exec(3, ["./corolistener", "elect", "-c", "/etc/corosync/corolistener.json"]);
    assert.equal(e.code, 0, e.stderr);
    await waitView(lab, 2, "n3 elected", (v) => v.master === 3);
    await servedBy(watch, 3, mark);
    assert.deepEqual(await checker.holders(), [3]);
  });

  it("cut the shared storage of n2: storage isolation; healed: member again", async () => {
    await lab.storageCut(2);
    await waitView(lab, 1, "n2 storage isolation", (v) => statusOf(v, 2) === "storage isolation", 30_000);
    await lab.storageHeal(2);
    await waitView(lab, 1, "n2 member again", (v) => statusOf(v, 2) === "member", 30_000);
    assert.deepEqual(await checker.holders(), [3]);
  });
});

describe("HA on a 5-node lab partitioned 2|3 with the master on the 2-side", { timeout: 300_000 }, () => {
  let lab: Lab;
  let checker: ClusterIpChecker;
  before(async () => {
    lab = await Lab.up({ name: "h5", nodes: 5, agents: true });
    checker = new ClusterIpChecker(lab).start();
  });
  after(async () => {
    const result = checker?.stop();
    await lab?.down();
    assert.deepEqual(result?.violations ?? [], [], "two nodes held the cluster IP at once");
  });

  it("the 2-side releases the IP and the panel; the 3-side elects n3 and serves", async () => {
    const watch = panelWatch(lab, 4);
    try {
      await servedBy(watch, 1);
      const mark = watch.lines.length;
      await lab.partition([[1, 2], [3, 4, 5]]);
      await servedBy(watch, 3, mark);
      assert.deepEqual(await checker.holders(), [3]);
      // Only the cluster-IP listener counts: every node answers on its own address with a refusal page.
      const minority = await lab.exec(1, ["sh", "-c", `ss -ltn | grep -cF '${lab.topo.clusterIp}:1500 ' || true`]);
      assert.equal(minority.stdout.trim(), "0", "no panel on the old master's cluster IP");
      await lab.heal();
      await waitView(lab, 1, "n1 rejoined as a member under n3", (v) => v.master === 3 && statusOf(v, 1) === "member", 45_000);
      assert.deepEqual(await checker.holders(), [3]);
    } finally {
      watch.stop();
    }
  });
});

// The panel's VM edits reach the agents, on a 3-node lab with MariaDB: the master inserts the VMs
// defined on the shared storage into the DB; an HA flag / restart priority written to the DB (as
// the panel's own DB user) lands in the VM's record on the shared storage; after a crash the VM
// left HA comes back elsewhere and the one turned non-HA does not; a VM created with the panel's
// API (POST /api/vms) on a requested node (the one placement would not choose) is defined on the shared storage by the master and
// runs there; one requested on a node in maintenance (n2) runs elsewhere and its row says why. Also: a node that is not master
// refuses panel requests on its own address, pointing to the cluster IP; a login survives the
// master's crash (the panel moves, its sessions are in the replicated DB).
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, LAB_DB_USERS, NODE_AGENT_LOG, VmChecker, connectNode, masterOfHealthyCluster, sleep, waitUntil } from "../../src/index.ts";
import { hashPassword } from "../../../panel/server/auth/passwords.ts";

const until = <T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 60_000) =>
  waitUntil(what, fn, timeoutMs, 250);

const MASTER = 1; // highest prio in the lab
const PANEL_PORT = 1500;
const AGENT_CONFIG = "/etc/corosync/corolistener.json";

/** Whether node `id`'s agent runs with `target` in maintenance (the daemon's status file). */
async function inMaintenance(lab: Lab, id: number, target: number): Promise<boolean | null> {
  const r = await lab.exec(id, ["cat", "/run/corolistener/status.json"]);
  if (r.code !== 0) return null;
  const view = (JSON.parse(r.stdout) as { view: { nodes: Array<{ nodeid: number; maintenance?: boolean }> } }).view;
  return view.nodes.find((n) => n.nodeid === target)?.maintenance === true;
}

describe("panel -> shared storage VM sync on a 3-node lab with MariaDB", { timeout: 300_000 }, () => {
  let lab: Lab;
  let checker: VmChecker;
  const names = ["s1", "s2", "s3", "s4", "s5", "s6"];
  before(async () => {
    lab = await Lab.up({ name: "pnl", nodes: 3, agents: true, mariadb: true });
    checker = new VmChecker(lab).start();
    let ip = 170;
    for (const name of names) {
      const r = await lab.exec(MASTER, ["./corolistener", "vm", "define", name, "--ram", "256", "--disk", `network:/run/ha-storage/vms/${name}.disk`, "--ip", `172.31.224.${ip++}`, "--ha", "-c", "/etc/corosync/corolistener.json"]);
      assert.equal(r.code, 0, r.stderr);
    }
    await until("all 6 VMs running", () => checker.where().size === names.length, 90_000);
  });
  after(async () => {
    const violations = checker?.stop() ?? [];
    await lab?.down();
    assert.deepEqual(violations, [], "a VM ran on two nodes at once");
  });

  const sql = async <T>(q: string, params: unknown[] = []): Promise<T[]> => {
    const c = await connectNode(lab, MASTER, { user: LAB_DB_USERS.panel.user, password: LAB_DB_USERS.panel.password, database: "ha" });
    try {
      const [rows] = await c.query(q, params);
      return rows as T[];
    } finally {
      await c.end();
    }
  };
  const record = (vm: string) => JSON.parse(readFileSync(join(lab.storageDir(), "cluster", "vms", `${vm}.json`), "utf8")) as { definition: { ha?: boolean }; restartPriority: number };
  const on = (node: number) => [...checker.where()].filter(([, ns]) => ns.includes(node)).map(([vm]) => vm).sort();

  it("a node that is not master refuses on its own address, pointing to the cluster IP", async () => {
    const n2 = lab.topo.nodes.find((n) => n.id === 2)!;
    const get = (accept: string) => lab.exec(MASTER, ["curl", "-s", "-m", "5", "-H", `accept: ${accept}`, "-w", "\n%{http_code}", `http://${n2.ctlAddr}:${PANEL_PORT}/api/nodes`]);
    const r = await until("n2's refusal", async () => {
      const res = await get("application/json");
      return res.code === 0 && res.stdout.trim().endsWith("503") ? res : null;
    }, 30_000);
    const body = JSON.parse(r.stdout.trim().split("\n")[0]!);
    assert.equal(body.clusterIp, lab.topo.clusterIp);
    assert.match(body.error, /n2 is not the master \(n1 is\)/);
    const page = await lab.exec(MASTER, ["curl", "-s", "-m", "5", "-H", "accept: text/html", `http://${n2.ctlAddr}:${PANEL_PORT}/`]);
    assert.match(page.stdout, new RegExp(`href="http://${lab.topo.clusterIp.replaceAll(".", "\\.")}:${PANEL_PORT}/"`));
    const panel = await lab.exec(MASTER, ["curl", "-s", "-m", "5", `http://${lab.topo.clusterIp}:${PANEL_PORT}/api/health`]);
    assert.equal(JSON.parse(panel.stdout).node, "n1", "the cluster IP serves the panel");
  });

  it("the master inserts the VMs into the DB; a DB edit of ha / restart_priority reaches the record; the agents act on it", async () => {
    await until("the 6 VMs in the DB with their owners", async () => {
      const rows = await sql<{ name: string; nodeid: number | null; ha: number }>("SELECT name, nodeid, ha FROM vms");
      return rows.length === names.length && rows.every((r) => r.nodeid !== null && r.ha === 1);
    });
    const victim = on(2).length >= 2 ? 2 : 3;
    const [dropped, kept] = on(victim);
    assert.ok(dropped && kept, `n${victim} runs two VMs (${on(victim)})`);

    await sql("UPDATE vms SET ha = 0 WHERE name = ?", [dropped]);
    await sql("UPDATE vms SET restart_priority = 7 WHERE name = ?", [kept]);
    await until(`${dropped} not HA and ${kept} priority 7 on the shared storage`, () => record(dropped).definition.ha === false && record(kept).restartPriority === 7, 30_000);
    await sleep(1500); // every agent reads the storage once a second
    const [row] = await sql<{ ha: number }>("SELECT ha FROM vms WHERE name = ?", [dropped]);
    assert.equal(row!.ha, 0, "the edit is not reverted");

    await lab.crash(victim);
    await until(`${kept} (HA) running again elsewhere`, () => (checker.where().get(kept) ?? []).some((n) => n !== victim), 90_000);
    await sleep(5000);
    assert.equal(checker.where().has(dropped), false, `${dropped} (no longer HA) stays down`);
    await lab.boot(victim);
    await lab.waitQuorate([1, 2, 3], 60_000);
  });

  it("a VM created through the panel's API on a requested node is defined on the shared storage by the master and runs there; one requested on a node in maintenance runs elsewhere with the note", async () => {
    await sql("INSERT INTO users (username, password_hash, role) VALUES (?, ?, 'admin')", ["vmadmin", await hashPassword("vm admin password 1")]);
    const panel = `http://${lab.topo.clusterIp}:${PANEL_PORT}`;
    const curl = (args: string[]) => lab.exec(2, ["curl", "-s", "-m", "10", ...args]);
    const login = await curl(["-i", "-H", "content-type: application/json", "--data", JSON.stringify({ username: "vmadmin", password: "vm admin password 1" }), `${panel}/api/login`]);
    assert.match(login.stdout, /^HTTP\/1\.1 200/, login.stdout);
    const cookies = new Map([...login.stdout.matchAll(/^set-cookie: ([^=]+)=([^;]*);/gim)].map((m) => [m[1]!, m[2]!]));
    const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const csrf = decodeURIComponent(cookies.get("ha_csrf") ?? "");
    assert.ok(csrf, "a CSRF cookie");
    const create = async (body: Record<string, unknown>) => {
      const post = await curl(["-H", "content-type: application/json", "-H", `cookie: ${cookie}`, "-H", `x-csrf-token: ${csrf}`, "--data", JSON.stringify(body), "-w", "\n%{http_code}", `${panel}/api/vms`]);
      const [json, code] = post.stdout.trim().split("\n");
      assert.equal(code, "201", post.stdout);
      assert.equal(JSON.parse(json!).vm.definitionState, "pending");
    };
    type Row = { definition_state: string; definition_error: string | null; nodeid: number | null; state: string; requested_nodeid: number | null };
    const rowOf = async (name: string) =>
      (await sql<Row>("SELECT definition_state, definition_error, nodeid, state, requested_nodeid FROM vms WHERE name = ?", [name]))[0];

    // The node crashed by the previous case is back: the master must see every node as a member.
    await until("the master sees every node as a member", async () => (await masterOfHealthyCluster(lab, MASTER)) === MASTER, 60_000);
    // Request the node placement would NOT choose: the one owning the most VMs (ties: the highest
    // id; placement takes the fewest VMs, ties the lowest id).
    const counts = await sql<{ nodeid: number; n: number }>("SELECT nodeid, COUNT(*) AS n FROM vms WHERE nodeid IS NOT NULL GROUP BY nodeid");
    const count = (id: number) => Number(counts.find((c) => c.nodeid === id)?.n ?? 0);
    const target = [1, 2, 3].sort((a, b) => count(b) - count(a) || b - a)[0]!;
    const body = { name: "p1", ramMb: 256, vcpus: 1, disk: { kind: "network", path: "/run/ha-storage/vms/p1.disk" }, ip: "172.31.224.180", ha: true, restartPriority: 3, node: target };
    await create(body);
    const running = await until("p1 running on a node", () => checker.where().get("p1")?.[0], 90_000);
    assert.equal(running, target, `p1 starts on the requested n${target} (VMs per node: ${JSON.stringify(counts)})`);
    assert.deepEqual(checker.where().get("p1"), [target]);
    const log = await lab.exec(MASTER, ["grep", "-c", `owned by the requested n${target} (epoch 1)`, NODE_AGENT_LOG]);
    assert.equal(log.stdout.trim(), "1", "the master gave it the requested node (not placement)");
    const rec = JSON.parse(readFileSync(join(lab.storageDir(), "cluster", "vms", "p1.json"), "utf8"));
    assert.deepEqual(rec, {
      definition: { name: "p1", ramMb: 256, vcpus: 1, disk: { kind: "network", path: "/run/ha-storage/vms/p1.disk" }, ip: "172.31.224.180", ha: true },
      restartPriority: 3,
      desired: "running",
    }, "the record `corolistener vm define` would write");
    // Its first owner is the requested node at epoch 1 (written by the master before the record).
    assert.deepEqual(JSON.parse(readFileSync(join(lab.storageDir(), "cluster", "owners", "p1.json"), "utf8")), { vm: "p1", node: target, epoch: 1 });
    const row = await until("p1's row defined with its owner", async () => {
      const r = await rowOf("p1");
      return r && r.definition_state === "defined" && r.nodeid === running && r.state === "running" ? r : null;
    }, 30_000);
    assert.equal(row.definition_error, null, "no note: the requested node took it");
    assert.equal(row.requested_nodeid, target);
    // The VM answers on its own address (the process driver's HTTP probe).
    await until("p1 answers on its own address", async () => {
      const probe = await lab.exec(MASTER, ["curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", "http://172.31.224.180/"]);
      return probe.stdout === "200";
    }, 20_000);

    // n2 in maintenance: a VM requested there is placed by the cluster, and its row says why.
    const on2 = await lab.exec(MASTER, ["./corolistener", "maintenance", "2", "on", "-c", AGENT_CONFIG]);
    assert.equal(on2.code, 0, on2.stderr);
    await until("the master sees n2 in maintenance", async () => (await inMaintenance(lab, MASTER, 2)) === true, 30_000);
    await create({ name: "p2", ramMb: 256, vcpus: 1, disk: { kind: "network", path: "/run/ha-storage/vms/p2.disk" }, ip: "172.31.224.181", ha: true, node: 2 });
    const p2On = await until("p2 running on a node", () => checker.where().get("p2")?.[0], 90_000);
    assert.notEqual(p2On, 2, "not on the node in maintenance");
    const row2 = await until("p2's row defined with its owner", async () => {
      const r = await rowOf("p2");
      return r && r.definition_state === "defined" && r.nodeid === p2On && r.state === "running" ? r : null;
    }, 30_000);
    assert.equal(row2.definition_error, "n2 could not take it (in maintenance): placed by the cluster");
    assert.equal(row2.requested_nodeid, 2);
    // The panel lists it with the request and the note.
    const list = await curl(["-H", `cookie: ${cookie}`, `${panel}/api/vms?q=p2`]);
    const listed = (JSON.parse(list.stdout) as { vms: Array<{ name: string; requestedNodeid: number | null; definitionError: string | null; nodeid: number | null }> }).vms.find((v) => v.name === "p2");
    assert.deepEqual([listed?.requestedNodeid, listed?.nodeid, listed?.definitionError], [2, p2On, "n2 could not take it (in maintenance): placed by the cluster"]);

    const off2 = await lab.exec(MASTER, ["./corolistener", "maintenance", "2", "off", "-c", AGENT_CONFIG]);
    assert.equal(off2.code, 0, off2.stderr);
    await until("the master sees n2 out of maintenance", async () => (await inMaintenance(lab, MASTER, 2)) === false, 30_000);
  });

  it("a session made on n1's panel still works after the master (and the panel) moved: sessions are in the replicated DB", async () => {
    await sql("INSERT INTO users (username, password_hash, role) VALUES (?, ?, 'admin')", ["labadmin", await hashPassword("lab admin password 1")]);
    const panel = `http://${lab.topo.clusterIp}:${PANEL_PORT}`;
    const curl = (node: number, args: string[]) => lab.exec(node, ["curl", "-s", "-m", "5", ...args]);
    const login = await curl(3, ["-i", "-H", "content-type: application/json", "--data", JSON.stringify({ username: "labadmin", password: "lab admin password 1" }), `${panel}/api/login`]);
    assert.match(login.stdout, /^HTTP\/1\.1 200/, login.stdout);
    const cookie = [...login.stdout.matchAll(/^set-cookie: ([^;]+);/gim)].map((m) => m[1]).join("; ");
    assert.match(cookie, /ha_sid=/);
    const me = async (node: number) => {
      const r = await curl(node, ["-H", `cookie: ${cookie}`, "-w", "\n%{http_code}", `${panel}/api/me`]);
      return r.stdout.trim().split("\n").pop();
    };
    assert.equal(await me(3), "200");
    // The session row must have reached the replicas before the master dies.
    const replicated = async (id: number) => {
      const c = await connectNode(lab, id, { user: LAB_DB_USERS.panel.user, password: LAB_DB_USERS.panel.password, database: "ha" });
      try {
        const [rows] = await c.query("SELECT COUNT(*) AS n FROM sessions");
        return Number((rows as Array<{ n: number }>)[0]!.n) > 0;
      } finally {
        await c.end();
      }
    };
    await until("the session row on n2 and n3", async () => (await replicated(2)) && (await replicated(3)), 30_000);

    await lab.crash(MASTER);
    await until("the panel answers from another node", async () => {
      const h = await curl(3, [`${panel}/api/health`]);
      return h.code === 0 && /"node":"n[23]"/.test(h.stdout);
    }, 90_000);
    const status = await until("the moved panel accepts the old cookie", async () => ((await me(3)) === "200" ? "200" : null), 30_000);
    assert.equal(status, "200");
  });
});

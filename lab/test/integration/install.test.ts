// Issue 7 on a real lab: `corolistener install` adds a fresh machine (n4, built but running nothing)
// to a 3-node cluster with knet crypto, through a member (and, from settings with a database and a
// fileSync section, writes n4's MariaDB drop-in and accounts' SQL); bad input is refused with nothing changed;
// `corolistener node remove` takes a node out and the cluster stays quorate.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseCorosyncConf, readClusterConfig } from "@ha/shared";
import { Lab, REPO_ROOT } from "../../src/index.ts";
import { NODE_AGENT_CONFIG } from "../../src/lab.ts";
import { waitUntil } from "../../src/wait.ts";
import { spawnDetached } from "../../src/processes.ts";

type ListJson = { source: string; quorate: boolean; master: number | null; nodes: Array<{ id: number; status: string; master: boolean; prio: number; ip: string }> };

describe("installing and removing nodes (lab inst)", { timeout: 300_000 }, () => {
  let lab: Lab;
  const NEW = 4;
  const NEW_ADDR = "172.31.224.14";
  const MEMBER_CONFIG = "/etc/corosync/template.json";
  const MEMBER_SECRETS = {
    database: { adminPassword: "inst-agent-secret", replPassword: "inst-repl-secret" },
    panelDb: { user: "ha_panel", password: "inst-panel-secret" },
    fileSync: { secret: "inst-files-secret", listenAddress: "172.31.224.11", hostsAllow: "172.31.224.0/24" },
  };
  before(async () => {
    lab = await Lab.up({ name: "inst", nodes: 4, standby: [NEW], crypto: true, agents: true });
    // The members' settings as a cluster with MariaDB and file replication has them: the template the
    // installer gets (the lab runs neither here, so the drain below behaves as without them).
    for (const n of [1, 2, 3]) {
      const own = JSON.parse(readFileSync(join(lab.nodeDir(n), "etc-corosync", "corolistener.json"), "utf8")) as object;
      writeFileSync(join(lab.nodeDir(n), "etc-corosync", "template.json"), JSON.stringify({ ...own, ...MEMBER_SECRETS }));
    }
    await waitUntil("n1 is master in its agent's view", async () => (await list(1)).master === 1, 40_000, 300);
  });
  after(async () => {
    await lab?.down();
  });

  async function list(node: number, cli = "./corolistener"): Promise<ListJson> {
    const r = await lab.exec(node, [cli, "-l", "--json", "-c", NODE_AGENT_CONFIG], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, `corolistener -l on n${node}: ${r.stderr}`);
    return JSON.parse(r.stdout) as ListJson;
  }

  async function confOn(node: number) {
    const r = await lab.exec(node, ["cat", "/etc/corosync/corosync.conf"]);
    assert.equal(r.code, 0, `n${node}: ${r.stderr}`);
    return readClusterConfig(parseCorosyncConf(r.stdout));
  }

  const installRoot = () => join(lab.nodeDir(NEW), "root");

  /** Runs the installer inside n4 against a member (nsenter stands in for ssh). */
  function installer(args: { member?: number; nodeid?: number; addr?: string; env?: Record<string, string>; on?: number }) {
    const memberExec = `nsenter -t ${lab.anchorPid(args.member ?? 1)} -m -n -u --wd=${REPO_ROOT} --`;
    const argv = [
      ...(args.env ? ["env", ...Object.entries(args.env).map(([k, v]) => `${k}=${v}`)] : []),
      "./corolistener", "install",
      "--nodeid", String(args.nodeid ?? NEW), "--addr", args.addr ?? NEW_ADDR, "--prio", "5",
      "--member-exec", memberExec, "--member-cli", "./corolistener", "--member-config", MEMBER_CONFIG,
      "--root", installRoot(), "--agent-config", NODE_AGENT_CONFIG, "--packages", "skip", "--no-start",
    ];
    return lab.exec(args.on ?? NEW, argv, { timeoutMs: 180_000 });
  }

  /** Nothing changed: same config_version everywhere, nothing written on n4. */
  async function assertUnchanged(version: bigint) {
    for (const n of [1, 2, 3]) assert.equal((await confOn(n)).configVersion, version, `n${n} config_version changed`);
    for (const f of ["corosync.conf", "authkey", "corolistener.json"]) assert.equal(existsSync(join(lab.nodeDir(NEW), "etc-corosync", f)), false, `n4 got ${f}`);
    assert.equal(existsSync(installRoot()), false, "the installer wrote under --root");
  }

  it("refuses a clock more than 1 s off, a duplicate nodeid, a duplicate address and a node already in a cluster, changing nothing", async () => {
    const v0 = (await confOn(1)).configVersion;
    // One run with two faults: every reason is listed.
    const skewed = await installer({ nodeid: 2, env: { COROLISTENER_TEST_CLOCK_SKEW_MS: "1500" } });
    assert.notEqual(skewed.code, 0);
    assert.match(skewed.stderr, /refusing to install n2; nothing was changed/);
    assert.match(skewed.stderr, /this node's clock is 1\d{3} ms ahead of the member \(at most 1000 ms allowed\)/);
    assert.match(skewed.stderr, /nodeid 2 is already used by n2 \(n2\) at 172\.31\.224\.12/);
    const member = await installer({ on: 2 });
    assert.notEqual(member.code, 0);
    assert.match(member.stderr, /corosync already runs on this node in cluster inst \(3 nodes\)/);
    const dupAddr = await installer({ addr: "172.31.224.13" });
    assert.notEqual(dupAddr.code, 0);
    assert.match(dupAddr.stderr, /address 172\.31\.224\.13 is already used by n3/);
    await assertUnchanged(v0);
  });

  it("refuses through a member that has no quorum, changing nothing", async () => {
    const v0 = (await confOn(1)).configVersion;
    await lab.cut(3);
    try {
      await waitUntil("n3's agent sees quorum lost", async () => (await list(3)).quorate === false, 20_000, 300);
      const r = await installer({ member: 3 });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /the cluster has no quorum here/);
    } finally {
      await lab.heal(3);
    }
    await lab.waitQuorate([1, 2, 3], 30_000);
    await assertUnchanged(v0);
  });

  it("installs n4 for real: config_version bumped everywhere, crypto on, joins quorate, listed by -l", async (t) => {
    const v0 = (await confOn(1)).configVersion;
    const r = await installer({});
    assert.equal(r.code, 0, `installer failed:\n${r.stdout}\n${r.stderr}`);
    t.diagnostic(r.stdout.trim());
    assert.match(r.stdout, /added n4 \(172\.31\.224\.14, prio 5\): config_version \d+ -> \d+/);
    // Every member has the new file, one version up, listing n4; n4 got the same file and key.
    const confs = await Promise.all([1, 2, 3, NEW].map(confOn));
    for (const c of confs) {
      assert.equal(c.configVersion, v0 + 1n);
      assert.deepEqual(c.nodes.map((n) => n.nodeid), [1, 2, 3, 4]);
      assert.equal(c.crypto.cipher, "aes256");
    }
    assert.deepEqual(readFileSync(join(lab.nodeDir(NEW), "etc-corosync", "authkey")), readFileSync(join(lab.nodeDir(1), "etc-corosync", "authkey")));
    const agentConfig = JSON.parse(readFileSync(join(lab.nodeDir(NEW), "etc-corosync", "corolistener.json"), "utf8")) as { nodeName: string };
    assert.equal(agentConfig.nodeName, "n4");
    // The agent and its unit went under --root, never into this machine's /etc/systemd.
    const unit = readFileSync(join(installRoot(), "etc/systemd/system/corolistener.service"), "utf8");
    assert.match(unit, /^ExecStart=\/opt\/corolistener\/corolistener daemon --config \/etc\/corosync\/corolistener\.json$/m);
    assert.ok(existsSync(join(installRoot(), "opt/corolistener/agent/src/cli/corolistener.ts")));
    assert.match(readFileSync(join(installRoot(), "etc/systemd/system/nodereplication.service"), "utf8"), /^ExecStart=\/opt\/corolistener\/nodereplication serve/m);
    // MariaDB and file replication with the cluster's credentials (the member's template), n4's own id and address.
    const n4Settings = agentConfig as unknown as typeof MEMBER_SECRETS;
    assert.deepEqual([n4Settings.database, n4Settings.panelDb], [MEMBER_SECRETS.database, MEMBER_SECRETS.panelDb]);
    assert.deepEqual(n4Settings.fileSync, { ...MEMBER_SECRETS.fileSync, listenAddress: NEW_ADDR });
    const cnf = readFileSync(join(installRoot(), "etc/mysql/mariadb.conf.d/60-corolistener.cnf"), "utf8");
    for (const line of ["server-id = 4", `bind-address = ${NEW_ADDR}`, "read-only = ON", "gtid-strict-mode = ON", "rpl-semi-sync-master-wait-point = AFTER_SYNC"]) assert.ok(cnf.includes(`\n${line}\n`), line);
    const accountsFile = join(installRoot(), "etc/corolistener/mariadb-accounts.sql");
    assert.equal(statSync(accountsFile).mode & 0o777, 0o600);
    assert.match(readFileSync(accountsFile, "utf8"), /CREATE USER IF NOT EXISTS 'ha_repl'@'%' IDENTIFIED BY 'inst-repl-secret';/);
    assert.match(r.stdout, /still to do on this node:[\s\S]*mariadb --protocol=socket -u root < \S+mariadb-accounts\.sql/);
    assert.doesNotMatch(r.stdout + r.stderr, /inst-(agent|repl|panel|files)-secret/); // nothing secret on the terminal
    // This lab runs no MariaDB and no rsync daemon: n4's agent runs without those sections, like the others.
    const { database: _d, panelDb: _p, fileSync: _f, ...runnable } = agentConfig as Record<string, unknown>;
    writeFileSync(join(lab.nodeDir(NEW), "etc-corosync", "corolistener.json"), JSON.stringify(runnable));

    // The lab plays systemd: corosync, then the unit's ExecStart, i.e. the installed copy of the agent.
    const joinStart = Date.now();
    await lab.start(NEW, "corosync");
    await lab.waitQuorate([1, 2, 3, 4], 30_000);
    t.diagnostic(`corosync start on n4 -> quorate ring of 4: ${Date.now() - joinStart} ms`);
    const agentStart = Date.now();
    const execStart = /^ExecStart=(.+)$/m.exec(unit)![1]!.split(" ").map((a) => a.replace(/^\/opt\//, `${installRoot()}/opt/`));
    spawnDetached([...lab.enterArgs(NEW), ...execStart], join(lab.nodeDir(NEW), "log", "agent.out"), process.env, REPO_ROOT);
    const seen = await waitUntil("n1's -l shows n4 as a member", async () => {
      const l = await list(1);
      return l.nodes.find((n) => n.id === NEW)?.status === "member" ? l : null;
    }, 30_000, 500);
    t.diagnostic(`agent start on n4 -> n1's -l shows it as member: ${Date.now() - agentStart} ms`);
    assert.equal(seen.nodes.find((n) => n.id === NEW)?.ip, NEW_ADDR);
    // The installed copy of the CLI works on n4.
    const own = await list(NEW, join(installRoot(), "opt/corolistener/corolistener"));
    assert.deepEqual(own.nodes.map((n) => n.id), [1, 2, 3, 4]);
  });

  /** VM owners from the cluster metadata on the shared storage. */
  function owners(): Array<{ vm: string; node: number | null }> {
    const dir = join(lab.storageDir(), "cluster", "owners");
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as { vm: string; node: number | null });
  }

  it("node remove: refused for the master and while the node owns VMs; --drain moves them, removes it everywhere, quorum kept", async () => {
    const v0 = (await confOn(1)).configVersion;
    const master = await lab.exec(2, ["./corolistener", "node", "remove", "1", "-c", NODE_AGENT_CONFIG], { timeoutMs: 30_000 });
    assert.notEqual(master.code, 0);
    assert.match(master.stderr, /cannot remove n1: n1 is the master/);

    for (const [i, name] of ["web1", "web2", "web3"].entries()) {
      const d = await lab.exec(1, ["./corolistener", "vm", "define", name, "--ram", "256", "--disk", `network:/run/ha-storage/vms/${name}.disk`, "--ip", `172.31.224.${150 + i}`, "--ha", "-c", NODE_AGENT_CONFIG]);
      assert.equal(d.code, 0, d.stderr);
    }
    const victim = await waitUntil("a VM owned by a node other than the master", () => owners().find((o) => o.node !== null && o.node !== 1)?.node, 60_000, 500);
    const stay = [1, 2, 3, NEW].filter((n) => n !== victim);
    const owned = await lab.exec(1, ["./corolistener", "node", "remove", String(victim), "-c", NODE_AGENT_CONFIG], { timeoutMs: 30_000 });
    assert.notEqual(owned.code, 0);
    assert.match(owned.stderr, new RegExp(`cannot remove n${victim}: n${victim} still owns VMs \\(.+\\): drain it first`));
    assert.equal((await confOn(1)).configVersion, v0, "a refused removal changed corosync.conf");

    const r = await lab.exec(stay.find((n) => n !== 1) ?? 1, ["./corolistener", "node", "remove", String(victim), "--drain", "-c", NODE_AGENT_CONFIG], { timeoutMs: 150_000 });
    if (r.code !== 0) {
      // Keep the nodes' logs for diagnosis: the lab (and its logs) is removed when the test ends.
      for (const n of [1, 2, 3, NEW]) cpSync(join(lab.nodeDir(n), "log"), join(REPO_ROOT, "artifacts", "install-drain-failure", `n${n}`), { recursive: true });
    }
    assert.equal(r.code, 0, `node remove --drain failed: ${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`n${victim}: maintenance on, waiting for its VMs to run elsewhere`));
    assert.match(r.stdout, new RegExp(`removed n${victim}: config_version \\d+ -> \\d+; the cluster now has 3 nodes`));
    assert.deepEqual(owners().filter((o) => o.node === victim), []);
    const confs = await Promise.all(stay.map(confOn));
    for (const c of confs) {
      assert.equal(c.configVersion, confs[0]!.configVersion);
      assert.ok(c.configVersion > v0);
      assert.deepEqual(c.nodes.map((x) => x.nodeid), stay);
    }
    await lab.waitQuorate(stay, 30_000);
    // The operator then stops the removed node; the others keep quorum with expected_votes 3.
    lab.kill(victim, "agent", "SIGTERM");
    lab.kill(victim, "corosync");
    await lab.waitQuorate(stay, 30_000);
    const q = await lab.exec(stay[0]!, ["corosync-quorumtool", "-s"]);
    assert.match(q.stdout, /Expected votes:\s+3/);
    const l = await waitUntil(`n1's -l lists ${stay}`, async () => {
      const v = await list(1);
      return v.nodes.map((n) => n.id).join(",") === stay.join(",") && v.quorate ? v : null;
    }, 20_000, 500);
    assert.equal(l.master, 1);
  });
});

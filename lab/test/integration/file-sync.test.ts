// File replication on a real 3-node lab (docs/operations.md "File replication"): the master (n1) pushes its file
// set with `nodereplication -c mgrfiles` to the rsync daemons of n2 and n3; every node's copy flips
// to a new version only after a complete transfer. Outcomes land in the master's database.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { Lab, LAB_DB_USERS, NODE_AGENT_CONFIG, connectNode, hostFilesDir, mustRun, waitUntil } from "../../src/index.ts";

const readTail = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").slice(-1500) : "(no log)");
const until = (what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 30_000) => waitUntil(what, fn, timeoutMs, 200);

describe("file replication: nodereplication -c mgrfiles on a 3-node lab", { timeout: 240_000 }, () => {
  let lab: Lab;
  const source = () => join(hostFilesDir(lab.nodeDir(1)), "mgrfiles-source");
  const replica = (id: number) => join(hostFilesDir(lab.nodeDir(id)), "mgrfiles", "current");
  const read = (id: number, file: string) => readFileSync(join(replica(id), file), "utf8");
  const put = (file: string, text: string | Buffer) => {
    mkdirSync(join(source(), file, ".."), { recursive: true });
    writeFileSync(join(source(), file), text);
  };

  /** One cycle run by hand on the master, as cron or an operator would; resolves with the CLI's JSON. */
  const cycle = async () => {
    const r = await lab.exec(1, ["./nodereplication", "-c", "mgrfiles", "--config", NODE_AGENT_CONFIG, "--json"], { timeoutMs: 120_000 });
    assert.ok(r.stdout.trim().startsWith("{"), `no JSON from nodereplication (exit ${r.code}): ${r.stderr}`);
    return { code: r.code, out: JSON.parse(r.stdout) as { results: Array<{ nodeid: number; ok: boolean; error: string | null }> } };
  };
  const query = async (sql: string) => {
    const c = await connectNode(lab, 1, { user: LAB_DB_USERS.agent.user, password: LAB_DB_USERS.agent.password, database: "ha" });
    try {
      return (await c.query(sql))[0] as Array<Record<string, unknown>>;
    } finally {
      await c.end();
    }
  };
  const version = (id: number) => readlinkSync(replica(id));

  before(async () => {
    lab = await Lab.up({ name: "frep", nodes: 3, agents: true, mariadb: true, fileSync: {} });
    // n1 is master (highest prio) and its database the primary with the schema applied.
    let last = "";
    await until("n1 master with the schema in its database", async () => {
      const r = await lab.exec(1, ["./corolistener", "-l", "--json", "-c", NODE_AGENT_CONFIG]);
      last = `corolistener -l: ${(r.stdout.match(/"master":\s*\w+/) ?? [r.stderr.trim().slice(0, 200)])[0]}`;
      if (!/"master":\s*1\b/.test(r.stdout)) return false;
      const tables = await query("SHOW TABLES LIKE 'file_sync'").catch((e: Error) => (last += `; db: ${e.message}`, []));
      return tables.length === 1;
    }, 120_000).catch((err: Error) => {
      throw new Error(`${err.message} (last: ${last})`);
    });
    await until("an rsync daemon listening on every node", async () =>
      (await Promise.all([1, 2, 3].map((id) => lab.exec(id, ["ss", "-ltnH", "sport = :873"])))).every((r) => r.stdout.includes(":873")),
      60_000, // three Node processes starting under load
    ).catch((err: Error) => {
      const logs = [1, 2, 3].map((id) => `n${id} rsyncd.out: ${readTail(join(lab.nodeDir(id), "log", "rsyncd.out"))}`);
      throw new Error(`${err.message}\n${logs.join("\n")}`);
    });
  });
  after(async () => {
    await lab?.down();
  });

  it("copies a changed and a new file to every node and removes a deleted one, within one cycle", async () => {
    rmSync(source(), { recursive: true, force: true });
    put("a.txt", "one");
    put("sub/b.txt", "bee");
    put("gone.txt", "to be deleted");
    let c = await cycle();
    assert.equal(c.code, 0, JSON.stringify(c.out));
    assert.deepEqual(c.out.results.map((r) => [r.nodeid, r.ok]), [[2, true], [3, true]]);
    // The daemon's hook flips `current` right after the transfer ends.
    await until("first copy on n2 and n3", () => [2, 3].every((id) => existsSync(replica(id)) && existsSync(join(replica(id), "gone.txt"))), 5000);
    for (const id of [2, 3]) assert.equal(read(id, "sub/b.txt"), "bee");

    put("a.txt", "two");
    put("c.txt", "new");
    rmSync(join(source(), "gone.txt"));
    const before = [version(2), version(3)];
    c = await cycle();
    assert.equal(c.code, 0, JSON.stringify(c.out));
    await until("a new version on n2 and n3", () => version(2) !== before[0] && version(3) !== before[1], 5000);
    for (const id of [2, 3]) {
      assert.equal(read(id, "a.txt"), "two", `changed file on n${id}`);
      assert.equal(read(id, "c.txt"), "new", `new file on n${id}`);
      assert.equal(existsSync(join(replica(id), "gone.txt")), false, `deleted file still on n${id}`);
      assert.equal(read(id, "sub/b.txt"), "bee");
    }
    const rows = await query("SELECT nodeid, ok, last_ok_at, error FROM file_sync ORDER BY nodeid");
    assert.deepEqual(rows.map((r) => [r.nodeid, Boolean(r.ok), r.error]), [[2, true, null], [3, true, null]]);
  });

  it("an interrupted copy leaves the old set intact on that node, is recorded, and the next cycle recovers", async (t) => {
    const n3 = lab.topo.nodes[2]!;
    const oldVersion = version(3);
    // The master's agent ran once when it became master (before the source existed): count from here.
    const maxId = Number((await query("SELECT COALESCE(MAX(id), 0) AS maxId FROM incidents"))[0]?.maxId ?? 0);
    put("a.txt", "three");
    put("big.bin", Buffer.alloc(16 * 1024 * 1024, 7)); // ~16 s at 1 MB/s: long enough to interrupt
    // Slow only the switch -> n3 direction (what the master sends to n3), so n2 finishes normally.
    await mustRun("ip", ["netns", "exec", lab.topo.switchNs, "tc", "qdisc", "add", "dev", n3.ctlPort, "root", "tbf", "rate", "8mbit", "burst", "32kbit", "latency", "400ms"]);
    try {
      const running = cycle();
      // Wait until the big file is being written into n3's staging copy, then kill n3's receiving rsync.
      const staging = join(hostFilesDir(lab.nodeDir(3)), "mgrfiles", "staging");
      await until("the big file arriving on n3", () => existsSync(staging) && readdirSync(staging).some((f) => f.includes("big.bin")), 30_000);
      const receivers = lab.processes(3, "rsyncd").filter((p) => p.cmd.startsWith("rsync ")).map((p) => p.pid).sort((a, b) => a - b);
      assert.ok(receivers.length >= 2, `expected the rsync listener and a connection child on n3: ${JSON.stringify(receivers)}`);
      process.kill(receivers.at(-1)!, "SIGKILL"); // the newest: the connection's child, not the listener
      const c = await running;
      assert.equal(c.code, 1, "the CLI reports the failure in its exit status");
      const r3 = c.out.results.find((r) => r.nodeid === 3)!;
      assert.equal(r3.ok, false);
      assert.match(r3.error ?? "", /rsync/);
      t.diagnostic(`n3: ${r3.error}`);
      assert.equal(c.out.results.find((r) => r.nodeid === 2)?.ok, true);
    } finally {
      await mustRun("ip", ["netns", "exec", lab.topo.switchNs, "tc", "qdisc", "del", "dev", n3.ctlPort, "root"]);
    }
    // n3 still shows the old, complete set; n2 has the new one.
    assert.equal(version(3), oldVersion, "n3's current version must not change after a failed copy");
    assert.equal(read(3, "a.txt"), "two");
    assert.equal(existsSync(join(replica(3), "big.bin")), false);
    await until("n2 has the new set", () => existsSync(join(replica(2), "big.bin")) && read(2, "a.txt") === "three", 5000);
    const [row] = await query("SELECT ok, error FROM file_sync WHERE nodeid = 3");
    assert.equal(Boolean(row?.ok), false);
    assert.match(String(row?.error), /rsync/);
    const failed = await query(`SELECT severity, reason FROM incidents WHERE kind = 'file-sync-failed' AND nodeid = 3 AND id > ${maxId}`);
    assert.equal(failed.length, 1, "one incident for the failure");
    assert.equal(failed[0]!.severity, "error");

    // The next cycle completes n3 (reusing what the interrupted one left in staging).
    const c = await cycle();
    assert.equal(c.code, 0, JSON.stringify(c.out));
    await until("n3 has the new set", () => version(3) !== oldVersion, 5000);
    assert.equal(read(3, "a.txt"), "three");
    assert.equal(readFileSync(join(replica(3), "big.bin")).length, 16 * 1024 * 1024);
    const [after] = await query("SELECT ok, error FROM file_sync WHERE nodeid = 3");
    assert.deepEqual([Boolean(after?.ok), after?.error], [true, null]);
    assert.equal((await query(`SELECT id FROM incidents WHERE kind = 'file-sync-recovered' AND nodeid = 3 AND id > ${maxId}`)).length, 1);
  });

  it("refuses to run on a node that is not the master", async () => {
    const r = await lab.exec(2, ["./nodereplication", "-c", "mgrfiles", "--config", NODE_AGENT_CONFIG]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not the master/);
    const quiet = await lab.exec(2, ["./nodereplication", "-c", "mgrfiles", "--if-master", "--config", NODE_AGENT_CONFIG]);
    assert.deepEqual([quiet.code, quiet.stdout, quiet.stderr], [0, "", ""], "--if-master (a cron entry on every node) is a quiet no-op");
  });

  it("a new master's agent copies on its own, starting its source from its last replica", async () => {
    // n1's agent dies: n2 becomes master; its agent runs a cycle at once. n2 never had a source,
    // so it starts one from its own copy and pushes that to n1 (which never had a replica) and n3.
    lab.kill(1, "agent");
    await until("n2 master", async () => /"master":\s*2\b/.test((await lab.exec(2, ["./corolistener", "-l", "--json", "-c", NODE_AGENT_CONFIG])).stdout), 30_000);
    await until("n1 holds the set it once was the source of", () => existsSync(replica(1)) && existsSync(join(replica(1), "a.txt")) && read(1, "a.txt") === "three", 60_000);
    const n2source = join(hostFilesDir(lab.nodeDir(2)), "mgrfiles-source");
    assert.equal(readFileSync(join(n2source, "sub", "b.txt"), "utf8"), "bee", "n2's source was started from its replica");
    assert.equal(readFileSync(join(replica(1), "big.bin")).length, 16 * 1024 * 1024);
  });
});

// The replication channel end to end on loopback, without a lab: a real rsync daemon with the
// rsyncd.conf `nodereplication serve` writes, pushed to by the replicator. Checks the secret is
// required, nothing outside staging can be written, and a version becomes visible only when complete.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileSyncConfigSchema, type FileSyncConfig } from "../../src/effects/file-sync/config.ts";
import { rsyncdConf, rsyncdSecrets } from "../../src/effects/file-sync/rsync.ts";
import { FileReplicator, pushToNode, type NodeSyncResult } from "../../src/effects/file-sync/replicator.ts";

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

const waitFor = async (what: string, fn: () => boolean, timeoutMs = 5000) => {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe("file sync over a real rsync daemon on 127.0.0.1", () => {
  let dir: string;
  let daemon: ChildProcess;
  let config: FileSyncConfig;
  const peer = { nodeid: 2, host: "127.0.0.1" };
  const source = () => config.sets.mgrfiles!.source;
  const current = () => join(config.sets.mgrfiles!.target, "current");

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "fsync-rsyncd-"));
    config = FileSyncConfigSchema.parse({
      secret: "loopback-test-secret",
      port: await freePort(),
      listenAddress: "127.0.0.1",
      hostsAllow: "127.0.0.1",
      ioTimeoutSec: 5,
      connectTimeoutSec: 3,
      runDir: join(dir, "run"),
      sets: { mgrfiles: { source: join(dir, "source"), target: join(dir, "replica") } },
    });
    mkdirSync(config.runDir, { recursive: true });
    mkdirSync(config.sets.mgrfiles!.target, { recursive: true });
    writeFileSync(join(config.runDir, "rsyncd.secrets"), rsyncdSecrets(config));
    chmodSync(join(config.runDir, "rsyncd.secrets"), 0o600);
    writeFileSync(join(config.runDir, "rsyncd.conf"), rsyncdConf({ config }));
    daemon = spawn("rsync", ["--daemon", "--no-detach", `--config=${join(config.runDir, "rsyncd.conf")}`, "--address=127.0.0.1", `--port=${config.port}`, `--log-file=${join(dir, "rsyncd.log")}`], { stdio: "ignore" });
    await waitFor("rsync daemon listening", () => existsSync(join(config.runDir, "rsyncd.pid")));
  });
  after(async () => {
    // Wait for the daemon to exit first: it writes its log and pid file while stopping.
    if (daemon && daemon.exitCode === null) await new Promise((r) => (daemon.once("exit", r), daemon.kill("SIGTERM")));
    rmSync(dir, { recursive: true, force: true });
  });

  it("copies a set, then only the change, and removes a deleted file", async () => {
    mkdirSync(join(source(), "sub"), { recursive: true });
    writeFileSync(join(source(), "a"), "one");
    writeFileSync(join(source(), "sub", "b"), "bee");
    let r = await pushToNode({ set: "mgrfiles", config, peer });
    assert.equal(r.ok, true, r.error ?? "");
    assert.equal(r.filesChanged, 2);
    await waitFor("first version", () => existsSync(join(current(), "a")));
    const first = readlinkSync(current());

    writeFileSync(join(source(), "a"), "two");
    rmSync(join(source(), "sub", "b"));
    r = await pushToNode({ set: "mgrfiles", config, peer });
    assert.equal(r.ok, true, r.error ?? "");
    assert.equal(r.filesChanged, 1, "only the changed file is sent");
    await waitFor("second version", () => readlinkSync(current()) !== first);
    assert.equal(readFileSync(join(current(), "a"), "utf8"), "two");
    assert.equal(existsSync(join(current(), "sub", "b")), false);
  });

  it("refuses a wrong secret with rsync's message, and leaves the copy alone", async () => {
    const before = readlinkSync(current());
    const r = await pushToNode({ set: "mgrfiles", config: { ...config, secret: "not-the-right-secret" }, peer });
    assert.equal(r.ok, false);
    assert.match(r.error!, /auth failed/);
    assert.equal(readlinkSync(current()), before);
  });

  it("a failure on one node is a result, not an exception, and is handed to the recorder", async () => {
    const recorded: NodeSyncResult[][] = [];
    const replicator = new FileReplicator({
      config,
      self: 1,
      peers: () => [{ nodeid: 1, host: "127.0.0.1" }, peer, { nodeid: 3, host: "127.0.0.2" }], // n3: nobody listens there
      recorder: { record: async (_set, _self, results) => void recorded.push(results) },
      log: () => undefined,
    });
    const results = await replicator.run("mgrfiles");
    assert.deepEqual(results.map((x) => [x.nodeid, x.ok]), [[2, true], [3, false]], "itself skipped");
    assert.match(results[1]!.error!, /rsync exit (10|35)/);
    assert.equal(recorded.length, 1);
  });

  it("a run stopped by its signal (the node stepped down) kills rsync and says why", async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await pushToNode({ set: "mgrfiles", config, peer, signal: ac.signal });
    assert.equal(r.ok, false);
    assert.match(r.error!, /no longer master/);
  });

  it("never pushes a missing source (it would empty every node)", async () => {
    const replicator = new FileReplicator({ config: { ...config, sets: { mgrfiles: { source: join(dir, "nope"), target: join(dir, "none") } } }, self: 1, peers: () => [peer], recorder: null, log: () => undefined });
    const before = readlinkSync(current());
    const [r] = await replicator.run("mgrfiles");
    assert.match(r!.error!, /is not a directory/);
    assert.equal(readlinkSync(current()), before);
  });
});

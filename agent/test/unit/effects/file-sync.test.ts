// File replication's pure parts (argv, rsyncd.conf, rsync output, incidents, config), the receiver's
// commit hook run for real in a temp dir, and the master-only schedule with real croner timers.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileSyncConfigSchema } from "../../../src/effects/file-sync/config.ts";
import { COMMIT_HOOK, describeRsyncFailure, isBusy, parseRsyncStats, rsyncdConf, rsyncdSecrets, rsyncPushArgs, rsyncSucceeded } from "../../../src/effects/file-sync/rsync.ts";
import { syncIncidents } from "../../../src/effects/file-sync/db-recorder.ts";
import { seedSourceFromReplica, type FileReplicator, type NodeSyncResult } from "../../../src/effects/file-sync/replicator.ts";
import { FileSyncSchedule } from "../../../src/effects/file-sync/schedule.ts";
import { parseAgentConfig } from "../../../src/config.ts";

const config = (extra: object = {}) => FileSyncConfigSchema.parse({ secret: "a-long-enough-secret", ...extra });

// Real output of `rsync --stats` 3.5.0 (second cycle of 10,000 files with 100 changed).
const STATS = `
Number of files: 10,011 (reg: 10,000, dir: 11)
Number of created files: 100 (reg: 100)
Number of deleted files: 3 (reg: 3)
Number of regular files transferred: 100
Total file size: 40,960,000 bytes
Total transferred file size: 409,600 bytes
Literal data: 409,600 bytes
Matched data: 0 bytes
File list size: 131,043
File list generation time: 0.003 seconds
Total bytes sent: 551,622
Total bytes received: 2,030

sent 551,622 bytes  received 2,030 bytes  1,107,304.00 bytes/sec
total size is 40,960,000  speedup is 73.98
`;

const result = (nodeid: number, ok: boolean, error: string | null = ok ? null : "rsync exit 10"): NodeSyncResult => ({
  nodeid,
  host: `10.0.0.${nodeid}`,
  ok,
  error,
  startedAt: new Date(0),
  durationMs: 12,
  filesChanged: 0,
  stats: null,
});

describe("file sync: config", () => {
  it("fills defaults: mgrfiles every 5 minutes on port 873", () => {
    const c = config();
    assert.equal(c.schedule, "*/5 * * * *");
    assert.equal(c.port, 873);
    assert.deepEqual(Object.keys(c.sets), ["mgrfiles"]);
    assert.equal(c.sets.mgrfiles!.source, "/usr/local/mgr5/var/mgrfiles");
  });
  it("rejects a short secret, a relative path and an unsafe set name with the field's path", () => {
    const bad = (input: object) => () => parseAgentConfig(JSON.stringify({ fileSync: input }), "cfg.json");
    assert.throws(bad({ secret: "short" }), /cfg\.json: fileSync\.secret: .*12/);
    assert.throws(bad({ secret: "a-long-enough-secret", sets: { mgrfiles: { source: "rel/dir", target: "/x" } } }), /fileSync\.sets\.mgrfiles\.source: an absolute path/);
    assert.throws(bad({ secret: "a-long-enough-secret", sets: { "Bad]name": { source: "/a", target: "/b" } } }), /fileSync\.sets/);
    assert.throws(bad({ secret: "a-long-enough-secret", bogus: 1 }), /fileSync: Unrecognized key/i);
    assert.throws(bad({ secret: "a-long-enough-secret", schedule: "every 5 minutes" }), /fileSync\.schedule: not a cron pattern/);
  });
  it("is optional in the agent config", () => {
    assert.equal(parseAgentConfig("{}").fileSync, undefined);
  });
});

describe("file sync: rsync argv and rsyncd.conf", () => {
  it("pushes the source's contents into the node's staging dir, hard-linking from current", () => {
    const c = config({ port: 8873, sets: { mgrfiles: { source: "/srv/files/", target: "/var/replica" } } });
    const args = rsyncPushArgs({ set: "mgrfiles", fileSet: c.sets.mgrfiles!, host: "172.31.224.12", config: c });
    assert.deepEqual(args.slice(-2), ["/srv/files/", "rsync://mgrsync@172.31.224.12/mgrfiles/staging/"]);
    for (const a of ["--archive", "--delete-after", "--link-dest=../current", "--modify-window=-1", "--stats", "--port=8873", "--timeout=60", "--contimeout=10"]) assert.ok(args.includes(a), a);
    assert.ok(!args.some((a) => a.includes(c.secret)), "the secret never goes into argv");
  });
  it("writes one locked, write-only, authenticated module per set with the commit hooks", () => {
    const c = config({ hostsAllow: "172.31.224.0/24", runDir: "/run/x", sets: { mgrfiles: { source: "/a", target: "/var/replica/mgrfiles" } } });
    const conf = rsyncdConf({ config: c, hook: "/opt/hook.sh" });
    for (const line of [
      "hosts allow = 172.31.224.0/24",
      "hosts deny = *",
      "[mgrfiles]",
      "path = /var/replica/mgrfiles",
      "write only = yes",
      "auth users = mgrsync",
      "secrets file = /run/x/rsyncd.secrets",
      "max connections = 1",
      "lock file = /run/x/mgrfiles.lock",
      "pre-xfer exec = /bin/sh /opt/hook.sh pre",
      "post-xfer exec = /bin/sh /opt/hook.sh post",
    ]) {
      assert.ok(conf.split("\n").includes(line), `missing: ${line}\n${conf}`);
    }
    assert.equal(rsyncdSecrets(c), `mgrsync:${c.secret}\n`);
  });
});

describe("file sync: rsync results", () => {
  it("reads --stats with thousands separators", () => {
    assert.deepEqual(parseRsyncStats(STATS), { files: 10011, created: 100, deleted: 3, transferred: 100, totalBytes: 40960000, transferredBytes: 409600 });
    assert.deepEqual(parseRsyncStats(""), { files: 0, created: 0, deleted: 0, transferred: 0, totalBytes: 0, transferredBytes: 0 });
  });
  it("describes a failure with rsync's own message and the exit code's meaning", () => {
    const stderr = "@ERROR: auth failed on module mgrfiles\nrsync error: error starting client-server protocol (code 5) at main.c(1954) [sender=3.5.0]\n";
    assert.equal(describeRsyncFailure(5, null, stderr), "rsync exit 5 (error starting client-server protocol): @ERROR: auth failed on module mgrfiles");
    assert.equal(describeRsyncFailure(null, "SIGKILL", ""), "rsync killed by SIGKILL");
    assert.equal(describeRsyncFailure(99, null, ""), "rsync exit 99");
    assert.ok(describeRsyncFailure(12, null, "x".repeat(5000)).length <= 2048);
  });
  it("retries only a busy module; only exit 0 is success", () => {
    assert.equal(isBusy(5, "@ERROR: max connections (1) reached -- try again later"), true);
    assert.equal(isBusy(5, "@ERROR: auth failed"), false);
    assert.deepEqual([0, 24, 23, null].map(rsyncSucceeded), [true, false, false, false]);
  });
});

describe("file sync: incidents", () => {
  it("one incident when a node starts failing, one when it recovers, none while nothing changes", () => {
    const prev = new Map([[2, { ok: true }], [3, { ok: false }], [4, { ok: false }]]);
    const out = syncIncidents("mgrfiles", prev, [result(2, false, "rsync exit 10 (error in socket I/O)"), result(3, true), result(4, false), result(5, false)]);
    assert.deepEqual(out.map((i) => [i.kind, i.nodeid, i.severity]), [["file-sync-failed", 2, "error"], ["file-sync-recovered", 3, "info"], ["file-sync-failed", 5, "error"]]);
    assert.equal(out[0]!.reason, "rsync exit 10 (error in socket I/O)");
  });
});

describe("file sync: the receiver's commit hook (commit-version.sh)", () => {
  const hook = (dir: string, env: Record<string, string>, arg: string) =>
    spawnSync("/bin/sh", [COMMIT_HOOK, arg], { env: { PATH: process.env.PATH!, RSYNC_MODULE_PATH: dir, ...env }, encoding: "utf8" });

  it("refuses writes outside staging, flips current only after status 0, keeps two versions", () => {
    const dir = mkdtempSync(join(tmpdir(), "fsync-hook-"));
    try {
      assert.notEqual(hook(dir, { RSYNC_REQUEST: "mgrfiles/current/" }, "pre").status, 0, "writing current directly is refused");
      assert.equal(hook(dir, { RSYNC_REQUEST: "mgrfiles/staging/" }, "pre").status, 0);
      assert.equal(readlinkSync(join(dir, "current")), "v-0", "an empty first version for --link-dest");

      const copy = (text: string, status: string) => {
        mkdirSync(join(dir, "staging"), { recursive: true });
        writeFileSync(join(dir, "staging", "f"), text);
        return hook(dir, { RSYNC_EXIT_STATUS: status }, "post");
      };
      assert.equal(copy("half", "-1").status, 0);
      assert.equal(readlinkSync(join(dir, "current")), "v-0", "an interrupted copy is not committed");
      assert.ok(existsSync(join(dir, "staging")), "and stays for the next run");
      for (const [i, text] of ["one", "two", "three"].entries()) {
        assert.equal(copy(text, "0").status, 0);
        assert.equal(readFileSync(join(dir, "current", "f"), "utf8"), text, `version ${i}`);
        assert.equal(existsSync(join(dir, "staging")), false);
      }
      assert.equal(readdirSync(dir).filter((f) => f.startsWith("v-")).length, 2, "current and the previous version are kept");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("file sync: a new master without a source starts from its replica", () => {
  it("copies <target>/current to the source once, and never overwrites an existing source", () => {
    const dir = mkdtempSync(join(tmpdir(), "fsync-seed-"));
    try {
      const set = { source: join(dir, "src", "mgrfiles"), target: join(dir, "replica") };
      assert.equal(seedSourceFromReplica(set), false, "nothing to seed from");
      mkdirSync(join(set.target, "v-1", "sub"), { recursive: true });
      writeFileSync(join(set.target, "v-1", "sub", "f"), "replicated");
      execFileSync("ln", ["-s", "v-1", join(set.target, "current")]);
      assert.equal(seedSourceFromReplica(set), true);
      assert.equal(readFileSync(join(set.source, "sub", "f"), "utf8"), "replicated");
      writeFileSync(join(set.source, "sub", "f"), "edited on the master");
      assert.equal(seedSourceFromReplica(set), false);
      assert.equal(readFileSync(join(set.source, "sub", "f"), "utf8"), "edited on the master");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("file sync: schedule (real croner, a stand-in replicator)", () => {
  it("runs once on becoming master, then on the schedule, never overlapping, and stops when no longer master", async () => {
    let running = 0;
    let maxRunning = 0;
    const runs: number[] = [];
    const replicator = {
      run: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        runs.push(Date.now());
        await new Promise((r) => setTimeout(r, 1500)); // longer than the 1 s schedule: ticks must skip
        running--;
        return [];
      },
    } as unknown as FileReplicator;
    const logs: string[] = [];
    const s = new FileSyncSchedule({ pattern: "* * * * * *", sets: ["mgrfiles"], replicator, log: (_l, m) => logs.push(m) });
    s.setMaster(false);
    assert.equal(runs.length, 0, "nothing while not master");
    s.setMaster(true);
    s.setMaster(true); // repeated calls (every core step) change nothing
    assert.equal(runs.length, 1, "one run right after becoming master");
    await new Promise((r) => setTimeout(r, 3500));
    s.setMaster(false);
    const count = runs.length;
    assert.ok(count >= 2, `scheduled runs happened: ${count}`);
    assert.equal(maxRunning, 1, "never two runs at once");
    assert.ok(logs.some((m) => /skipped: the previous run is still going/.test(m)));
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(runs.length, count, "no run after losing master");
  });
  it("losing master stops the copy in progress", async () => {
    let seen: AbortSignal | null = null;
    const replicator = {
      run: (_set: string, signal: AbortSignal) => {
        seen = signal;
        return new Promise<NodeSyncResult[]>((resolve) => signal.addEventListener("abort", () => resolve([])));
      },
    } as unknown as FileReplicator;
    const s = new FileSyncSchedule({ pattern: "0 0 1 1 *", sets: ["mgrfiles"], replicator, log: () => undefined });
    s.setMaster(true);
    const run = s.runNow("test"); // joins the run started by becoming master
    s.setMaster(false);
    await run;
    assert.equal((seen as AbortSignal | null)?.aborted, true);
  });
  it("rejects a bad pattern at construction", () => {
    assert.throws(() => new FileSyncSchedule({ pattern: "every five minutes", sets: [], replicator: {} as FileReplicator, log: () => undefined }));
  });
});

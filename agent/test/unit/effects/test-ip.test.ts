// The test-IP prober: one long-lived ping. A fake ping (a shell script) stands in for the network,
// except in the last test, which pings loopback for real.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isReplyLine, TestIpProbe } from "../../../src/effects/test-ip.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A fake ping: runs `script` with bash; ping's own arguments follow and are ignored. */
const fake = (script: string) => ["bash", "-c", script, "fake-ping"];

test("reply lines are told from the rest of ping's output", () => {
  assert.equal(isReplyLine("64 bytes from 172.31.225.1: icmp_seq=3 ttl=64 time=0.051 ms"), true);
  assert.equal(isReplyLine("PING 172.31.225.1 (172.31.225.1) 56(84) bytes of data."), false);
  assert.equal(isReplyLine("From 172.31.224.11 icmp_seq=2 Destination Host Unreachable"), false);
  assert.equal(isReplyLine("no answer yet for icmp_seq=4"), false);
});

test("reachable while replies keep coming, unreachable one interval + timeout after the last", async () => {
  let clock = 0;
  const probe = new TestIpProbe("192.0.2.1", {
    intervalMs: 1000,
    timeoutMs: 1000,
    now: () => clock,
    command: fake('echo "PING x"; echo "64 bytes from 192.0.2.1: icmp_seq=1 ttl=64 time=0.1 ms"; sleep 30'),
  });
  assert.equal(probe.reachable(), false, "nothing heard yet");
  probe.start();
  try {
    for (let i = 0; i < 100 && !probe.reachable(); i++) await sleep(20);
    assert.equal(probe.reachable(), true);
    clock += 2000;
    assert.equal(probe.reachable(), true, "the latest probe may still be within its timeout");
    clock += 1;
    assert.equal(probe.reachable(), false, "a probe went unanswered past its timeout");
  } finally {
    probe.stop();
  }
});

test("a ping that ends (no route) is started again after an interval, and says why once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "test-ip-"));
  const starts = join(dir, "starts");
  const errors: string[] = [];
  const probe = new TestIpProbe("192.0.2.1", {
    intervalMs: 100,
    command: fake(`echo start >> ${starts}; echo "connect: Network is unreachable" >&2; exit 2`),
    onError: (m) => errors.push(m),
  }).start();
  try {
    await sleep(550);
    const n = readFileSync(starts, "utf8").trim().split("\n").length;
    assert.ok(n >= 3 && n <= 7, `started ${n} times in 550 ms with a 100 ms interval`);
    assert.deepEqual(errors, ["test IP probe (ping 192.0.2.1) ended: connect: Network is unreachable; restarting"]);
    assert.equal(probe.reachable(), false);
  } finally {
    probe.stop();
  }
  await sleep(250);
  const after = readFileSync(starts, "utf8").trim().split("\n").length;
  await sleep(250);
  assert.equal(readFileSync(starts, "utf8").trim().split("\n").length, after, "stopped: no more restarts");
  rmSync(dir, { recursive: true, force: true });
});

test("stop ends the ping process", async () => {
  const dir = mkdtempSync(join(tmpdir(), "test-ip-"));
  const pidFile = join(dir, "pid");
  const probe = new TestIpProbe("192.0.2.1", { command: fake(`echo $$ > ${pidFile}; exec sleep 30`) }).start();
  try {
    let pid = 0;
    for (let i = 0; i < 100 && !pid; i++) {
      await sleep(20);
      pid = Number(readFileSync(pidFile, { encoding: "utf8", flag: "a+" }).trim() || 0);
    }
    assert.ok(pid > 0);
    probe.stop();
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      await sleep(20);
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
    }
    assert.equal(alive, false, "the ping process is gone");
  } finally {
    probe.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("real ping to loopback: reachable within a moment", async () => {
  const probe = new TestIpProbe("127.0.0.1", { intervalMs: 200 }).start();
  try {
    for (let i = 0; i < 100 && !probe.reachable(); i++) await sleep(20);
    assert.equal(probe.reachable(), true);
  } finally {
    probe.stop();
  }
});

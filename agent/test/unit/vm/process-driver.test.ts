import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cmdlineIsVm, isVmProcess, memTotalMb, ProcessVmDriver } from "../../../src/effects/vm/process-driver.ts";
import { buildNativeVmProgram } from "../../../src/effects/vm/vm-program.ts";

test("MemTotal is read in MiB", () => {
  assert.equal(memTotalMb("MemTotal:       16303452 kB\nMemFree:         1000 kB\n"), 15921);
  assert.throws(() => memTotalMb("MemFree: 1 kB\n"), /no MemTotal/);
});

test("a command line belongs to VM NAME only with the exact 'ha-vm NAME' pair", () => {
  const argv = (...a: string[]) => a.join("\0") + "\0";
  assert.equal(cmdlineIsVm(argv("node", "--import", "tsx", "process-vm.ts", "ha-vm", "web1", "--ip", "1.2.3.4"), "web1"), true);
  assert.equal(cmdlineIsVm(argv("node", "process-vm.ts", "ha-vm", "web10"), "web1"), false);
  assert.equal(cmdlineIsVm(argv("node", "ha-vm", "x", "web1"), "web1"), false);
  assert.equal(cmdlineIsVm("", "web1"), false);
});

test("state comes from the pid file plus /proc, never from the pid file alone", async () => {
  const dir = mkdtempSync(join(tmpdir(), "vm-unit-"));
  try {
    const d = new ProcessVmDriver({ runtimeDir: dir, capacity: { ramMb: 2048 } });
    assert.equal(await d.state("web1"), "absent");
    await assert.rejects(
      d.define({ name: "web1", ramMb: 256, vcpus: 1, disk: { kind: "network", path: "/s/web1.disk" } }),
      { message: "vm web1: define failed: the process driver needs an ip for the VM" },
    );
    await assert.rejects(
      d.define({ name: "web1", ramMb: 256, vcpus: 1, disk: { kind: "network", path: "rbd:p/i" }, ip: "10.9.9.9" }),
      /vm web1: define failed: disk path rbd:p\/i must be an absolute file path/,
    );
    await d.define({ name: "web1", ramMb: 256, vcpus: 1, disk: { kind: "network", path: "/s/web1.disk" }, ip: "10.9.9.9" });
    assert.equal(await d.state("web1"), "stopped");
    // A live pid that is not this VM (our own test process) does not count as running.
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "web1.pid"), JSON.stringify({ pid: process.pid, name: "web1", startedAt: "" }));
    assert.equal(isVmProcess(process.pid, "web1"), false);
    assert.equal(await d.state("web1"), "stopped");
    writeFileSync(join(dir, "ghost.pid"), JSON.stringify({ pid: 999_999_999, name: "ghost", startedAt: "" }));
    assert.deepEqual(await d.list(), [{ name: "web1", state: "stopped" }]);
    assert.deepEqual(await d.resources().then((r) => r.ramMb), 2048);
    await d.undefine("web1");
    assert.equal(await d.state("web1"), "absent");
    await assert.rejects(d.start("../x"), /vm "..\/x": invalid name/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the native VM program is compiled once per source version; a compiler failure says so", async () => {
  const dir = mkdtempSync(join(tmpdir(), "vm-program-"));
  try {
    const first = await buildNativeVmProgram(dir);
    assert.match(first, /\/process-vm-[0-9a-f]{12}$/);
    const mtime = statSync(first).mtimeMs;
    assert.equal(await buildNativeVmProgram(dir), first);
    assert.equal(statSync(first).mtimeMs, mtime, "not rebuilt");
    const usage = spawnSync(first, ["not-a-vm"], { encoding: "utf8" });
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /^usage: process-vm ha-vm NAME/);
    await assert.rejects(buildNativeVmProgram(join(dir, "other"), "/bin/false"), /^Error: cannot compile .*process-vm\.c with \/bin\/false: /);
    assert.deepEqual(readdirSync(join(dir, "other")), [], "no half-built program left behind");
    const d = new ProcessVmDriver({ runtimeDir: join(dir, "node"), program: "node" });
    assert.equal((await d.program()).kind, "node");
    // The default (native) falls back to the Node.js program, with a warning, when it cannot compile.
    process.env.CC = "/bin/false";
    try {
      const fallback = new ProcessVmDriver({ runtimeDir: join(dir, "fallback") });
      assert.match(await fallback.prepare(), /^process VM driver: VMs run as Node\.js programs \(.*process-vm\.mjs\)$/);
    } finally {
      delete process.env.CC;
    }
    assert.match(await new ProcessVmDriver({ runtimeDir: dir }).prepare(), /^process VM driver: VMs run .*\/process-vm-[0-9a-f]{12}$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

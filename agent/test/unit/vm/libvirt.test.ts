import { test } from "node:test";
import assert from "node:assert/strict";
import type { RunResult } from "@ha/shared";
import { diskXml, domainXml, LibvirtVmDriver, parseDomList, parseDomState, parseNodeinfo } from "../../../src/effects/vm/libvirt-driver.ts";
import type { VmDefinition } from "../../../src/effects/vm/driver.ts";

const web1: VmDefinition = { name: "web1", ramMb: 2048, vcpus: 4, disk: { kind: "network", path: "rbd:vms/web1" }, ha: true };

test("domain XML carries name, memory, vcpus, disk, bridge and never lets libvirt restart a crash", () => {
  const xml = domainXml(web1, { type: "kvm", bridge: "vmbr0" });
  assert.match(xml, /^<domain type='kvm'>/);
  assert.match(xml, /<name>web1<\/name>/);
  assert.match(xml, /<memory unit='MiB'>2048<\/memory>/);
  assert.match(xml, /<vcpu>4<\/vcpu>/);
  assert.match(xml, /<source protocol='rbd' name='vms\/web1'\/>/);
  assert.match(xml, /<interface type='bridge'><source bridge='vmbr0'\/>/);
  assert.match(xml, /<on_crash>destroy<\/on_crash>/);
  assert.match(xml, /ha='yes' disk='network'/);
});

test("disk paths map to block, file and network disks", () => {
  assert.match(diskXml("/dev/vg0/web1"), /^<disk type='block' .*<source dev='\/dev\/vg0\/web1'\/>/);
  assert.match(diskXml("/mnt/nfs/web1.qcow2"), /type='qcow2' cache='none'.*<source file='\/mnt\/nfs\/web1.qcow2'\/>/);
  assert.match(diskXml("/mnt/nfs/web1.img"), /type='raw'/);
  assert.equal(
    diskXml("rbd://admin@mon1:6789,mon2/rbd/web1?secret=11111111-2222-3333-4444-555555555555"),
    "<disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/><source protocol='rbd' name='rbd/web1'>" +
      "<host name='mon1' port='6789'/><host name='mon2'/></source><auth username='admin'><secret type='ceph' uuid='11111111-2222-3333-4444-555555555555'/></auth>" +
      "<target dev='vda' bus='virtio'/></disk>",
  );
  assert.match(diskXml("iscsi://10.0.0.5:3260/iqn.2024-01.com.example:store/1"), /<source protocol='iscsi' name='iqn.2024-01.com.example:store\/1'><host name='10.0.0.5' port='3260'\/><\/source>/);
  assert.match(diskXml("nfs://nas1/export/vms/web1.img"), /<source protocol='nfs' name='\/export\/vms\/web1.img'><host name='nas1'\/><identity user='root' group='root'\/><\/source>/);
  assert.throws(() => diskXml("rbd://admin@mon1/rbd/web1"), /a cephx user needs \?secret=UUID/);
  assert.throws(() => diskXml("ftp://x/y"), /unsupported disk path ftp:\/\/x\/y/);
  assert.throws(() => diskXml("web1.img"), /unsupported disk path/);
  assert.match(diskXml("/mnt/a'b&c"), /<source file='\/mnt\/a&apos;b&amp;c'\/>/, "XML-escaped");
});

test("virsh output parsing: domstate, list --all (with or without header), nodeinfo", () => {
  assert.equal(parseDomState("shut off\n\n"), "stopped");
  for (const s of ["running", "paused", "in shutdown", "crashed", "pmsuspended", "idle"]) assert.equal(parseDomState(`${s}\n`), "running", s);
  const table = " Id   Name   State\n-----------------------\n 1    test   running\n -    web1   shut off\n 3    db-2   paused\n\n";
  const want = [
    { name: "test", state: "running" },
    { name: "web1", state: "stopped" },
    { name: "db-2", state: "running" },
  ];
  assert.deepEqual(parseDomList(table), want);
  assert.deepEqual(parseDomList(table.split("\n").slice(2).join("\n")), want);
  assert.deepEqual(parseDomList(""), []);
  const nodeinfo = "CPU model:           i686\nCPU(s):              16\nCPU frequency:       1400 MHz\nMemory size:         3145728 KiB\n";
  assert.deepEqual(parseNodeinfo(nodeinfo), { ramMb: 3072, vcpus: 16 });
  assert.throws(() => parseNodeinfo("garbage"), /cannot parse virsh nodeinfo/);
});

/** A fake virsh: a domain whose guest may ignore ACPI shutdown. */
function fakeVirsh(opts: { state: "running" | "shut off" | "absent"; honoursShutdown: boolean }) {
  const calls: string[] = [];
  let state = opts.state;
  const res = (code: number, stdout = "", stderr = ""): RunResult => ({ code, stdout, stderr });
  const runner = async (args: string[]) => {
    calls.push(args.join(" "));
    switch (args[0]) {
      case "domstate":
        return state === "absent" ? res(1, "", "error: failed to get domain 'web1'\n") : res(0, `${state}\n\n`);
      case "shutdown":
        if (opts.honoursShutdown) state = "shut off";
        return res(0, "Domain 'web1' is being shutdown\n");
      case "destroy":
        state = "shut off";
        return res(0);
      case "start":
        state = "running";
        return res(0);
      default:
        return res(1, "", `error: unexpected ${args[0]}`);
    }
  };
  return { calls, driver: new LibvirtVmDriver({ uri: "qemu:///system", runner, pollMs: 20 }) };
}

test("stop: graceful shutdown, destroy after the timeout, force destroys at once, stopped is a no-op", async () => {
  const polite = fakeVirsh({ state: "running", honoursShutdown: true });
  await polite.driver.stop("web1", { timeoutMs: 1000 });
  assert.deepEqual(polite.calls, ["domstate web1", "shutdown web1", "domstate web1"]);

  const stubborn = fakeVirsh({ state: "running", honoursShutdown: false });
  const t0 = Date.now();
  await stubborn.driver.stop("web1", { timeoutMs: 200 });
  assert.ok(Date.now() - t0 >= 200);
  assert.equal(stubborn.calls.at(-2), "destroy web1");
  assert.equal(await stubborn.driver.state("web1"), "stopped");

  const forced = fakeVirsh({ state: "running", honoursShutdown: true });
  await forced.driver.stop("web1", { timeoutMs: 60_000, force: true });
  assert.deepEqual(forced.calls, ["domstate web1", "destroy web1", "domstate web1"]);

  const off = fakeVirsh({ state: "shut off", honoursShutdown: true });
  await off.driver.stop("web1", { timeoutMs: 1000 });
  assert.deepEqual(off.calls, ["domstate web1"]);
});

test("start and state: absent domains are reported clearly, running ones are left alone", async () => {
  const absent = fakeVirsh({ state: "absent", honoursShutdown: true });
  assert.equal(await absent.driver.state("web1"), "absent");
  await assert.rejects(absent.driver.start("web1"), { message: "vm web1: start failed: not defined on this node (qemu:///system)" });
  const running = fakeVirsh({ state: "running", honoursShutdown: true });
  await running.driver.start("web1");
  assert.deepEqual(running.calls, ["domstate web1"]);
  await assert.rejects(running.driver.undefine("web1"), { message: "vm web1: undefine failed: it is running: stop it first" });
});

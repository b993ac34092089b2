// The libvirt VM driver against a real libvirt, through virsh and libvirt's test driver (no KVM needed).
// test:///default works without a daemon, but then every virsh call opens a fresh connection with
// fresh state, so a VM defined by one call is gone for the next. The lifecycle test therefore runs
// a private, unprivileged libvirtd (its own netns, sockets in a temp dir) and keeps one connection
// open for the test's duration: the test driver keeps its state while any connection holds it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, sleep } from "@ha/shared";
import { domainXml, LibvirtVmDriver } from "../../src/effects/vm/libvirt-driver.ts";
import type { VmDefinition } from "../../src/effects/vm/driver.ts";

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const noVirsh = has("virsh") ? false : "virsh not installed (Debian package libvirt-clients)";
const noDaemon = noVirsh || (has("libvirtd") ? false : "libvirtd not installed (Debian package libvirt-daemon)");
const NOBODY = 65534;

const web1: VmDefinition = { name: "web1", ramMb: 512, vcpus: 2, disk: { kind: "network", path: "rbd://mon1:6789/vms/web1" }, ha: true };

let dir = "";
let libvirtd: ChildProcess | undefined;
let holder: ChildProcess | undefined;
let uri = "";
let daemonProblem: string | false = noDaemon;

async function startPrivateLibvirtd(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), "vm-libvirt-"));
  chmodSync(dir, 0o755);
  const home = join(dir, "home");
  const sock = join(home, "sock");
  mkdirSync(sock, { recursive: true });
  for (const d of [home, sock]) chownSync(d, NOBODY, NOBODY);
  writeFileSync(join(dir, "libvirtd.conf"), `unix_sock_dir = "${sock}"\n`);
  const log = openSync(join(dir, "libvirtd.log"), "a");
  // unshare -n: whatever its network driver tries happens in an empty namespace, not on the host.
  libvirtd = spawn(
    "unshare",
    ["-n", "--", "setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups",
     "env", "-i", `HOME=${home}`, `XDG_RUNTIME_DIR=${join(home, "run")}`, "PATH=/usr/sbin:/usr/bin:/bin",
     "libvirtd", "-f", join(dir, "libvirtd.conf")],
    { stdio: ["ignore", log, log] },
  );
  const socket = join(sock, "libvirt-sock");
  for (let i = 0; i < 100 && !existsSync(socket) && libvirtd.exitCode === null; i++) await sleep(100);
  if (!existsSync(socket)) throw new Error(`libvirtd did not create ${socket} (exit ${libvirtd.exitCode}); see ${dir}/libvirtd.log`);
  uri = `test+unix:///default?socket=${socket}`;
  holder = spawn("virsh", ["-c", uri], { stdio: ["pipe", "ignore", "ignore"] });
  const probe = await run("virsh", ["-c", uri, "list", "--all"]);
  if (probe.code !== 0) throw new Error(`virsh cannot talk to the private libvirtd: ${probe.stderr.trim()}`);
}

async function stopChild(c: ChildProcess | undefined) {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once("exit", r));
  c.kill("SIGTERM");
  await Promise.race([gone, sleep(5000)]);
  if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
}

before(async () => {
  if (daemonProblem) return;
  try {
    await startPrivateLibvirtd();
  } catch (err) {
    daemonProblem = `private libvirtd could not start: ${(err as Error).message}`;
    console.log(`# skipping the libvirt lifecycle test: ${daemonProblem}`);
  }
});
after(async () => {
  holder?.stdin?.end();
  await stopChild(holder);
  await stopChild(libvirtd);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("test:///default without a daemon: list, state, resources", { skip: noVirsh }, async () => {
  const d = new LibvirtVmDriver({ uri: "test:///default" });
  assert.deepEqual(await d.list(), [{ name: "test", state: "running" }]);
  assert.equal(await d.state("test"), "running");
  assert.equal(await d.state("web1"), "absent");
  assert.deepEqual(await d.resources(), { ramMb: 3072, vcpus: 16 }); // the test driver's fixed node
  assert.deepEqual(await new LibvirtVmDriver({ uri: "test:///default", capacity: { ramMb: 1000 } }).resources(), { ramMb: 1000, vcpus: 16 });
  await d.define(web1); // accepted (and forgotten when that virsh exits)
});

test("the production (kvm) domain XML validates against libvirt's schema", { skip: has("virt-xml-validate") && has("xmllint") ? false : "virt-xml-validate/xmllint missing (libvirt-clients, libxml2-utils)" }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "vm-xml-"));
  try {
    for (const path of ["rbd:vms/web1", "rbd://admin@mon1:6789,mon2/vms/web1?secret=11111111-2222-3333-4444-555555555555", "iscsi://10.0.0.5/iqn.2024-01.com.example:s/1", "nfs://nas/export/web1.img", "/dev/vg0/web1", "/mnt/nfs/web1.qcow2"]) {
      const file = join(tmp, "d.xml");
      writeFileSync(file, domainXml({ ...web1, disk: { kind: "network", path }, ip: "10.0.0.9" }, { type: "kvm", bridge: "vmbr0" }));
      const r = await run("virt-xml-validate", [file, "domain"]);
      assert.equal(r.code, 0, `${path}: ${r.stdout}${r.stderr}`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("full lifecycle through a libvirtd: define, start, stop, force stop, undefine", { skip: noDaemon }, async (t) => {
  if (daemonProblem) return t.skip(daemonProblem);
  const d = new LibvirtVmDriver({ uri, pollMs: 50 });
  await d.define(web1);
  assert.equal(await d.state("web1"), "stopped");
  assert.deepEqual(await d.list(), [
    { name: "test", state: "running" },
    { name: "web1", state: "stopped" },
  ]);
  const xml = await run("virsh", ["-c", uri, "dumpxml", "web1"]);
  assert.match(xml.stdout, /<source protocol=.rbd. name=.vms\/web1.>\s*<host name=.mon1. port=.6789.\/>/);
  assert.match(xml.stdout, /<memory unit=.KiB.>524288<\/memory>/);

  await d.start("web1");
  assert.equal(await d.state("web1"), "running");
  await d.start("web1"); // already running: no-op
  await assert.rejects(d.undefine("web1"), { message: "vm web1: undefine failed: it is running: stop it first" });
  await d.stop("web1", { timeoutMs: 5000 });
  assert.equal(await d.state("web1"), "stopped");
  await d.stop("web1", { timeoutMs: 5000 }); // already stopped: no-op

  await d.start("web1");
  await d.stop("web1", { timeoutMs: 60_000, force: true });
  assert.equal(await d.state("web1"), "stopped");

  await d.undefine("web1");
  assert.equal(await d.state("web1"), "absent");
  await d.undefine("web1"); // absent: no-op
  await assert.rejects(d.start("web1"), { message: `vm web1: start failed: not defined on this node (${uri})` });
  await assert.rejects(d.define({ ...web1, disk: { kind: "network", path: "ftp://x/y" } }), /vm web1: define failed: unsupported disk path ftp:\/\/x\/y/);
});

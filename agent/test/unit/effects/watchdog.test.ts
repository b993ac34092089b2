import { test } from "node:test";
import assert from "node:assert/strict";
import { shouldPetKernelWatchdog } from "../../../src/effects/watchdog.ts";

test("a kernel watchdog is petted only while its whole timer ends before the core's deadline", () => {
  assert.equal(shouldPetKernelWatchdog(5000, 1000), true);
  assert.equal(shouldPetKernelWatchdog(1000, 1000), true); // fires exactly at the deadline at worst
  assert.equal(shouldPetKernelWatchdog(999, 1000), false); // petting now would let it fire late
  assert.equal(shouldPetKernelWatchdog(0, 1000), false);
  assert.equal(shouldPetKernelWatchdog(-50, 1000), false);
});

test("the ioctl is declared (koffi parses the prototype)", async () => {
  const { libc } = await import("../../../src/corosync/libc.ts");
  assert.equal(typeof libc().ioctl, "function");
});

test("a device that is not a watchdog is refused with a clear error, not silently run on a default timer", async () => {
  const { DevWatchdog } = await import("../../../src/effects/watchdog.ts");
  // /dev/null rejects the watchdog ioctl with ENOTTY (25): the real ioctl path runs end to end.
  assert.throws(() => new DevWatchdog("/dev/null", 2), /cannot set the timeout to 2 s \(ioctl WDIOC_SETTIMEOUT failed, errno 25\)/);
});

test("a reset knows a killed VM's address from its command line (the VM programs' defaults apply)", async () => {
  const { vmAddressFromCmdline } = await import("../../../src/effects/vm/net.ts");
  const argv = (...a: string[]) => a.join("\0") + "\0";
  assert.deepEqual(
    vmAddressFromCmdline(argv("/run/x/process-vm-0123456789ab", "ha-vm", "web1", "--ip", "10.0.0.5", "--port", "80", "--dev", "br1", "--prefix", "16", "--disk", "/d", "--pidfile", "/p")),
    { name: "web1", ip: "10.0.0.5", prefix: 16, dev: "br1" },
  );
  assert.deepEqual(vmAddressFromCmdline(argv("node", "process-vm.mjs", "ha-vm", "db2", "--ip", "10.0.0.6")), { name: "db2", ip: "10.0.0.6", prefix: 24, dev: "vmbr0" });
  assert.equal(vmAddressFromCmdline(argv("node", "agent.ts", "--ip", "10.0.0.7")), null, "not a VM");
  assert.equal(vmAddressFromCmdline(argv("node", "process-vm.mjs", "ha-vm", "web1")), null, "no address");
  assert.equal(vmAddressFromCmdline(argv("x", "ha-vm", "web1", "--ip", "10.0.0.5", "--prefix", "wide")), null);
  assert.equal(vmAddressFromCmdline(""), null);
});

test("the supervisor's deadlines are on CLOCK_MONOTONIC, which every process of the machine shares", async () => {
  const { execFileSync } = await import("node:child_process");
  const { monoNow } = await import("../../../src/effects/watchdog.ts");
  const before = monoNow();
  const other = Number(execFileSync(process.execPath, ["-e", "console.log(Number(process.hrtime.bigint() / 1000n) / 1000)"], { encoding: "utf8" }));
  const after = monoNow();
  assert.ok(before <= other && other <= after, `${before} <= ${other} <= ${after}`);
});

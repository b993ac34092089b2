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

// The lab's watchdog: reads deadlines from the daemon on stdin; when one passes (the daemon is
// hung or paused) or a reset is asked for, kills every process of this node, like a hardware reset.
import { createInterface } from "node:readline";
import { execFileSync } from "node:child_process";
import { nodeProcesses } from "./watchdog.ts";

let deadline: number | null = null;
let disarmed = false;

function reset(reason: string) {
  process.stderr.write(`${new Date().toISOString()} watchdog: resetting node: ${reason}\n`);
  for (const pid of nodeProcesses(process.pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  const { WATCHDOG_RELEASE_CIDR: cidr, WATCHDOG_RELEASE_DEV: dev } = process.env;
  if (cidr && dev) {
    try {
      execFileSync("ip", ["addr", "del", cidr, "dev", dev], { stdio: "ignore" });
    } catch {
      /* not held */
    }
  }
  process.exit(0);
}

createInterface({ input: process.stdin })
  .on("line", (line) => {
    try {
      const m = JSON.parse(line) as { deadline?: number; disarm?: boolean; reset?: string };
      if (m.reset) reset(m.reset);
      if (m.disarm) disarmed = true;
      if (typeof m.deadline === "number") deadline = m.deadline;
    } catch {
      /* ignore garbage */
    }
  })
  // The daemon went away: a clean stop disarmed us; otherwise the last deadline still holds.
  .on("close", () => disarmed && process.exit(0));

setInterval(() => {
  if (!disarmed && deadline !== null && Date.now() > deadline) reset(`deadline passed ${Date.now() - deadline} ms ago`);
}, 100);

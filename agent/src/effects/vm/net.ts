// The lab VM's own address on the node's bridge (process driver). Runs in the node's namespace.
// Imported by every VM process, so it stays on node builtins: each import costs start-up time.
import { execFile } from "node:child_process";

/** Runs a command; resolves with its exit code and stderr (never rejects). */
function run(cmd: string, args: string[], opts: { timeoutMs: number }): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: opts.timeoutMs, encoding: "utf8" }, (err, _stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 127) : 0;
      resolve({ code, stderr: stderr || (err?.message ?? "") });
    });
  });
}

export interface VmAddress {
  ip: string;
  prefix: number;
  dev: string;
}

const cidr = (a: VmAddress) => `${a.ip}/${a.prefix}`;

/** Adds the address; one already there (left by a killed VM) counts as added. */
export async function addVmAddress(a: VmAddress): Promise<void> {
  const r = await run("ip", ["addr", "add", cidr(a), "dev", a.dev], { timeoutMs: 5000 });
  if (r.code !== 0 && !/File exists/.test(r.stderr)) throw new Error(`ip addr add ${cidr(a)} dev ${a.dev}: ${r.stderr.trim()}`);
}

/** Removes the address; an address that is already gone counts as removed. */
export async function removeVmAddress(a: VmAddress): Promise<void> {
  const r = await run("ip", ["addr", "del", cidr(a), "dev", a.dev], { timeoutMs: 5000 });
  if (r.code !== 0 && !/Address not found|Cannot assign requested address/.test(r.stderr)) {
    throw new Error(`ip addr del ${cidr(a)} dev ${a.dev}: ${r.stderr.trim()}`);
  }
}

/**
 * Unsolicited ARP so neighbours that cached the VM's previous node's MAC switch to us at once,
 * instead of sending probes into the void until their ARP entry expires.
 */
export async function gratuitousArp(a: VmAddress): Promise<void> {
  const r = await run("arping", ["-q", "-U", "-c", "1", "-I", a.dev, a.ip], { timeoutMs: 5000 });
  // iputils arping exits 1 when no reply came, which is normal for -U: only a spawn error matters.
  if (r.code !== 0 && r.code !== 1) throw new Error(`arping -U ${a.ip} on ${a.dev}: ${r.stderr.trim()}`);
}

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

/** The addresses on `dev` (`ip -o addr show`); throws when it cannot list them (e.g. no such device). */
export async function deviceAddresses(dev: string): Promise<Array<{ ip: string; prefix: number }>> {
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile("ip", ["-o", "addr", "show", "dev", dev], { timeout: 5000, encoding: "utf8" }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, stdout, stderr: stderr || (err?.message ?? "") }),
    );
  });
  if (r.code !== 0) throw new Error(`ip addr show dev ${dev}: ${r.stderr.trim()}`);
  return [...r.stdout.matchAll(/\binet6? ([^\s/]+)\/(\d+)/g)].map((m) => ({ ip: m[1]!, prefix: Number(m[2]) }));
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

/**
 * The VM and address a VM process's command line names ("... ha-vm NAME --ip IP [--dev D]
 * [--prefix P] ..."; NUL-separated as in /proc/PID/cmdline), with the VM program's defaults for
 * --dev and --prefix; null if it is not a VM process or names no address (pure, tested).
 */
export function vmAddressFromCmdline(cmdline: string): (VmAddress & { name: string }) | null {
  const argv = cmdline.split("\0");
  const at = argv.indexOf("ha-vm");
  const name = at >= 0 ? argv[at + 1] : undefined;
  if (!name) return null;
  const opt = (key: string) => {
    const i = argv.indexOf(key, at + 2);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const ip = opt("--ip");
  const prefix = Number(opt("--prefix") ?? 24);
  if (!ip || !Number.isInteger(prefix)) return null;
  return { name, ip, prefix, dev: opt("--dev") ?? "vmbr0" };
}

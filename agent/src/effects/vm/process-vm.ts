// A lab "VM": a real process with its own address, an HTTP service and a disk file on shared storage.
//   node process-vm.ts ha-vm NAME --ip IP --port N --dev vmbr0 --prefix 24 --disk PATH --pidfile PATH
// The literal "ha-vm NAME" in the command line is how the lab recognises VM processes.
// Start-up result goes to fd 3 as one JSON line ({"ready":true} or {"error":"..."}) when the
// process driver opened it, so a failed start (e.g. disk locked by another node) is reported to it.
import { createServer } from "node:http";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { appendFileSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import koffi from "koffi";
import { addVmAddress, gratuitousArp, removeVmAddress, type VmAddress } from "./net.ts";

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ip: { type: "string" },
    port: { type: "string", default: "80" },
    dev: { type: "string", default: "vmbr0" },
    prefix: { type: "string", default: "24" },
    disk: { type: "string" },
    pidfile: { type: "string" },
  },
});
const name = positionals[1];
if (positionals[0] !== "ha-vm" || !name || !o.ip || !o.disk || !o.pidfile) {
  console.error("usage: process-vm.ts ha-vm NAME --ip IP --disk PATH --pidfile PATH [--port 80] [--dev vmbr0] [--prefix 24]");
  process.exit(2);
}
const addr: VmAddress = { ip: o.ip, prefix: Number(o.prefix), dev: o.dev! };
const disk = o.disk;
const pidfile = o.pidfile;
const startedAt = new Date().toISOString();
const host = hostname();

function report(msg: object) {
  try {
    writeSync(3, JSON.stringify(msg) + "\n");
    closeSync(3);
  } catch {
    /* not started by the driver: nobody listens on fd 3 */
  }
}

// flock(2) locks the inode, so it holds across mount namespaces and bind mounts of the same
// filesystem (and NFS maps it to a lock on the server); the kernel drops it when the process
// dies, however it dies, so a crashed node never leaves a stale lock behind.
const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;
const flock = koffi.load("libc.so.6").func("int flock(int fd, int op)") as (fd: number, op: number) => number;

/** The last line of the disk: who wrote it last, for the "locked" error. */
function lastLine(fd: number): string {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(Math.min(size, 512));
  readSync(fd, buf, 0, buf.length, size - buf.length);
  return buf.toString("utf8").trimEnd().split("\n").pop() ?? "";
}

function lockDisk(): number {
  let fd: number;
  try {
    // A new disk is created on first boot, with its directory (one level: recursive mkdir would
    // turn a read-only storage into a misleading ENOENT).
    if (!existsSync(dirname(disk))) mkdirSync(dirname(disk));
    fd = openSync(disk, "a+");
  } catch (err) {
    throw new Error(`cannot open disk ${disk}: ${(err as Error).message}`);
  }
  if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const errno = koffi.errno();
    const last = errno === EWOULDBLOCK ? lastLine(fd) : "";
    closeSync(fd);
    if (errno === EWOULDBLOCK) throw new Error(`disk ${disk} is in use by a running VM elsewhere (last write: ${last || "none"})`);
    throw new Error(`cannot lock disk ${disk}: errno ${errno}`);
  }
  return fd; // kept open for the life of the process: that is what holds the lock
}

let diskOk = true;
let lastDiskError = "";
/** One line per write, reopened by path each time so a storage cut makes writes fail like real I/O. */
function writeDisk(what: string) {
  try {
    appendFileSync(disk, `${new Date().toISOString()} ${host} pid=${process.pid} ${what}\n`);
    if (!diskOk) console.error(`${new Date().toISOString()} disk writes work again`);
    diskOk = true;
  } catch (err) {
    const msg = (err as Error).message;
    if (diskOk || msg !== lastDiskError) console.error(`${new Date().toISOString()} disk write failed: ${msg}`);
    diskOk = false;
    lastDiskError = msg;
  }
}

const server = createServer((_req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ vm: name, host, pid: process.pid, startedAt, diskOk }));
});

let addressAdded = false;
async function boot() {
  lockDisk();
  // Only after the lock: a VM that may not run must not claim the address (and ARP it away).
  await addVmAddress(addr);
  addressAdded = true;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`cannot listen on ${addr.ip}:${o.port}: ${err.message}`)));
    server.listen(Number(o.port), addr.ip, resolve);
  });
  gratuitousArp(addr).catch((err: Error) => console.error(err.message));
  const tmp = `${pidfile}.tmp`;
  writeFileSync(tmp, JSON.stringify({ pid: process.pid, name, startedAt }));
  renameSync(tmp, pidfile);
  writeDisk("boot");
  setInterval(() => writeDisk("tick"), 1000);
}

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  console.error(`${new Date().toISOString()} ${signal}: shutting down`);
  server.close();
  server.closeAllConnections();
  writeDisk("shutdown");
  await removeVmAddress(addr).catch((err: Error) => console.error(err.message));
  rmSync(pidfile, { force: true });
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));

boot().then(
  () => {
    console.error(`${startedAt} vm ${name} running on ${host} at ${addr.ip}:${o.port}, pid ${process.pid}`);
    report({ ready: true, pid: process.pid });
  },
  async (err: Error) => {
    console.error(`${new Date().toISOString()} start failed: ${err.message}`);
    if (addressAdded) await removeVmAddress(addr).catch(() => {});
    report({ error: err.message });
    process.exit(1);
  },
);

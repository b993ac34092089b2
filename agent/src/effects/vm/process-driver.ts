// The lab's VM driver: a VM is a process (process-vm.ts) in this node's namespaces with its own
// address on the bridge and a disk file on shared storage. The daemon runs inside the node, so
// everything here is local: spawn, signals, `ip addr`, files under the node's private /run.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { writeFileAtomic, sleep } from "@ha/shared";
import { deviceAddresses, removeVmAddress, vmAddressFromCmdline } from "./net.ts";
import { buildNativeVmProgram, bundleVmProgram, PROCESS_VM_SCRIPT, type VmProgramKind } from "./vm-program.ts";
import { checkVmName, parseVmDefinition, withVmError, type StopOptions, type VmDefinition, type VmDriver, type VmState } from "./driver.ts";

export { PROCESS_VM_SCRIPT };

export interface ProcessDriverOptions {
  /** Pid files and VM logs (per node: the lab gives every node its own /run). */
  runtimeDir?: string;
  /** Where definitions are kept as JSON. Default: <runtimeDir>/defs. */
  definitionsDir?: string;
  /** Bridge that gets the VMs' addresses. */
  bridge?: string;
  prefix?: number;
  /** HTTP port every VM serves on its own address. */
  port?: number;
  /** Fake node capacity (the lab); unset fields come from /proc/meminfo and os.cpus(). */
  capacity?: { ramMb?: number; vcpus?: number };
  /** How long a VM may take to lock its disk, take its address and listen. */
  startTimeoutMs?: number;
  /**
   * Which VM program runs (vm-program.ts): "native" (default), process-vm.c compiled once into
   * runtimeDir, falling back to "node" with a warning when it cannot be compiled; or "node".
   */
  program?: VmProgramKind;
  /** Where the native program is built and kept (default runtimeDir); the lab builds it there before the agents start. */
  programDir?: string;
  /**
   * For program "node": node arguments that make it run process-vm.ts as TypeScript, e.g.
   * ["--import", "tsx"]. Default: a plain-JS bundle built once into runtimeDir, else tsx.
   */
  nodeArgs?: string[];
}

/** How a VM process is started: the executable and the arguments before "ha-vm NAME ...". */
type VmCommand = { kind: VmProgramKind; file: string; args: string[] };

type PidFile = { pid: number; name: string; startedAt: string };

export class ProcessVmDriver implements VmDriver {
  readonly kind = "process" as const;
  readonly runtimeDir: string;
  readonly definitionsDir: string;
  readonly bridge: string;
  readonly prefix: number;
  readonly port: number;
  private readonly startTimeoutMs: number;
  private vmCommand: Promise<VmCommand> | null = null;
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** The start-up clean-up of addresses left by killed VMs (once per driver); what it removed. */
  private leftovers: Promise<string | null> | null = null;

  constructor(private readonly opts: ProcessDriverOptions = {}) {
    this.runtimeDir = opts.runtimeDir ?? "/run/corolistener/vms";
    this.definitionsDir = opts.definitionsDir ?? join(this.runtimeDir, "defs");
    this.bridge = opts.bridge ?? "vmbr0";
    this.prefix = opts.prefix ?? 24;
    this.port = opts.port ?? 80;
    this.startTimeoutMs = opts.startTimeoutMs ?? 15_000;
  }

  /**
   * The VM program, built once per driver. Call it at start-up so the first VM start after a
   * failover does not pay for the build.
   */
  program(): Promise<VmCommand> {
    return (this.vmCommand ??= this.opts.program === "node" ? this.nodeProgram() : this.nativeProgram());
  }

  /** At start-up: builds the program and removes addresses left by killed VMs (the line says what it removed). */
  async prepare(): Promise<string> {
    const [p, removed] = await Promise.all([this.program(), this.releaseLeftoverAddresses(false)]);
    return `process VM driver: VMs run ${p.kind === "native" ? p.file : `as Node.js programs (${p.args.join(" ")})`}${removed ? `; ${removed}` : ""}`;
  }

  /**
   * Once per driver, before its first start or listing (prepare() starts it at daemon start-up):
   * removes from the bridge the address of every VM defined here that has no VM process here. A
   * killed VM cannot drop its address, and neither an agent crash nor the lab's watchdog reset
   * (which kills the node's processes but, unlike a reboot, keeps its interfaces) removes it: the
   * VM, restarted on another node, would have its address on two nodes. Never rejects: a failure
   * is part of the returned line. `log`: also write it to stderr (not called through prepare()).
   */
  private releaseLeftoverAddresses(log: boolean): Promise<string | null> {
    if (this.leftovers) return this.leftovers;
    this.leftovers = this.removeLeftoverAddresses().catch((err: Error) => `cannot remove addresses left by killed VMs: ${err.message}`);
    return log ? this.leftovers.then((line) => (line && console.error(`process VM driver: ${line}`), line)) : this.leftovers;
  }

  private async removeLeftoverAddresses(): Promise<string | null> {
    const files = (await readdir(this.definitionsDir).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
    if (files.length === 0) return null;
    const defs = await Promise.all(files.map((f) => this.definition(f.slice(0, -".json".length)).catch(() => null)));
    // Running = a VM process in our namespace (not the pid file: a VM still booting has none yet).
    const running = vmProcessesHere();
    const keep = new Set([...running].flatMap(([, ip]) => (ip ? [ip] : [])));
    const wanted = defs.filter((d): d is VmDefinition & { ip: string } => !!d?.ip && !running.has(d.name) && !keep.has(d.ip));
    if (wanted.length === 0) return null;
    const present = new Map((await deviceAddresses(this.bridge)).map((a) => [a.ip, a.prefix]));
    const removed: string[] = [];
    const failed: string[] = [];
    for (const d of wanted) {
      const prefix = present.get(d.ip);
      if (prefix === undefined) continue;
      present.delete(d.ip); // two definitions with one address: remove it once
      await removeVmAddress({ ip: d.ip, prefix, dev: this.bridge }).then(
        () => removed.push(`${d.name} ${d.ip}/${prefix}`),
        (err: Error) => failed.push(`${d.name}: ${err.message}`),
      );
    }
    const parts = [
      ...(removed.length ? [`removed the addresses of VMs that do not run here (left by killed VMs) from ${this.bridge}: ${removed.join(", ")}`] : []),
      ...(failed.length ? [`could not remove leftover VM addresses: ${failed.join("; ")}`] : []),
    ];
    return parts.length ? parts.join("; ") : null;
  }

  private async nativeProgram(): Promise<VmCommand> {
    try {
      return { kind: "native", file: await buildNativeVmProgram(this.opts.programDir ?? this.runtimeDir), args: [] };
    } catch (err) {
      console.error(`process VM driver: ${(err as Error).message}; VMs run as Node.js programs instead (slower to start)`);
      return this.nodeProgram();
    }
  }

  /** The bundle, else (no esbuild) process-vm.ts via tsx. */
  private async nodeProgram(): Promise<VmCommand> {
    const viaTsx = (): VmCommand => ({
      kind: "node",
      file: process.execPath,
      args: [...(this.opts.nodeArgs ?? ["--import", import.meta.resolve("tsx")]), PROCESS_VM_SCRIPT],
    });
    if (this.opts.nodeArgs) return viaTsx();
    return bundleVmProgram(this.runtimeDir).then((f): VmCommand => ({ kind: "node", file: process.execPath, args: [f] }), viaTsx);
  }

  /** One operation per VM at a time: a retried start must not race the first for the disk lock. */
  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.inFlight.get(name) ?? Promise.resolve()).catch(() => {}).then(fn);
    this.inFlight.set(name, next);
    const forget = () => void (this.inFlight.get(name) === next && this.inFlight.delete(name));
    next.then(forget, forget);
    return next;
  }

  private defPath = (name: string) => join(this.definitionsDir, `${checkVmName(name)}.json`);
  private pidPath = (name: string) => join(this.runtimeDir, `${checkVmName(name)}.pid`);
  logPath = (name: string) => join(this.runtimeDir, `${checkVmName(name)}.log`);

  async define(input: VmDefinition): Promise<void> {
    const def = parseVmDefinition(input);
    return withVmError(def.name, "define", () => this.serial(def.name, async () => {
      if (!def.ip) throw new Error("the process driver needs an ip for the VM");
      if (!def.disk.path.startsWith("/")) throw new Error(`disk path ${def.disk.path} must be an absolute file path`);
      await mkdir(this.definitionsDir, { recursive: true });
      await writeFileAtomic(this.defPath(def.name), JSON.stringify(def, null, 2) + "\n");
    }));
  }

  async undefine(name: string): Promise<void> {
    return withVmError(name, "undefine", () => this.serial(name, async () => {
      if (this.livePid(name) !== null) throw new Error("it is running: stop it first");
      await rm(this.defPath(name), { force: true });
    }));
  }

  private async definition(name: string): Promise<VmDefinition | null> {
    let text: string;
    try {
      text = await readFile(this.defPath(name), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    return parseVmDefinition(JSON.parse(text));
  }

  /** The VM's pid if its pid file names a live process that really is this VM in our namespace. */
  livePid(name: string): number | null {
    let pf: PidFile;
    try {
      pf = JSON.parse(readFileSync(this.pidPath(name), "utf8")) as PidFile;
    } catch {
      return null;
    }
    return isVmProcess(pf.pid, name) ? pf.pid : null;
  }

  async start(name: string): Promise<void> {
    return withVmError(name, "start", () => this.serial(name, async () => {
      await this.releaseLeftoverAddresses(true); // never after our own VM took its address
      const def = await this.definition(name);
      if (!def) throw new Error("not defined on this node");
      if (!def.ip) throw new Error("the process driver needs an ip for the VM");
      if (this.livePid(name) !== null) return; // already running here
      await mkdir(this.runtimeDir, { recursive: true });
      await rm(this.pidPath(name), { force: true });
      const program = await this.program();
      const argv = [
        ...program.args,
        "ha-vm",
        name,
        ...["--ip", def.ip, "--port", String(this.port), "--dev", this.bridge, "--prefix", String(this.prefix)],
        ...["--disk", def.disk.path, "--pidfile", this.pidPath(name)],
      ];
      const log = openSync(this.logPath(name), "a");
      let child: ChildProcess;
      try {
        // Detached: the VM outlives a daemon restart, like a qemu process would. fd 3 reports start-up.
        child = spawn(program.file, argv, { detached: true, stdio: ["ignore", log, log, "pipe"], cwd: "/" });
      } finally {
        closeSync(log);
      }
      await this.waitReady(name, child);
    }));
  }

  /** Reads the VM's start-up report from fd 3; the pipe closing without one means it died. */
  private waitReady(name: string, child: ChildProcess): Promise<void> {
    const pipe = child.stdio[3] as (NodeJS.ReadableStream & { destroy(): void }) | null;
    return new Promise<void>((resolve, reject) => {
      let out = "";
      let settled = false;
      const done = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        pipe?.destroy();
        child.unref();
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        done(new Error(`not ready within ${this.startTimeoutMs} ms (killed; see ${this.logPath(name)})`));
      }, this.startTimeoutMs);
      if (!pipe) return done(new Error("no start-up pipe to the VM process"));
      pipe.on("data", (d: Buffer) => {
        out += d.toString();
        const nl = out.indexOf("\n");
        if (nl < 0) return;
        const line = out.slice(0, nl);
        try {
          const msg = JSON.parse(line) as { ready?: boolean; error?: string };
          done(msg.ready ? undefined : new Error(msg.error ?? line));
        } catch {
          done(new Error(`unexpected start-up message: ${line}`));
        }
      });
      // 'close' comes after every byte was delivered (unlike the child's 'exit'), so a report is never lost.
      pipe.on("close", () => done(new Error(`the VM process ended before it was ready: ${this.logTail(name)}`)));
      child.on("error", (err) => done(err));
    });
  }

  private logTail(name: string): string {
    try {
      return readFileSync(this.logPath(name), "utf8").trim().split("\n").slice(-3).join(" | ");
    } catch {
      return "(no log)";
    }
  }

  async stop(name: string, opts: StopOptions): Promise<void> {
    return withVmError(name, "stop", () => this.serial(name, async () => {
      const def = await this.definition(name);
      const pid = this.livePid(name);
      if (pid !== null) {
        signal(pid, opts.force ? "SIGKILL" : "SIGTERM");
        // No SIGCONT: a stopped (paused) process is a hung VM, and hung VMs are what force is for.
        if (!opts.force && !(await waitGone(pid, name, opts.timeoutMs))) signal(pid, "SIGKILL");
        if (!(await waitGone(pid, name, 5000))) throw new Error(`pid ${pid} is still alive after SIGKILL`);
      }
      // A graceful VM removed its address itself; a killed one could not.
      if (def?.ip) await removeVmAddress({ ip: def.ip, prefix: this.prefix, dev: this.bridge });
      await rm(this.pidPath(name), { force: true });
    }));
  }

  async state(name: string): Promise<VmState> {
    if (this.livePid(name) !== null) return "running";
    return (await this.definition(name)) ? "stopped" : "absent";
  }

  /**
   * From two directory listings: running = a live pid file, stopped = defined and not running. No
   * definition is read: the daemon lists after every start, and a node may hold hundreds of them.
   */
  async list(): Promise<Array<{ name: string; state: VmState }>> {
    await this.releaseLeftoverAddresses(true);
    const names = async (dir: string, ext: string) =>
      new Set((await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(ext)).map((f) => f.slice(0, -ext.length)));
    const [defined, withPid] = await Promise.all([names(this.definitionsDir, ".json"), names(this.runtimeDir, ".pid")]);
    const out: Array<{ name: string; state: VmState }> = [];
    for (const name of [...new Set([...defined, ...withPid])].sort()) {
      const running = withPid.has(name) && this.livePid(name) !== null;
      if (running || defined.has(name)) out.push({ name, state: running ? "running" : "stopped" });
    }
    return out;
  }

  async resources(): Promise<{ ramMb: number; vcpus: number }> {
    const c = this.opts.capacity ?? {};
    return {
      ramMb: c.ramMb ?? memTotalMb(await readFile("/proc/meminfo", "utf8")),
      vcpus: c.vcpus ?? cpus().length,
    };
  }
}

/** MemTotal from /proc/meminfo, in MiB (pure, tested). */
export function memTotalMb(meminfo: string): number {
  const m = /^MemTotal:\s+(\d+)\s+kB/m.exec(meminfo);
  if (!m) throw new Error("no MemTotal in /proc/meminfo");
  return Math.floor(Number(m[1]) / 1024);
}

/** Does this NUL-separated command line belong to VM `name` ("... ha-vm NAME ...")? (pure, tested) */
export function cmdlineIsVm(cmdline: string, name: string): boolean {
  const argv = cmdline.split("\0");
  return argv.some((a, i) => a === "ha-vm" && argv[i + 1] === name);
}

/**
 * The pid is VM `name`: alive (not a zombie), running `ha-vm name`, and in our network namespace.
 * The namespace check matters in the lab, where nodes share one pid space: a recycled pid could
 * otherwise be another node's process.
 */
export function isVmProcess(pid: number, name: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    if (stat.charAt(stat.lastIndexOf(")") + 2) === "Z") return false; // "pid (comm) STATE ..."
    if (readlinkSync(`/proc/${pid}/ns/net`) !== readlinkSync("/proc/self/ns/net")) return false;
    return cmdlineIsVm(readFileSync(`/proc/${pid}/cmdline`, "utf8"), name);
  } catch {
    return false;
  }
}

/** VM processes in our network namespace (one pass over /proc): name -> the address it was started with. */
export function vmProcessesHere(): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  const myNet = readlinkSync("/proc/self/ns/net");
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmdline = readFileSync(`/proc/${d}/cmdline`, "utf8");
      if (!cmdline.includes("ha-vm\0")) continue;
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      if (stat.charAt(stat.lastIndexOf(")") + 2) === "Z") continue;
      if (readlinkSync(`/proc/${d}/ns/net`) !== myNet) continue;
      const argv = cmdline.split("\0");
      const name = argv[argv.indexOf("ha-vm") + 1];
      if (argv.includes("ha-vm") && name) out.set(name, vmAddressFromCmdline(cmdline)?.ip);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals) {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

async function waitGone(pid: number, name: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isVmProcess(pid, name)) {
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
  return true;
}

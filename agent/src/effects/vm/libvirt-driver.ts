// The production VM driver: libvirt through `virsh` (qemu:///system on a KVM node). One virsh
// call per operation keeps no connection state in the daemon; libvirtd holds the truth.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, sleep, type RunResult } from "@ha/shared";
import { checkVmName, parseVmDefinition, withVmError, type StopOptions, type VmDefinition, type VmDriver, type VmState } from "./driver.ts";

export type VirshRunner = (args: string[]) => Promise<RunResult>;

export interface LibvirtDriverOptions {
  /** qemu:///system in production; test:///default (or test+unix:///default?socket=...) in tests. */
  uri?: string;
  virsh?: string;
  /** Bridge the VM's NIC is plugged into. */
  bridge?: string;
  /** Domain type in the XML: kvm, or 'test' for libvirt's test driver (the default for test: URIs). */
  domainType?: string;
  /** Overrides what `virsh nodeinfo` says (e.g. to keep RAM back for the host). */
  capacity?: { ramMb?: number; vcpus?: number };
  /** How often a graceful shutdown is polled. */
  pollMs?: number;
  /** Replaces running virsh (unit tests). */
  runner?: VirshRunner;
}

export class LibvirtVmDriver implements VmDriver {
  readonly kind = "libvirt" as const;
  readonly uri: string;
  private readonly runner: VirshRunner;
  private readonly xmlOpts: DomainXmlOptions;

  constructor(private readonly opts: LibvirtDriverOptions = {}) {
    this.uri = opts.uri ?? "qemu:///system";
    const virsh = opts.virsh ?? "virsh";
    this.runner = opts.runner ?? ((args) => run(virsh, ["-q", "-c", this.uri, ...args], { timeoutMs: 60_000 }));
    this.xmlOpts = { type: opts.domainType ?? (this.uri.startsWith("test") ? "test" : "kvm"), bridge: opts.bridge ?? "vmbr0" };
  }

  /** Runs virsh; rejects with its error text (virsh prints "error: ..." lines on stderr). */
  private async virsh(args: string[]): Promise<string> {
    const r = await this.runner(args);
    if (r.code !== 0) throw new Error(`virsh ${args[0]}: ${virshError(r)}`);
    return r.stdout;
  }

  async define(input: VmDefinition): Promise<void> {
    const def = parseVmDefinition(input);
    return withVmError(def.name, "define", async () => {
      const xml = domainXml(def, this.xmlOpts);
      const dir = await mkdtemp(join(tmpdir(), "corolistener-vm-"));
      try {
        await writeFile(join(dir, "domain.xml"), xml);
        await this.virsh(["define", join(dir, "domain.xml")]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  async undefine(name: string): Promise<void> {
    return withVmError(name, "undefine", async () => {
      const s = await this.state(name);
      if (s === "absent") return;
      if (s === "running") throw new Error("it is running: stop it first");
      await this.virsh(["undefine", name]);
    });
  }

  async start(name: string): Promise<void> {
    return withVmError(name, "start", async () => {
      const s = await this.state(name);
      if (s === "absent") throw new Error(`not defined on this node (${this.uri})`);
      if (s === "running") return;
      await this.virsh(["start", name]);
    });
  }

  async stop(name: string, opts: StopOptions): Promise<void> {
    return withVmError(name, "stop", async () => {
      if ((await this.state(name)) !== "running") return;
      if (!opts.force) {
        // ACPI shutdown: the guest may ignore it or take long, hence the deadline. A refused
        // shutdown (e.g. a paused guest) can never complete, so it goes straight to destroy.
        const r = await this.runner(["shutdown", name]);
        const deadline = Date.now() + opts.timeoutMs;
        while (r.code === 0 && Date.now() < deadline) {
          if ((await this.state(name)) !== "running") return;
          await sleep(Math.min(this.opts.pollMs ?? 250, Math.max(1, deadline - Date.now())));
        }
      }
      const r = await this.runner(["destroy", name]);
      const after = await this.state(name);
      if (after === "running") throw new Error(`still running after destroy: ${r.code === 0 ? "unknown reason" : virshError(r)}`);
    });
  }

  async state(name: string): Promise<VmState> {
    checkVmName(name);
    const r = await this.runner(["domstate", name]);
    if (r.code !== 0) {
      if (isNoDomain(r)) return "absent";
      throw new Error(`vm ${name}: state failed: virsh domstate: ${virshError(r)}`);
    }
    return parseDomState(r.stdout);
  }

  async list(): Promise<Array<{ name: string; state: VmState }>> {
    return parseDomList(await this.virsh(["list", "--all"]));
  }

  async resources(): Promise<{ ramMb: number; vcpus: number }> {
    const c = this.opts.capacity ?? {};
    const info = c.ramMb !== undefined && c.vcpus !== undefined ? null : parseNodeinfo(await this.virsh(["nodeinfo"]));
    return { ramMb: c.ramMb ?? info!.ramMb, vcpus: c.vcpus ?? info!.vcpus };
  }
}

// ---------------------------------------------------------------------------
// Pure parts (unit tested)

const virshError = (r: RunResult) => (r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).replace(/^error:\s*/gm, "").replace(/\n+/g, "; ");

/** virsh's ways of saying "no such domain". */
export const isNoDomain = (r: RunResult) => /failed to get domain|Domain not found|no domain with matching name/i.test(r.stderr);

/**
 * Everything but "shut off" counts as running: a paused, crashed-but-preserved or shutting-down
 * domain still has a qemu process holding its disk, so it is not safe to start elsewhere.
 */
export function parseDomState(out: string): Exclude<VmState, "absent"> {
  return out.trim().split("\n")[0]?.trim() === "shut off" ? "stopped" : "running";
}

/** `virsh list --all` table (with or without the header) to names and states. */
export function parseDomList(out: string): Array<{ name: string; state: VmState }> {
  const vms: Array<{ name: string; state: VmState }> = [];
  for (const line of out.split("\n")) {
    const m = /^\s*(\d+|-)\s+(\S+)\s+(\S.*?)\s*$/.exec(line);
    if (m && m[2] !== "Name") vms.push({ name: m[2]!, state: parseDomState(m[3]!) });
  }
  return vms;
}

/** `virsh nodeinfo`: "CPU(s): 16", "Memory size: 3145728 KiB". */
export function parseNodeinfo(out: string): { ramMb: number; vcpus: number } {
  const cpus = /^CPU\(s\):\s+(\d+)/m.exec(out);
  const mem = /^Memory size:\s+(\d+)\s+KiB/m.exec(out);
  if (!cpus || !mem) throw new Error(`cannot parse virsh nodeinfo: ${out.trim().slice(0, 200)}`);
  return { ramMb: Math.floor(Number(mem[1]) / 1024), vcpus: Number(cpus[1]) };
}

export interface DomainXmlOptions {
  type: string;
  bridge: string;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/'/g, "&apos;").replace(/"/g, "&quot;");

/**
 * The <disk> element for a disk path:
 *   /dev/...                         block device (iSCSI/multipath LUN, network LVM volume)
 *   /other/path[.qcow2]              image file (e.g. on an NFS mount)
 *   rbd:pool/image                   Ceph RBD, monitors from ceph.conf
 *   rbd://[user@]mon[:port][,mon...]/pool/image[?secret=UUID]   (a user needs the secret)
 *   iscsi://host[:port]/iqn.../LUN   libvirt's own iSCSI initiator
 *   nfs://host/export/path           qemu's NFS client
 * cache='none' so no host page cache hides writes from the next node after a failover.
 */
export function diskXml(path: string): string {
  const target = `<target dev='vda' bus='virtio'/>`;
  const driver = (type: string) => `<driver name='qemu' type='${type}' cache='none'/>`;
  if (path.startsWith("/dev/")) return `<disk type='block' device='disk'>${driver("raw")}<source dev='${esc(path)}'/>${target}</disk>`;
  if (path.startsWith("/")) {
    const fmt = path.endsWith(".qcow2") ? "qcow2" : "raw";
    return `<disk type='file' device='disk'>${driver(fmt)}<source file='${esc(path)}'/>${target}</disk>`;
  }
  const short = /^rbd:([^/]+\/[^/?]+)$/.exec(path);
  if (short) return `<disk type='network' device='disk'>${driver("raw")}<source protocol='rbd' name='${esc(short[1]!)}'/>${target}</disk>`;
  const m = /^(rbd|iscsi|nfs):\/\/(?:([^@/]+)@)?([^/]+)(\/[^?]+)(?:\?secret=([0-9a-fA-F-]{36}))?$/.exec(path);
  if (!m) throw new Error(`unsupported disk path ${path}: use a /path, /dev/..., rbd:pool/image, rbd://, iscsi:// or nfs:// URI`);
  const [, proto, user, hostList, rest, secret] = m as unknown as [string, string, string | undefined, string, string, string | undefined];
  const hosts = hostList
    .split(",")
    .map((h) => {
      const [host, port] = h.split(":");
      return `<host name='${esc(host!)}'${port ? ` port='${esc(port)}'` : ""}/>`;
    })
    .join("");
  // rbd and iscsi name the volume without the leading slash; nfs names the exported path.
  const name = proto === "nfs" ? rest : rest.slice(1);
  if (proto === "rbd" && user && !secret) throw new Error(`disk path ${path}: a cephx user needs ?secret=UUID (a libvirt secret holding its key)`);
  const auth = proto === "rbd" && user ? `<auth username='${esc(user)}'><secret type='ceph' uuid='${secret}'/></auth>` : "";
  // libvirt's schema wants exactly one NFS server and the identity qemu's NFS client uses.
  if (proto === "nfs" && hostList.includes(",")) throw new Error(`disk path ${path}: nfs takes one server`);
  const identity = proto === "nfs" ? `<identity user='root' group='root'/>` : "";
  return `<disk type='network' device='disk'>${driver("raw")}<source protocol='${proto}' name='${esc(name)}'>${hosts}${identity}</source>${auth}${target}</disk>`;
}

/** A minimal KVM domain: RAM, vCPUs, one virtio disk, one virtio NIC on the bridge, a serial console. */
export function domainXml(def: VmDefinition, o: DomainXmlOptions): string {
  return [
    `<domain type='${esc(o.type)}'>`,
    `  <name>${esc(def.name)}</name>`,
    `  <metadata><ha:vm xmlns:ha='urn:corolistener:vm:1' ha='${def.ha ? "yes" : "no"}' disk='${def.disk.kind}'${def.ip ? ` ip='${esc(def.ip)}'` : ""}/></metadata>`,
    `  <memory unit='MiB'>${def.ramMb}</memory>`,
    `  <vcpu>${def.vcpus}</vcpu>`,
    `  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>`,
    `  <features><acpi/><apic/></features>`,
    // The HA manager decides where a crashed VM comes back: libvirt must not restart it here.
    `  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>`,
    `  <devices>`,
    `    ${diskXml(def.disk.path)}`,
    `    <interface type='bridge'><source bridge='${esc(o.bridge)}'/><model type='virtio'/></interface>`,
    `    <serial type='pty'/><console type='pty'/>`,
    `  </devices>`,
    `</domain>`,
    "",
  ].join("\n");
}

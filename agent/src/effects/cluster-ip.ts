// The cluster IP: added to the master's interface and announced with gratuitous ARP, removed on release.
import { execFileSync } from "node:child_process";
import { run, type RunResult } from "@ha/shared";

export type ClusterIpSpec = { ip: string; prefix: number; device: string };
export type Runner = (cmd: string, args: string[]) => Promise<RunResult>;

export class ClusterIp {
  /** What we last did to the address; "released" lets a repeated release finish without a command. */
  private known: "held" | "released" | "unknown" = "unknown";
  constructor(
    private readonly spec: ClusterIpSpec,
    private readonly runner: Runner = (c, a) => run(c, a, { timeoutMs: 5000 }),
  ) {}

  private get cidr() {
    return `${this.spec.ip}/${this.spec.prefix}`;
  }

  async held(): Promise<boolean> {
    const r = await this.runner("ip", ["-o", "addr", "show", "dev", this.spec.device]);
    return r.stdout.includes(` ${this.cidr} `);
  }

  /**
   * Removes any address an earlier run left behind, before the HA core starts: its first steps
   * must find the address already gone (a restarted agent has little time to release it).
   */
  releaseLeftoverSync(): void {
    try {
      execFileSync("ip", ["addr", "del", this.cidr, "dev", this.spec.device], { stdio: "ignore", timeout: 5000 });
    } catch {
      /* not held: the usual case */
    }
    this.known = "released";
  }

  /** Adds the address (idempotent) and sends gratuitous ARP so neighbours move traffic here at once. */
  async assign(): Promise<void> {
    this.known = "unknown";
    const r = await this.runner("ip", ["addr", "add", this.cidr, "dev", this.spec.device]);
    if (r.code !== 0 && !/File exists|Address already assigned/.test(r.stderr)) {
      throw new Error(`cannot add cluster IP ${this.cidr} to ${this.spec.device}: ${r.stderr.trim()}`);
    }
    this.known = "held";
    // Unsolicited ARP (iputils arping -U); failure to announce is not fatal, the address works anyway.
    void this.runner("arping", ["-U", "-c", "2", "-w", "2", "-I", this.spec.device, this.spec.ip]);
  }

  /** Removes the address (idempotent). */
  async release(): Promise<void> {
    if (this.known === "released") return;
    const r = await this.runner("ip", ["addr", "del", this.cidr, "dev", this.spec.device]);
    if (r.code !== 0 && !/Cannot assign requested address|does not exist|Address not found/.test(r.stderr)) {
      throw new Error(`cannot remove cluster IP ${this.cidr} from ${this.spec.device}: ${r.stderr.trim()}`);
    }
    this.known = "released";
  }
}

// Probes the configured test IP: tells "only the control network is gone" from "this node is isolated".
// One long-lived `ping` (iputils) sends a probe every interval and prints a line per reply, instead
// of one `ping -c 1` per probe: forking the agent every second cost ~5 ms of its event loop on a
// quiet machine and ~70 ms on a loaded one (a fifth of its main-thread time during a 50-VM failover
// in the lab), and it is the one fork the agent did all the time.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface TestIpProbeOptions {
  /** Time between probes (ping -i). */
  intervalMs?: number;
  /** How long a probe may wait for its reply. */
  timeoutMs?: number;
  /** The program and its leading arguments (tests put a fake ping here). */
  command?: string[];
  now?: () => number;
  onError?: (message: string) => void;
}

/** A reply line of iputils ping: "64 bytes from 10.0.0.1: icmp_seq=3 ttl=64 time=0.05 ms" (pure). */
export function isReplyLine(line: string): boolean {
  return /^\d+ bytes from \S+ icmp_seq=\d+/.test(line);
}

export class TestIpProbe {
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private child: ChildProcess | null = null;
  private lastReplyAt = Number.NEGATIVE_INFINITY;
  private stopped = false;
  private restart: NodeJS.Timeout | null = null;
  private lastError = "";

  constructor(
    readonly ip: string,
    private readonly opts: TestIpProbeOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.now = opts.now ?? (() => performance.now());
  }

  start(): this {
    this.stopped = false;
    if (this.child || this.restart) return this;
    // --pdeathsig: the kernel ends ping when the agent dies, however it dies (no orphan probing forever).
    const argv = [...(this.opts.command ?? ["setpriv", "--pdeathsig", "TERM", "ping"]), "-n", "-i", String(this.intervalMs / 1000), "-W", String(Math.ceil(this.timeoutMs / 1000)), this.ip];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    let stderr = "";
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (isReplyLine(line)) this.lastReplyAt = this.now();
    });
    child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    const ended = (why: string) => {
      if (this.child !== child) return;
      this.child = null;
      if (this.stopped) return;
      // e.g. "connect: Network is unreachable" (no route: a cut link): probe again after an interval.
      const message = `test IP probe (ping ${this.ip}) ended: ${stderr.trim() || why}; restarting`;
      if (message !== this.lastError) this.opts.onError?.(message);
      this.lastError = message;
      this.restart = setTimeout(() => {
        this.restart = null;
        if (!this.stopped) this.start();
      }, this.intervalMs);
      this.restart.unref();
    };
    child.on("error", (err) => ended(err.message));
    // 'close', not 'exit': it comes after stderr was read to the end, so the message has the reason.
    child.on("close", (code, signal) => ended(signal ? `killed by ${signal}` : `exit ${code}`));
    return this;
  }

  /**
   * Whether the test IP answers: a reply came within one interval plus the reply timeout, i.e. the
   * latest probe whose timeout has passed was answered (what a `ping -c 1 -W 1` per interval said).
   */
  reachable(): boolean {
    return this.now() - this.lastReplyAt <= this.intervalMs + this.timeoutMs;
  }

  stop(): void {
    this.stopped = true;
    if (this.restart) clearTimeout(this.restart);
    this.restart = null;
    this.child?.kill("SIGTERM");
    this.child = null;
  }
}

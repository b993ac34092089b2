// Test helper: runs a script inside a lab node that prints JSON lines (by default the corosync probe,
// agent/src/corosync/probe.ts) and collects them; commands go to its stdin as JSON lines.
import { createInterface } from "node:readline";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { REPO_ROOT, type Lab } from "./lab.ts";

export const COROSYNC_PROBE = `${REPO_ROOT}/agent/src/corosync/probe.ts`;
export const HTTP_WATCH = `${REPO_ROOT}/lab/src/http-watch.ts`;

export type ProbeLine = { type: string; t: number; [k: string]: unknown };

export class Probe {
  readonly lines: ProbeLine[] = [];
  private waiters: Array<() => void> = [];
  private child: ChildProcessWithoutNullStreams;
  stderr = "";

  constructor(lab: Lab, readonly node: number, args: string[] = [], script = COROSYNC_PROBE) {
    this.child = lab.spawnIn(node, ["node", "--import", `file://${REPO_ROOT}/node_modules/tsx/dist/loader.mjs`, script, ...args]) as ChildProcessWithoutNullStreams;
    this.child.stderr.on("data", (d) => (this.stderr += d));
    createInterface({ input: this.child.stdout }).on("line", (l) => {
      try {
        this.lines.push(JSON.parse(l) as ProbeLine);
      } catch {
        this.stderr += `unparsable: ${l}\n`;
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  send(cmd: Record<string, unknown>) {
    this.child.stdin.write(JSON.stringify(cmd) + "\n");
  }

  /** Waits until a line after index `from` matches; rejects with what was seen on timeout. */
  async waitFor(pred: (l: ProbeLine) => boolean, timeoutMs: number, from = 0): Promise<ProbeLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0 || this.child.exitCode !== null) {
        const seen = this.lines.slice(-5).map((l) => JSON.stringify(l).slice(0, 200)).join("\n  ");
        throw new Error(`probe on n${this.node}: expected line not seen in ${timeoutMs} ms (exit=${this.child.exitCode}); last:\n  ${seen}\nstderr: ${this.stderr.slice(-500)}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }

  get alive() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  stop() {
    this.child.stdin.end();
    this.child.kill("SIGTERM");
  }
}

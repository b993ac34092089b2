// Small wrappers over child_process that turn failures into clear errors.
import { execFile, execFileSync } from "node:child_process";

export type RunResult = { code: number; stdout: string; stderr: string };

/** Runs a command and resolves with its output; never rejects on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, cwd: opts.cwd, encoding: "utf8" },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException).code === "number" ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
        const note = err && (err as { killed?: boolean }).killed ? `\n(timed out after ${opts.timeoutMs ?? 30_000} ms)` : "";
        const spawnErr = err && typeof (err as NodeJS.ErrnoException).code === "string" ? `\n${err.message}` : "";
        resolve({ code, stdout, stderr: stderr + note + spawnErr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs a command and rejects with its stderr when it fails. */
export async function mustRun(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

/** Synchronous best-effort run, for teardown in exit handlers. */
export function runSyncQuiet(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 });
  } catch {
    return "";
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

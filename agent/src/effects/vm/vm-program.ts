// The program a lab VM runs. After a failover dozens of VM processes start at once on a node:
// - "native" (default): process-vm.c, compiled once per node with the system's C compiler; a
//   start costs about a millisecond of CPU, so the lab measures the HA manager, not VM start-up;
// - "node": process-vm.ts bundled once into plain JavaScript with esbuild (tsx's own transformer)
//   and run with bare node, ~0.12 s of CPU per start (under tsx it would be ~0.2 s more).
// Both behave the same (the driver's integration test runs both).
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { access, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";

export const PROCESS_VM_SCRIPT = fileURLToPath(new URL("./process-vm.ts", import.meta.url));
export const PROCESS_VM_SOURCE = fileURLToPath(new URL("./process-vm.c", import.meta.url));

export type VmProgramKind = "native" | "node";

/**
 * Compiles process-vm.c into <outDir>/process-vm-<hash of the source> (kept, so each node
 * compiles once per source version) and returns its path. Rejects with the compiler's message.
 * The compiler runs at the lowest CPU priority: it may run beside a starting agent, whose storage
 * heartbeat must not wait for it.
 */
export async function buildNativeVmProgram(outDir: string, cc = process.env.CC || "cc"): Promise<string> {
  const source = await readFile(PROCESS_VM_SOURCE);
  const out = join(outDir, `process-vm-${createHash("sha256").update(source).digest("hex").slice(0, 12)}`);
  if (await access(out).then(() => true, () => false)) return out;
  await mkdir(outDir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    await promisify(execFile)("nice", ["-n", "19", cc, "-O2", "-Wall", "-o", tmp, PROCESS_VM_SOURCE], { timeout: 60_000 });
  } catch (err) {
    await rm(tmp, { force: true });
    const e = err as Error & { stderr?: string };
    throw new Error(`cannot compile ${PROCESS_VM_SOURCE} with ${cc}: ${(e.stderr || e.message).trim()}`);
  }
  await rename(tmp, out);
  return out;
}

// The few esbuild types used here (esbuild is tsx's dependency, not ours, so no typings to import).
type Plugin = { name: string; setup(b: { onResolve(o: { filter: RegExp }, cb: () => { path: string; external: boolean }): void }): void };
type Esbuild = {
  build(o: Record<string, unknown> & { plugins: Plugin[] }): Promise<{ outputFiles: Array<{ text: string }> }>;
};

/** Writes <outDir>/process-vm.mjs and returns its path. */
export async function bundleVmProgram(outDir: string): Promise<string> {
  const esbuild = createRequire(import.meta.resolve("tsx"))("esbuild") as Esbuild;
  // koffi stays external (native addon) but by absolute URL: the bundle lives outside the repo.
  const koffi = import.meta.resolve("koffi");
  const r = await esbuild.build({
    entryPoints: [PROCESS_VM_SCRIPT],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    write: false,
    logLevel: "silent",
    plugins: [{ name: "koffi-by-url", setup: (b) => b.onResolve({ filter: /^koffi$/ }, () => ({ path: koffi, external: true })) }],
  });
  const text = r.outputFiles[0]?.text;
  if (!text) throw new Error("esbuild produced no output for process-vm.ts");
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, "process-vm.mjs");
  await writeFile(`${out}.${process.pid}.tmp`, `// generated from ${PROCESS_VM_SCRIPT}\n${text}`);
  await rename(`${out}.${process.pid}.tmp`, out);
  return out;
}

// After a failover dozens of VM processes start at once. Under tsx each pays ~0.2 s of CPU just
// for the loader (4x a plain node start), so the process driver bundles process-vm.ts once into
// plain JavaScript with esbuild, the transformer tsx itself ships, and runs that with bare node.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { mkdir, rename, writeFile } from "node:fs/promises";

export const PROCESS_VM_SCRIPT = fileURLToPath(new URL("./process-vm.ts", import.meta.url));

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

// A few HA VMs (the lab's process driver) for the nemesis' double-VM check: their records are
// written straight into the cluster metadata on the lab's shared storage, in the format of
// agent/src/effects/cluster-metadata.ts (as vm-ha2.test.ts does); the master places and starts them.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Lab } from "../lab.ts";

export const nemesisVmNames = (count: number) => Array.from({ length: count }, (_, i) => `nem${i + 1}`);

export function defineNemesisVms(lab: Lab, count: number): string[] {
  const names = nemesisVmNames(count);
  const dir = join(lab.storageDir(), "cluster", "vms");
  mkdirSync(dir, { recursive: true });
  names.forEach((name, i) => {
    const record = {
      definition: { name, ramMb: 128, vcpus: 1, disk: { kind: "network", path: `/run/ha-storage/vms/${name}.disk` }, ip: `172.31.224.${200 + i}`, ha: true },
      restartPriority: 0,
      desired: "running",
    };
    const path = join(dir, `${name}.json`);
    writeFileSync(`${path}.tmp`, JSON.stringify(record));
    renameSync(`${path}.tmp`, path);
  });
  return names;
}

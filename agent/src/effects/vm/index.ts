// VM drivers: pick one from the agent's config.
import { LibvirtVmDriver, type LibvirtDriverOptions } from "./libvirt-driver.ts";
import { ProcessVmDriver, type ProcessDriverOptions } from "./process-driver.ts";
import type { VmDriver } from "./driver.ts";

export * from "./driver.ts";
export { LibvirtVmDriver, type LibvirtDriverOptions } from "./libvirt-driver.ts";
export { ProcessVmDriver, type ProcessDriverOptions } from "./process-driver.ts";

export type VmDriverConfig = ({ driver: "libvirt" } & LibvirtDriverOptions) | ({ driver: "process" } & ProcessDriverOptions);

export function createVmDriver(cfg: VmDriverConfig): VmDriver {
  const { driver, ...opts } = cfg;
  return driver === "libvirt" ? new LibvirtVmDriver(opts) : new ProcessVmDriver(opts);
}

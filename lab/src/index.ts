export * from "./lab.ts";
export * from "./topology.ts";
export * from "./processes.ts";
export { run, mustRun, sleep } from "@ha/shared";
export { Probe, COROSYNC_PROBE, HTTP_WATCH, type ProbeLine } from "./probe.ts";
export { ClusterIpChecker, type IpSample } from "./ip-checker.ts";
export * from "./mariadb.ts";
export { VmChecker } from "./vm-checker.ts";
export { waitUntil } from "./wait.ts";

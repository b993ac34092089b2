export * from "./lab.ts";
export * from "./topology.ts";
export * from "./processes.ts";
export { run, mustRun, sleep } from "@ha/shared";
export { Probe, type ProbeLine } from "./probe.ts";

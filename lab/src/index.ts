export * from "./lab.ts";
export * from "./topology.ts";
export * from "./processes.ts";
export { run, mustRun, sleep } from "./exec.ts";
